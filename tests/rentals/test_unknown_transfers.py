"""A transfer whose outcome the bank has not told us is never taken for failed: "no such transaction" (the bank may
commit it later), "processing" and internal errors keep it unknown, asked again with backoff, and past the horizon
an operator decides. Meanwhile nobody is offered a second payment and no payout goes out twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from market.config import Config
from market.errors import Conflict, MarketError
from market.service import Market
from tests.rentals.helpers import Bank, accepted, billi, days, inquiries_due, item, link, linked_balance, settled, user


@pytest.fixture
def bank(market: Market) -> Bank:
    assert market.config.bank_url
    return Bank(market.config.bank_url)


async def test_a_payment_the_bank_commits_late_charges_once_and_is_never_offered_again(
        market: Market, bank: Bank) -> None:
    cid, borrower, acct = await accepted(market, bank)
    await bank.fail("withdraw", "late", applied=True, after=2)  # "no such transaction" twice, then it lands
    with pytest.raises(MarketError) as first:
        await market.rentals.pay_now(borrower, cid)
    assert first.value.code == "pay.unknown"
    assert (await market.rentals.get(cid)).state == "ACCEPTED"
    assert await market.db.fetchval("SELECT state FROM transfers WHERE contract_id = %s", (cid,)) == "unknown"
    with pytest.raises(Conflict) as again:  # the borrower presses 결제 again: refused, nothing sent
        await market.rentals.pay_now(borrower, cid)
    assert again.value.code == "pay.in_progress"
    await inquiries_due(market)
    await market.rentals.process_transfers()  # the second "no such transaction": still unknown
    assert (await market.rentals.get(cid)).state == "ACCEPTED"
    await market.rentals.tick()  # the expiry sweep leaves a contract whose payment is unknown alone
    await inquiries_due(market)
    await market.rentals.process_transfers()  # now the bank knows it
    c = await market.rentals.get(cid)
    assert c.state == "PAID"
    assert await bank.balance_of(acct) == 1_000_000 - c.total
    assert await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE contract_id = %s", (cid,)) == 1


async def test_an_answer_that_is_not_final_keeps_the_transfer_unknown(market: Market, bank: Bank) -> None:
    cid, borrower, acct = await accepted(market, bank)
    await bank.fail("withdraw", "timeout", applied=True)
    await bank.fail("result", "internal", times=2)  # A0003 twice
    with pytest.raises(MarketError):
        await market.rentals.pay_now(borrower, cid)
    await inquiries_due(market)
    await market.rentals.process_transfers()
    row = await market.db.fetchone("SELECT state, inquiries, next_inquiry_at > NOW(3) AS later FROM transfers"
                                   " WHERE contract_id = %s", (cid,))
    assert (row["state"], row["inquiries"], row["later"]) == ("unknown", 2, 1)  # asked twice, next one later
    await market.rentals.process_transfers()  # not due yet: not asked
    assert await market.db.fetchval("SELECT inquiries FROM transfers WHERE contract_id = %s", (cid,)) == 2
    await inquiries_due(market)
    await market.rentals.process_transfers()
    assert (await market.rentals.get(cid)).state == "PAID"


async def test_a_payout_the_bank_commits_late_is_paid_once(market: Market, bank: Bank) -> None:
    await bank.fail("deposit", "late", applied=True, after=1, times=2)
    cid, owner, _ = await settled(market, bank)
    for _ in range(4):
        await inquiries_due(market)
        await market.rentals.process_transfers()
    c = await market.rentals.get(cid)
    assert await linked_balance(market, bank, owner) == c.rent  # paid once
    states = [r["state"] for r in await market.db.fetchall(
        "SELECT state FROM transfers WHERE contract_id = %s AND direction = 'deposit'", (cid,))]
    assert states == ["done", "done"]  # the owner's payout and the borrower's refund, one transfer each


async def test_a_call_that_died_with_its_process_becomes_unknown_and_is_never_failed(
        market: Market, bank: Bank) -> None:
    cid, borrower, acct = await accepted(market, bank)
    c = await market.rentals.get(cid)
    assert market.billipay is not None
    async with market.db.transaction() as cur:
        tid = await market.billipay.open_transfer(cur, purpose=f"pay:{cid}", contract_id=cid, user_id=borrower,
                                                  direction="withdraw", amount=c.total, state="pending")
    # The process claimed it and died during the call (the bank never got it).
    await market.db.execute("UPDATE transfers SET state = 'sending', sent_at = NOW(3) WHERE id = %s", (tid,))
    await market.rentals.process_transfers()
    assert await market.db.fetchval("SELECT state FROM transfers WHERE id = %s", (tid,)) == "sending"  # in flight
    await market.db.execute("UPDATE transfers SET sent_at = NOW(3) - INTERVAL %s SECOND WHERE id = %s",
                            (int(market.billipay.timeout_s) + 31, tid))
    await market.rentals.process_transfers()
    assert await market.db.fetchval("SELECT state FROM transfers WHERE id = %s", (tid,)) == "unknown"
    with pytest.raises(Conflict):
        await market.rentals.pay_now(borrower, cid)
    assert await bank.balance_of(acct) == 1_000_000


async def test_still_unknown_past_the_horizon_goes_to_an_operator(market: Market, bank: Bank) -> None:
    cid, borrower, acct = await accepted(market, bank)
    await bank.fail("withdraw", "late", applied=True, after=99)
    with pytest.raises(MarketError):
        await market.rentals.pay_now(borrower, cid)
    await market.db.execute("UPDATE transfers SET sent_at = sent_at - INTERVAL 25 HOUR WHERE contract_id = %s", (cid,))
    await inquiries_due(market)
    await market.rentals.process_transfers()
    assert market.billipay is not None
    review = await market.billipay.in_review()
    assert [r["contract_id"] for r in review] == [cid] and review[0]["state"] == "review"
    with pytest.raises(Conflict):  # still no second payment
        await market.rentals.pay_now(borrower, cid)
    asked = await market.db.fetchval("SELECT inquiries FROM transfers WHERE contract_id = %s", (cid,))
    await market.rentals.process_transfers()  # in review the bank is asked only every few hours
    assert await market.db.fetchval("SELECT inquiries FROM transfers WHERE contract_id = %s", (cid,)) == asked
    assert await market.db.fetchval("SELECT next_inquiry_at > NOW(3) + INTERVAL 5 HOUR FROM transfers"
                                    " WHERE contract_id = %s", (cid,)) == 1
    assert (await market.rentals.get(cid)).state == "ACCEPTED" and await bank.balance_of(acct) == 1_000_000
    # The bank, asked hours later, finally knows it: settled like any final answer, even from review.
    await bank.land()
    await market.db.execute("UPDATE transfers SET next_inquiry_at = NOW(3) - INTERVAL 1 SECOND")
    await market.rentals.process_transfers()
    c = await market.rentals.get(cid)
    assert c.state == "PAID" and await bank.balance_of(acct) == 1_000_000 - c.total


async def test_no_second_payment_while_the_first_may_still_land(market: Market, bank: Bank) -> None:
    """The double charge: the first withdrawal times out, the bank does not know it yet, and commits later."""
    cid, borrower, acct = await accepted(market, bank)
    await bank.fail("withdraw", "late", applied=True, after=99)
    with pytest.raises(MarketError):
        await market.rentals.pay_now(borrower, cid)
    with pytest.raises(MarketError):  # pressed again: before, a "no such transaction" was taken for failed
        await market.rentals.pay_now(borrower, cid)
    assert await bank.land() == 1  # the bank commits the first one on its own
    await inquiries_due(market)
    await market.rentals.process_transfers()
    c = await market.rentals.get(cid)
    assert c.state == "PAID" and await bank.balance_of(acct) == 1_000_000 - c.total


async def test_operators_see_the_review_queue(market: Market, bank: Bank, config: Config) -> None:
    cid, borrower, _ = await accepted(market, bank)
    await bank.fail("withdraw", "late", applied=True, after=99)
    with pytest.raises(MarketError):
        await market.rentals.pay_now(borrower, cid)
    assert "no transfers waiting" in await billi(config, "transfers", "--review")
    assert f"pay:{cid}" in await billi(config, "transfers") and "unknown" in await billi(config, "transfers")
    await market.db.execute("UPDATE transfers SET sent_at = sent_at - INTERVAL 25 HOUR, next_inquiry_at = NULL")
    await market.rentals.process_transfers()
    out = await billi(config, "transfers", "--review")
    assert f"pay:{cid}" in out and "review" in out


async def test_dates_stay_held_while_a_payment_may_land(market: Market, bank: Bank) -> None:
    owner, borrower, other = await user(market), await user(market), await user(market)
    await link(market, bank, borrower, 1_000_000, "손님")
    iid = await item(market, owner)
    c, _ = await market.rentals.request(borrower, iid, *days(2, 2))
    await market.rentals.accept(owner, c.id)
    await bank.fail("withdraw", "late", applied=True, after=99)
    with pytest.raises(MarketError):
        await market.rentals.pay_now(borrower, c.id)
    await market.db.execute("UPDATE contracts SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE id = %s", (c.id,))
    await market.rentals.tick()
    with pytest.raises(Conflict):  # the window closed, but the first payment may still land: not free
        await market.rentals.request(other, iid, *days(2, 2))
    await bank.land()
    await inquiries_due(market)
    await market.rentals.process_transfers()
    assert (await market.rentals.get(c.id)).state == "PAID"


async def test_an_extension_does_not_change_while_its_charge_may_land(market: Market, bank: Bank) -> None:
    owner, borrower = await user(market), await user(market)
    await link(market, bank, owner, 0, "주인")
    acct = await link(market, bank, borrower, 1_000_000, "손님")
    c, _ = await market.rentals.request(borrower, await item(market, owner), *days(0, 1))
    await market.rentals.accept(owner, c.id)
    c = await market.rentals.pay_now(borrower, c.id)
    await market.rentals.hand_over(owner, c.id)
    await market.rentals.hand_over(borrower, c.id)
    await market.rentals.request_extension(borrower, c.id, c.end_date + timedelta(days=5))
    await bank.fail("withdraw", "late", applied=True, after=99)
    with pytest.raises(MarketError):
        await market.rentals.approve_extension(owner, c.id)
    for change in (market.rentals.decline_extension(owner, c.id),
                   market.rentals.request_extension(borrower, c.id, c.end_date + timedelta(days=1))):
        with pytest.raises(Conflict):
            await change
    await bank.land()
    await inquiries_due(market)
    await market.rentals.process_transfers()
    extended = await market.rentals.get(c.id)
    assert extended.extra_rent == 5 * extended.price_per_day
    assert await bank.balance_of(acct) == 1_000_000 - c.total - extended.extra_rent - extended.extra_fee


async def test_an_operator_settles_a_transfer_the_bank_never_answered(market: Market, bank: Bank,
                                                                      config: Config) -> None:
    cid, borrower, acct = await accepted(market, bank)
    await bank.fail("withdraw", "late", applied=False, after=99)  # it never happened
    with pytest.raises(MarketError):
        await market.rentals.pay_now(borrower, cid)
    tid = await market.db.fetchval("SELECT id FROM transfers WHERE contract_id = %s", (cid,))
    assert f"#{tid} settled as failed" in await billi(config, "transfers", "--settle", str(tid), "--as", "failed")
    assert await market.db.fetchval("SELECT state FROM transfers WHERE id = %s", (tid,)) == "failed"
    kinds = [e["kind"] for e in await market.rentals.events(cid)]
    assert "payment_failed" in kinds  # the borrower may pay again
    c = await market.rentals.pay_now(borrower, cid)
    assert c.state == "PAID" and await bank.balance_of(acct) == 1_000_000 - c.total


@pytest.mark.parametrize("mode", ["429", "odd"])
async def test_an_odd_answer_to_a_payout_is_not_taken_for_failed(market: Market, bank: Bank, mode: str) -> None:
    other, borrower, _ = await accepted(market, bank)  # someone else's escrow sits in the platform account,
    await market.rentals.pay_now(borrower, other)        # as in real life: a second payout would not bounce
    await bank.fail("deposit", mode, applied=True, times=2)  # the money moves; the answer says nothing usable
    cid, owner, _ = await settled(market, bank)
    for _ in range(3):
        await inquiries_due(market)
        await market.rentals.process_transfers()
    c = await market.rentals.get(cid)
    assert await linked_balance(market, bank, owner) == c.rent  # paid once, not again with a new id
    assert await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE contract_id = %s AND direction ="
                                    " 'deposit'", (cid,)) == 2


async def test_a_payout_refused_three_times_waits_for_an_operator_who_sends_it_again(
        market: Market, bank: Bank, config: Config) -> None:
    await bank.fail("deposit", "closed", times=6)  # every payout and refund refused three times over
    cid, owner, _ = await settled(market, bank)
    for _ in range(4):
        await market.rentals.process_transfers()
    owner_purpose = f"payout:{cid}:{owner}"
    tries = await market.db.fetchall("SELECT state FROM transfers WHERE purpose = %s", (owner_purpose,))
    assert [t["state"] for t in tries] == ["failed"] * 3  # no fourth try by itself
    held = [e["data"] for e in await market.rentals.events(cid) if e["kind"] == "payout_held"]
    assert sorted(h["to"] for h in held) == ["borrower", "owner"]  # both told in the deal room
    assert await market.rentals.waiting_on_operator([cid]) == {cid}  # and on my page
    listed = await billi(config, "payouts")
    assert owner_purpose in listed and f"refund:{cid}:" in listed
    last = await market.db.fetchval("SELECT MAX(id) FROM transfers WHERE purpose = %s", (owner_purpose,))
    assert "done" in await billi(config, "payouts", "--retry", str(last))
    c = await market.rentals.get(cid)
    assert await linked_balance(market, bank, owner) == c.rent
    assert owner_purpose not in await billi(config, "payouts")  # (the borrower's refund still waits)
    again = await billi(config, "payouts", "--retry", str(last), exit_code=2)  # once only
    assert "다시 보낼 수 있는" in again


async def test_payouts_waiting_for_a_bank_link_never_hold_up_the_others(market: Market, bank: Bank) -> None:
    waiting = await user(market)  # someone owed money who has not linked an account
    c_id, _, _ = await settled(market, bank)
    await market.db.execute("UPDATE transfers SET state = 'failed' WHERE contract_id = %s AND direction = 'deposit'"
                            " AND state = 'pending'", (c_id,))  # (out of the way)
    assert market.billipay is not None
    async with market.db.transaction() as cur:
        for _ in range(250):
            await market.billipay.open_transfer(cur, purpose=f"payout:{c_id}:{waiting}", contract_id=c_id,
                                                user_id=waiting, direction="deposit", amount=1000, state="pending")
    cid, owner, _ = await settled(market, bank)
    await market.db.execute("UPDATE transfers SET state = 'pending' WHERE contract_id = %s AND direction = 'deposit'"
                            " AND state <> 'done'", (cid,))
    await market.rentals.process_transfers()
    states = {r["state"] for r in await market.db.fetchall(
        "SELECT state FROM transfers WHERE contract_id = %s AND direction = 'deposit'", (cid,))}
    assert states == {"done"}


async def test_two_retries_of_one_payout_at_once_send_it_once(market: Market, bank: Bank) -> None:
    other, borrower, _ = await accepted(market, bank)
    await market.rentals.pay_now(borrower, other)  # other money in the platform account: a double would not bounce
    await bank.fail("deposit", "closed", times=6)
    cid, owner, _ = await settled(market, bank)
    for _ in range(4):
        await market.rentals.process_transfers()
    purpose = f"payout:{cid}:{owner}"
    ids = [r["id"] for r in await market.db.fetchall("SELECT id FROM transfers WHERE purpose = %s ORDER BY id",
                                                    (purpose,))]
    results = await asyncio.gather(*[market.rentals.retry_payout(i) for i in (ids[-1], ids[-1], ids[0])],
                                   return_exceptions=True)
    assert len([r for r in results if isinstance(r, int)]) == 1
    c = await market.rentals.get(cid)
    assert await linked_balance(market, bank, owner) == c.rent


async def test_a_second_contract_cannot_slip_into_a_room_while_a_payment_may_land(market: Market, bank: Bank) -> None:
    cid, borrower, _ = await accepted(market, bank)
    c = await market.rentals.get(cid)
    await bank.fail("withdraw", "late", applied=True, after=99)
    with pytest.raises(MarketError):
        await market.rentals.pay_now(borrower, cid)
    await market.db.execute("UPDATE contracts SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE id = %s", (cid,))
    with pytest.raises(Conflict) as busy:
        await market.rentals.request(borrower, c.item_id, *days(20, 2))
    assert busy.value.code == "rental.room_busy"


async def test_a_bank_that_cannot_be_reached_is_tried_once_a_round_not_once_per_payout(market: Market,
                                                                                     bank: Bank) -> None:
    """Payouts queued while the bank is down: the round stops at the first that could not reach it (each would
    otherwise wait out its own timeout, holding up every other job); nothing is failed, and once the bank is back
    they all go out."""
    cid, owner, _ = await settled(market, bank)
    assert market.billipay is not None
    async with market.db.transaction() as cur:
        for _ in range(5):
            await market.billipay.open_transfer(cur, purpose=f"payout:{cid}:{owner}", contract_id=cid,
                                                user_id=owner, direction="deposit", amount=1000, state="pending")
    queued = await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE state = 'pending'")
    assert queued >= 5
    tries: list[str] = []

    async def count(request: httpx.Request) -> None:
        tries.append(request.url.path)

    real = market.billipay.client._http
    market.billipay.client._http = httpx.AsyncClient(base_url="http://127.0.0.1:9", timeout=5,  # no bank there
                                                     event_hooks={"request": [count]})
    try:
        await market.rentals.process_transfers()
    finally:
        await market.billipay.client._http.aclose()
        market.billipay.client._http = real
    assert len(tries) == 1
    assert await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE state = 'pending'") == queued
    await market.rentals.process_transfers()
    assert await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE user_id = %s AND direction = 'deposit'"
                                    " AND state NOT IN ('done', 'failed')", (owner,)) == 0
