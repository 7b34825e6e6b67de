"""Daily reconciliation: the platform account's transaction list at the bank against our transfers and ledger.
Every difference the sandbox can inject (a line missing, one nobody sent, a wrong amount) is reported, a
transfer we recorded failed that the bank carried out moves its money to suspense, and the scheduler runs it
once a day. (And a user token the bank says expired early is refreshed, not taken for a refusal.)"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import MARKET
from market.errors import Conflict, MarketError
from market.kftc import print_ref
from market.rentals.kdates import seoul_today
from market.service import Market
from tests.rentals.helpers import Bank, accepted, billi, ledger_sum, link, settled


@pytest.fixture
async def bank(market: Market) -> Bank:
    assert market.config.bank_url
    b = Bank(market.config.bank_url)
    await b.reset()  # the statement holds only this test's movements
    return b


async def test_a_day_that_matches_has_no_differences_and_each_injected_one_is_reported(
        market: Market, bank: Bank) -> None:
    await settled(market, bank)  # a payment in, the owner's payout and the deposit refund out
    today = seoul_today().isoformat()
    out = await billi(market.config, "reconcile", "--date", today)
    assert "no differences" in out
    await bank.statement("drop")  # the bank lost the refund's line
    await bank.statement("amend", amount=700)  # and shows the owner's payout 700 won bigger
    await bank.statement("extra", amount=12345)  # and money in that none of our transfers sent
    out = await billi(market.config, "reconcile", "--date", today, exit_code=1)
    lines = [x for x in out.splitlines() if x.startswith(("missing", "amount", "extra"))]
    assert sorted(x.split()[0] for x in lines) == ["amount", "extra", "missing"], out
    assert any("12,345원" in x for x in lines if x.startswith("extra"))
    assert any("5,700원" in x for x in lines if x.startswith("amount")), out
    assert await market.db.fetchval("SELECT differences FROM reconciliations WHERE day = %s", (today,)) == 3


async def test_a_transfer_recorded_failed_that_the_bank_carried_out_goes_to_suspense(market: Market, bank: Bank) -> None:
    cid, borrower, acct = await accepted(market, bank)
    c = await market.rentals.get(cid)
    await bank.fail("withdraw", "timeout", applied=True)  # the money moved; the answer was lost
    await bank.fail("result", "internal", times=50)  # and the bank will not say so
    with pytest.raises(MarketError):
        await market.rentals.pay_now(borrower, c.id)
    tid = await market.db.fetchval("SELECT id FROM transfers WHERE contract_id = %s", (c.id,))
    await billi(market.config, "transfers", "--settle", str(tid), "--as", "failed")  # an operator's wrong call
    assert await bank.balance_of(acct) == 1_000_000 - c.total
    out = await billi(market.config, "reconcile", "--date", seoul_today().isoformat(), exit_code=1)
    assert "suspense" in out
    assert await market.db.fetchval("SELECT state FROM transfers WHERE id = %s", (tid,)) == "suspense"
    assert await ledger_sum(market, "suspense") == c.total and await ledger_sum(market) == 0
    listed = await billi(market.config, "transfers", "--suspense")
    assert f"#{tid}" in listed and f"{c.total:,}원" in listed
    # a second run finds it already in suspense: it is not moved twice
    await billi(market.config, "reconcile", "--date", seoul_today().isoformat())
    assert await ledger_sum(market, "suspense") == c.total


async def test_the_scheduler_reconciles_yesterday_once_and_shows_the_differences(client: TestClient) -> None:
    market = client.app[MARKET]
    bank = Bank(market.config.bank_url)
    yesterday = seoul_today() - timedelta(days=1)
    for _ in range(1200):  # the gateway's scheduler did its first round (yesterday: nothing to see) at start
        if await market.scheduler.reconciler.done_on(yesterday):
            break
        await asyncio.sleep(0.05)
    assert await market.scheduler.reconciler.done_on(yesterday)
    # Its later rounds wait: the lease is someone else's (else a round could reconcile the day before we do).
    await market.db.execute("UPDATE leases SET holder = 'this test', expires_at = NOW(3) + INTERVAL 1 HOUR"
                            " WHERE name = 'scheduler'")
    await market.db.execute("DELETE FROM reconciliations")  # as if that round had not come yet
    market.scheduler.reconcile_after_hour = 0  # (whatever the hour in Seoul now)
    await bank.reset()
    await bank.statement("extra", amount=5000, date=yesterday.strftime("%Y%m%d"))
    assert await market.scheduler.reconcile() == 1
    assert await market.scheduler.reconcile() == 0  # once a day
    assert await market.db.fetchval("SELECT differences FROM reconciliations WHERE day = %s", (yesterday,)) == 1
    async with client.get("/metrics") as resp:
        text = await resp.text()
    assert 'billi_reconcile_differences{kind="extra"} 1.0' in text


async def test_an_access_token_that_expired_early_is_refreshed_and_the_payment_goes_through_once(
        market: Market, bank: Bank) -> None:
    cid, borrower, acct = await accepted(market, bank)
    c = await market.rentals.get(cid)
    before = await market.db.fetchval("SELECT access_token_enc FROM bank_links WHERE user_id = %s", (borrower,))
    await bank.fail("withdraw", "expired_token")  # the bank says the token has expired, earlier than it said
    paid = await market.rentals.pay_now(borrower, c.id)
    assert paid.state == "PAID"
    assert await bank.balance_of(acct) == 1_000_000 - c.total
    assert await market.db.fetchval("SELECT access_token_enc FROM bank_links WHERE user_id = %s", (borrower,)) != before
    assert await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE contract_id = %s", (c.id,)) == 1


async def test_a_refused_refresh_after_an_expired_token_fails_the_payment_and_it_can_be_paid_again(
        market: Market, bank: Bank) -> None:
    cid, borrower, _ = await accepted(market, bank)
    c = await market.rentals.get(cid)
    assert market.billipay is not None
    await market.db.execute("UPDATE bank_links SET refresh_token_enc = %s WHERE user_id = %s",
                            (market.billipay.box.seal("revoked"), borrower))
    await bank.fail("withdraw", "expired_token")
    with pytest.raises(Conflict) as refused:
        await market.rentals.pay_now(borrower, c.id)
    assert refused.value.code == "pay.relink"  # nothing was sent: failed, not left in flight
    assert await market.db.fetchval("SELECT state FROM transfers WHERE contract_id = %s", (c.id,)) == "failed"
    await link(market, bank, borrower, 1_000_000, "손님")  # linked again
    assert (await market.rentals.pay_now(borrower, c.id)).state == "PAID"


async def test_a_transfer_still_open_when_its_day_was_reconciled_is_checked_again_later(
        market: Market, bank: Bank) -> None:
    cid, borrower, acct = await accepted(market, bank)
    c = await market.rentals.get(cid)
    await bank.fail("withdraw", "timeout", applied=True)
    await bank.fail("result", "internal", times=50)
    with pytest.raises(MarketError):
        await market.rentals.pay_now(borrower, c.id)
    market.scheduler.reconcile_after_hour = 0
    clock = market.rentals.clock
    clock.advance(days=1)  # the next morning: the day with the open transfer is reconciled
    assert await market.scheduler.reconcile() == 0
    tid = await market.db.fetchval("SELECT id FROM transfers WHERE contract_id = %s", (c.id,))
    await market.rentals.settle_transfer(tid, "failed")  # later an operator decides, wrongly
    assert await bank.balance_of(acct) == 1_000_000 - c.total
    clock.advance(days=1)  # the morning after: the last days are reconciled again
    assert await market.scheduler.reconcile() == 1
    assert await market.db.fetchval("SELECT state FROM transfers WHERE id = %s", (tid,)) == "suspense"
    assert await market.scheduler.reconcile() == 0  # once a day


async def test_a_line_repeated_on_the_neighbouring_day_is_an_extra_line(market: Market, bank: Bank) -> None:
    cid, _, _ = await settled(market, bank)
    today = seoul_today()
    pay = await market.db.fetchone("SELECT bank_tran_id, amount FROM transfers WHERE contract_id = %s"
                                   " AND kind = 'pay'", (cid,))
    await bank.statement("extra", amount=int(pay["amount"]), date=(today - timedelta(days=1)).strftime("%Y%m%d"),
                         printed=print_ref(pay["bank_tran_id"]))  # the bank booked it yesterday as well
    diffs = await market.scheduler.reconciler.run(today - timedelta(days=1))
    assert [d.kind for d in diffs] == ["extra"]
    assert await market.scheduler.reconciler.run(today) == []  # today's own line matches, nothing missing
