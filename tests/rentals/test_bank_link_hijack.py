"""The bank-link hijack: a stranger starts a bank link, gets someone else to consent at the bank, and would spend
her money. A link completes only in the session of the person who started it; a refused callback uses nothing
up; a newly linked account is charged only after its owner has confirmed it; links made the old way are listed
for an operator."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient

from gateway.keys import MARKET
from market.config import Config
from market.errors import Conflict
from market.service import Market
from tests.conftest import Person, sign_up
from tests.rentals.helpers import CALLBACK, Bank, billi, confirm, days, item, link, user


async def _start_link(person: Person) -> str:
    status, body = await person.call("POST", "/api/billipay/link")
    assert status == 200, body
    return str(body["url"])


async def _callback(client: TestClient, back: dict[str, str], who: Person | None = None) -> tuple[int, str]:
    async with client.get("/billipay/callback", params=back, headers=who.auth if who else {}) as resp:
        return resp.status, await resp.text()


async def test_a_stranger_cannot_link_a_victims_account_and_pay_with_it(client: TestClient) -> None:
    market = client.app[MARKET]
    bank = Bank(market.config.bank_url)
    attacker, accomplice = await sign_up(client, "공격자"), await sign_up(client, "한패")
    victim = await bank.person("피해자", 500_000)
    # The attacker asks for a consent page and gets the victim to consent at her bank, logged out of Billi.
    back = await bank.consent(await _start_link(attacker), victim)
    status, page = await _callback(client, back)
    assert status == 403
    assert "로그인" in page and "아무 계좌도 연결되지 않았어요" in page
    status, body = await attacker.call("GET", "/api/billipay/account")
    assert body["account"] is None
    # The rest of the attack: a rental from the accomplice, accepted, paid — with no account to pay from.
    thing = await accomplice.new_item(price_per_day=150_000, deposit=0)
    status, body = await attacker.call("POST", "/api/contracts", json={"item_id": thing["id"], "dates": "내일"})
    assert status == 201, body
    cid = body["contract"]["id"]
    await market.rentals.accept(accomplice.id, cid)
    with pytest.raises(Exception) as refused:
        await market.rentals.pay_now(attacker.id, cid)
    assert getattr(refused.value, "code", None) == "pay.no_link"
    assert await bank.balance_of(victim) == 500_000
    assert await market.db.fetchval("SELECT COUNT(*) FROM transfers") == 0


async def test_a_refused_callback_leaves_the_owners_link_request_usable(client: TestClient) -> None:
    market = client.app[MARKET]
    bank = Bank(market.config.bank_url)
    owner, someone = await sign_up(client, "계좌주인"), await sign_up(client, "다른사람")
    person = await bank.person("계좌주인", 100_000)
    back = await bank.consent(await _start_link(owner), person)
    # Someone else's session, then no session (the owner in another browser): refused, nothing linked.
    for who in (someone, None):
        status, page = await _callback(client, back, who)
        assert status == 403 and "로그인" in page
    for p in (owner, someone):
        assert await market.billipay.account(p.id) is None
    # The owner, logged in, finishes with the very same redirect: the state was not used up.
    status, page = await _callback(client, back, owner)
    assert status == 200 and "연결됐어요" in page
    linked = await market.billipay.account(owner.id)
    assert linked is not None and linked["holder"] == "계좌주인"
    status, _ = await _callback(client, back, owner)  # and now it is spent
    assert status == 400
    assert await market.db.fetchval("SELECT verified_at IS NOT NULL FROM bank_links WHERE user_id = %s",
                                    (owner.id,)) == 1


async def test_someone_elses_callback_does_not_change_an_owners_pending_link(market: Market) -> None:
    assert market.billipay is not None
    bank = Bank(market.config.bank_url)
    owner, other = await user(market), await user(market)
    person = await bank.person("주인", 10_000)
    back = await bank.consent(await market.billipay.start_link(owner, CALLBACK), person)
    stored = await market.redis.get(f"billipay:state:{back['state']}")
    ttl = await market.redis.ttl(f"billipay:state:{back['state']}")
    for session_user in (other, None):
        for code in (back["code"], "forged"):
            with pytest.raises(Exception) as refused:
                await market.billipay.finish_link(back["state"], code, session_user=session_user)
            assert getattr(refused.value, "code", None) == "billipay.wrong_session"
        with pytest.raises(Exception):  # a refusal from the bank page is not taken from a stranger either
            await market.billipay.finish_link(back["state"], None, session_user=session_user, error="access_denied")
    assert await market.redis.get(f"billipay:state:{back['state']}") == stored
    assert 0 < await market.redis.ttl(f"billipay:state:{back['state']}") <= ttl
    done = await market.billipay.finish_link(back["state"], back["code"], session_user=owner)
    assert done["user"] == owner
    assert await market.billipay.account(other) is None


async def test_two_callbacks_of_the_owner_at_once_link_once(market: Market) -> None:
    assert market.billipay is not None
    bank = Bank(market.config.bank_url)
    owner = await user(market)
    back = await bank.consent(await market.billipay.start_link(owner, CALLBACK), await bank.person("주인", 1))
    results = await asyncio.gather(*[market.billipay.finish_link(back["state"], back["code"], session_user=owner)
                                     for _ in range(4)], return_exceptions=True)
    assert len([r for r in results if isinstance(r, dict)]) == 1
    assert {getattr(r, "code", None) for r in results if not isinstance(r, dict)} == {"billipay.bad_state"}


async def _accepted(market: Market, borrower: int, price: int = 10_000) -> int:
    owner = await user(market)
    await link(market, Bank(market.config.bank_url), owner, 0, "주인")
    c, _ = await market.rentals.request(borrower, await item(market, owner, price_per_day=price, deposit=20_000),
                                        *days(1, 1))
    await market.rentals.accept(owner, c.id)
    return c.id


async def test_a_new_account_is_charged_only_after_its_owner_confirms_it(market: Market) -> None:
    assert market.billipay is not None
    bank = Bank(market.config.bank_url)
    borrower = await user(market)
    person = await link(market, bank, borrower, 100_000, "빌리는사람", confirmed=False)
    cid = await _accepted(market, borrower)
    shown = await market.billipay.first_use(borrower)
    assert shown is not None and shown["holder"] == "빌리는사람" and shown["account"].endswith("****")
    assert shown["holder_differs"] is False
    for check in (None, "0" * 20):
        with pytest.raises(Conflict) as asked:
            await market.rentals.pay_now(borrower, cid, confirm=check)
        assert asked.value.code == ("pay.confirm_link" if check is None else "pay.link_changed")
    assert await bank.balance_of(person) == 100_000
    assert await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE contract_id = %s", (cid,)) == 0
    assert (await market.rentals.get(cid)).state == "ACCEPTED"
    paid = await market.rentals.pay_now(borrower, cid, confirm=shown["check"])
    assert paid.state == "PAID" and await bank.balance_of(person) == 100_000 - paid.total
    assert await market.billipay.first_use(borrower) is None  # the next payment needs no confirmation
    second = await _accepted(market, borrower)
    assert (await market.rentals.pay_now(borrower, second)).state == "PAID"


async def test_linking_another_account_asks_again_and_the_same_one_does_not(market: Market) -> None:
    assert market.billipay is not None
    bank = Bank(market.config.bank_url)
    borrower = await user(market)
    first = await link(market, bank, borrower, 100_000, "본인")
    assert await market.billipay.first_use(borrower) is None
    # The same bank person again (same account): still confirmed.
    back = await bank.consent(await market.billipay.start_link(borrower, CALLBACK), first)
    await market.billipay.finish_link(back["state"], back["code"], session_user=borrower)
    assert await market.billipay.first_use(borrower) is None
    # Another account, held in someone else's name: asked again, and the name is pointed out.
    other = await bank.person("본인", 100_000, holder="김가족")
    back = await bank.consent(await market.billipay.start_link(borrower, CALLBACK), other)
    await market.billipay.finish_link(back["state"], back["code"], session_user=borrower)
    shown = await market.billipay.first_use(borrower)
    assert shown is not None and shown["holder"] == "김가족" and shown["holder_differs"] is True
    assert shown["person"] == "본인"
    cid = await _accepted(market, borrower)
    with pytest.raises(Conflict):
        await market.rentals.pay_now(borrower, cid)
    await confirm(market, borrower)
    assert (await market.rentals.pay_now(borrower, cid)).state == "PAID"
    assert await bank.balance_of(other) < 100_000 and await bank.balance_of(first) == 100_000


async def test_operators_list_links_made_without_a_session(market: Market, config: Config) -> None:
    assert market.billipay is not None
    bank = Bank(market.config.bank_url)
    old, new = await user(market, "예전연결"), await user(market, "새연결")
    await link(market, bank, old, 1, "예전")
    await link(market, bank, new, 1, "새로")
    # What the migration leaves for a link made before a session was required.
    await market.db.execute("UPDATE bank_links SET verified_at = NULL WHERE user_id = %s", (old,))
    assert [r["user_id"] for r in await market.billipay.links(unverified=True)] == [old]
    out = await billi(config, "billipay-links", "--unverified")
    assert "예전연결" in out and "UNVERIFIED" in out and "새연결" not in out
    everyone = await billi(config, "billipay-links")
    assert "예전연결" in everyone and "새연결" in everyone and "session-verified" in everyone


async def test_a_link_made_without_a_session_is_never_withdrawn_from(market: Market) -> None:
    assert market.billipay is not None
    bank = Bank(market.config.bank_url)
    borrower = await user(market)
    person = await link(market, bank, borrower, 100_000, "예전사람")
    await market.db.execute("UPDATE bank_links SET verified_at = NULL WHERE user_id = %s", (borrower,))
    cid = await _accepted(market, borrower)
    shown = await market.billipay.first_use(borrower)
    for check in (None, shown["check"] if shown else None):
        with pytest.raises(Conflict) as refused:
            await market.rentals.pay_now(borrower, cid, confirm=check)
        assert refused.value.code == "pay.relink"
    assert await bank.balance_of(person) == 100_000
    assert await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE contract_id = %s", (cid,)) == 0
    again = await link(market, bank, borrower, 100_000, "예전사람")  # linked again, in their own session
    paid = await market.rentals.pay_now(borrower, cid)
    assert paid.state == "PAID" and await bank.balance_of(again) == 100_000 - paid.total


async def test_a_card_for_one_account_never_pays_from_another(market: Market) -> None:
    assert market.billipay is not None
    bank = Bank(market.config.bank_url)
    borrower = await user(market)
    first = await link(market, bank, borrower, 100_000, "첫계좌", confirmed=False)
    old_card = await market.billipay.first_use(borrower)
    assert old_card is not None
    second = await link(market, bank, borrower, 100_000, "둘째계좌")  # relinked and confirmed meanwhile
    cid = await _accepted(market, borrower)
    with pytest.raises(Conflict) as refused:
        await market.rentals.pay_now(borrower, cid, confirm=old_card["check"])
    assert refused.value.code == "pay.link_changed"
    assert await bank.balance_of(first) == 100_000 and await bank.balance_of(second) == 100_000


async def test_a_withdrawal_opened_for_one_account_is_not_sent_from_a_relinked_one(market: Market) -> None:
    assert market.billipay is not None
    bank = Bank(market.config.bank_url)
    borrower = await user(market)
    first = await link(market, bank, borrower, 100_000, "첫계좌")
    cid = await _accepted(market, borrower)
    c = await market.rentals.get(cid)
    async with market.db.transaction() as cur:  # queued against the confirmed account…
        await market.billipay.open_transfer(cur, purpose=f"pay:{cid}", contract_id=cid, user_id=borrower,
                                            direction="withdraw", amount=c.total, state="pending")
    second = await link(market, bank, borrower, 100_000, "둘째계좌", confirmed=False)  # …then another is linked
    await market.rentals.process_transfers()
    row = await market.db.fetchone("SELECT state, message FROM transfers WHERE contract_id = %s", (cid,))
    assert row["state"] == "failed" and row["message"] == "pay.link_changed"
    assert await bank.balance_of(first) == 100_000 and await bank.balance_of(second) == 100_000
    assert (await market.rentals.get(cid)).state == "ACCEPTED"


async def test_an_extension_from_a_newly_linked_account_waits_for_its_owner(market: Market) -> None:
    assert market.billipay is not None
    bank = Bank(market.config.bank_url)
    borrower = await user(market)
    await link(market, bank, borrower, 100_000, "본인")
    cid = await _accepted(market, borrower)
    c = await market.rentals.pay_now(borrower, cid)
    owner = c.owner_id
    await market.rentals.hand_over(owner, cid)
    await market.rentals.hand_over(borrower, cid)
    family = await link(market, bank, borrower, 100_000, "본인", confirmed=False, holder="김가족")
    await market.rentals.request_extension(borrower, cid, c.end_date + (c.end_date - c.start_date) + timedelta(1))
    with pytest.raises(Conflict) as asked:
        await market.rentals.approve_extension(owner, cid)
    assert asked.value.code == "pay.confirm_link"
    assert await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE purpose = %s", (f"ext:{cid}",)) == 0
    shown = await market.billipay.first_use(borrower)
    assert shown is not None and shown["holder_differs"]
    await market.billipay.confirm_account(borrower, shown["check"])
    extended = await market.rentals.approve_extension(owner, cid)
    assert extended.extra_rent > 0
    assert await bank.balance_of(family) == 100_000 - extended.extra_rent - extended.extra_fee
