"""The contract state machine against real MariaDB, Redis, S3 and the bank sandbox over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from market.errors import Conflict, Forbidden, InvalidInput, NotFound
from market.rentals import DatesTaken
from market.service import Market
from tests.rentals.helpers import Bank, days, item, ledger_sum, link, user


@pytest.fixture
def bank(market: Market) -> Bank:
    assert market.config.bank_url
    return Bank(market.config.bank_url)


async def _paid(market: Market, bank: Bank, *, price: int = 5000, deposit: int = 30000, start: int = 3,
                length: int = 3, balance: int = 1_000_000) -> tuple[Any, int, int, dict[str, Any], dict[str, Any]]:
    owner, borrower = await user(market), await user(market)
    iid = await item(market, owner, price_per_day=price, deposit=deposit)
    owner_acct = await link(market, bank, owner, 0, "주인")
    borrower_acct = await link(market, bank, borrower, balance, "빌리는분")
    c, _ = await market.rentals.request(borrower, iid, *days(start, length))
    await market.rentals.accept(owner, c.id)
    c = await market.rentals.pay_now(borrower, c.id)
    return c, owner, borrower, owner_acct, borrower_acct


async def test_a_normal_rental_moves_exactly_the_money_it_should(market: Market, bank: Bank) -> None:
    c, owner, borrower, owner_acct, borrower_acct = await _paid(market, bank)
    assert c.state == "PAID" and (c.rent, c.fee, c.deposit) == (15000, 750, 30000)
    assert await bank.balance_of(borrower_acct) == 1_000_000 - 45750
    assert await ledger_sum(market, f"escrow:{c.id}") == 45750
    c = await market.rentals.hand_over(owner, c.id)
    assert c.state == "PAID" and c.owner_handed_at is not None
    c = await market.rentals.hand_over(borrower, c.id)
    assert c.state == "IN_USE"
    c = await market.rentals.mark_returned(borrower, c.id)  # 반납 완료: the owner is asked
    assert c.state == "IN_USE" and c.return_declared_at is not None
    c = await market.rentals.mark_returned(owner, c.id)  # 반납 받음
    assert c.state == "RETURNED" and c.late_fee == 0
    c = await market.rentals.confirm_ok(owner, c.id)
    assert c.state == "SETTLED"
    await market.rentals.process_transfers()
    assert await bank.balance_of(owner_acct) == 15000
    assert await bank.balance_of(borrower_acct) == 1_000_000 - 15750
    assert await bank.platform() == 750
    assert await ledger_sum(market, f"escrow:{c.id}") == 0
    assert await ledger_sum(market) == 0
    assert await ledger_sum(market, "fees") == 750
    kinds = [e["kind"] for e in await market.rentals.events(c.id)]
    assert kinds[:8] == ["requested", "accepted", "paid", "handed", "in_use", "return_declared", "returned", "settled"]
    assert kinds.count("paid_out") == 2


async def test_overlapping_requests_are_refused_with_the_nearest_free_dates(market: Market, bank: Bank) -> None:
    owner, a, b = await user(market), await user(market), await user(market)
    iid = await item(market, owner)
    await market.rentals.request(a, iid, *days(5, 3))
    with pytest.raises(DatesTaken) as taken:
        await market.rentals.request(b, iid, *days(6, 2))
    free = taken.value.free
    assert free and all(e < days(5, 1)[0] or s > days(7, 1)[0] for s, e in free)
    assert all((e - s).days == 1 for s, e in free)
    c, _ = await market.rentals.request(b, iid, *days(8, 2))  # right after: free
    assert c.state == "REQUESTED"


async def test_a_refused_request_still_opens_the_deal_room_and_tells_the_owner(market: Market) -> None:
    """A request whose dates are taken, or past the open-requests limit, is refused — but the two may talk about
    other dates: the deal room it asked for stays open, and its owner hears of the inquiry."""
    owner, first, second, busy = await user(market), await user(market), await user(market), await user(market)
    iid = await item(market, owner)
    await market.rentals.request(first, iid, *days(5, 3))
    with pytest.raises(DatesTaken) as taken:
        await market.rentals.request(second, iid, *days(6, 2))
    for _ in range(market.rentals.rules.max_open_requests):
        await market.rentals.request(busy, await item(market, owner), *days(5, 3))
    with pytest.raises(Conflict) as many:
        await market.rentals.request(busy, iid, *days(20, 2))
    assert many.value.code == "rental.too_many_requests"
    for asker, refused in ((second, taken.value), (busy, many.value)):
        room = await market.db.fetchone("SELECT id, owner_id FROM rooms WHERE unique_key = %s",
                                        (f"deal:{iid}:{asker}",))
        assert room is not None and room["owner_id"] == owner
        members = await market.db.fetchall("SELECT user_id FROM room_members WHERE room_id = %s", (room["id"],))
        assert {m["user_id"] for m in members} == {owner, asker}
        assert refused.opened_room == (room["id"], [owner, asker])  # (for the caller to show both the room)
    # Refused again in the room it opened: the room is no news.
    with pytest.raises(DatesTaken) as again:
        await market.rentals.request(second, iid, *days(6, 2))
    assert again.value.opened_room is None
    assert not await market.db.fetchval("SELECT COUNT(*) FROM contracts WHERE room_id IN (SELECT id FROM rooms"
                                        " WHERE unique_key IN (%s, %s))", (f"deal:{iid}:{second}", f"deal:{iid}:{busy}"))
    # every deal room opened is one inquiry the owner was told of (a burst of them is one notification)
    told = await market.db.fetchone("SELECT COALESCE(SUM(coalesced), 0) AS n FROM notifications"
                                    " WHERE user_id = %s AND kind = 'new_inquiry'", (owner,))
    assert told["n"] == 2 + market.rentals.rules.max_open_requests + 1


@pytest.mark.parametrize("span", [(-1, 2), (0, 61), (400, 2)])
async def test_impossible_dates_are_refused(market: Market, span: tuple[int, int]) -> None:
    owner, borrower = await user(market), await user(market)
    iid = await item(market, owner)
    with pytest.raises(InvalidInput):
        await market.rentals.request(borrower, iid, *days(*span))
    assert await market.db.fetchval("SELECT COUNT(*) FROM contracts") == 0


async def test_only_the_right_person_may_act(market: Market, bank: Bank) -> None:
    owner, borrower, stranger = await user(market), await user(market), await user(market)
    iid = await item(market, owner)
    with pytest.raises(Conflict):
        await market.rentals.request(owner, iid, *days(2, 2))  # one's own item
    c, _ = await market.rentals.request(borrower, iid, *days(2, 2))
    with pytest.raises(Forbidden):
        await market.rentals.accept(borrower, c.id)  # the borrower accepting their own request
    with pytest.raises(NotFound):
        await market.rentals.accept(stranger, c.id)  # a stranger learns nothing
    with pytest.raises(NotFound):
        await market.rentals.cancel(stranger, c.id)
    await market.rentals.accept(owner, c.id)
    with pytest.raises(Conflict):
        await market.rentals.accept(owner, c.id)  # twice
    assert [e["kind"] for e in await market.rentals.events(c.id)] == ["requested", "accepted"]


async def test_a_refused_payment_leaves_the_contract_where_it_was(market: Market, bank: Bank) -> None:
    owner, borrower = await user(market), await user(market)
    iid = await item(market, owner)
    acct = await link(market, bank, borrower, 1000)
    c, _ = await market.rentals.request(borrower, iid, *days(2, 2))
    await market.rentals.accept(owner, c.id)
    with pytest.raises(Conflict) as refused:
        await market.rentals.pay_now(borrower, c.id)
    assert refused.value.code == "pay.insufficient"
    assert (await market.rentals.get(c.id)).state == "ACCEPTED"
    assert await bank.balance_of(acct) == 1000
    assert await ledger_sum(market, f"escrow:{c.id}") == 0
    assert (await market.rentals.events(c.id))[-1]["kind"] == "payment_failed"


@pytest.mark.parametrize("mode", ["timeout", "hang", "5xx", "processing"])
@pytest.mark.parametrize("applied", [True, False])
async def test_a_lost_answer_is_settled_by_inquiry_and_never_charges_twice(market: Market, bank: Bank, mode: str,
                                                                          applied: bool) -> None:
    owner, borrower = await user(market), await user(market)
    iid = await item(market, owner, price_per_day=5000, deposit=30000)
    acct = await link(market, bank, borrower, 1_000_000)
    c, _ = await market.rentals.request(borrower, iid, *days(2, 2))
    await market.rentals.accept(owner, c.id)
    await bank.fail("withdraw", mode, applied=applied, hang_s=3)
    try:
        c = await market.rentals.pay_now(borrower, c.id)
    except Conflict as e:  # the inquiry said the money did not move
        assert not applied and e.code == "pay.declined"
    c = await market.rentals.get(c.id)
    assert c.state == ("PAID" if applied else "ACCEPTED")
    assert await bank.balance_of(acct) == 1_000_000 - (c.total if applied else 0)
    if not applied:  # a fresh attempt works, once
        c = await market.rentals.pay_now(borrower, c.id)
        assert c.state == "PAID"
    with pytest.raises(Conflict):
        await market.rentals.pay_now(borrower, c.id)
    assert await bank.balance_of(acct) == 1_000_000 - c.total
    assert await ledger_sum(market, f"escrow:{c.id}") == c.total


async def test_an_unanswered_inquiry_keeps_the_payment_unknown_until_the_scheduler_settles_it(
        market: Market, bank: Bank) -> None:
    owner, borrower = await user(market), await user(market)
    iid = await item(market, owner)
    acct = await link(market, bank, borrower, 1_000_000)
    c, _ = await market.rentals.request(borrower, iid, *days(2, 2))
    await market.rentals.accept(owner, c.id)
    await bank.fail("withdraw", "timeout", applied=True)
    await bank.fail("result", "5xx")
    with pytest.raises(Exception) as unknown:
        await market.rentals.pay_now(borrower, c.id)
    assert getattr(unknown.value, "code", "") == "pay.unknown"
    with pytest.raises(Conflict) as again:  # a second press while unknown: refused, nothing charged
        await market.rentals.pay_now(borrower, c.id)
    assert again.value.code == "pay.in_progress"
    await market.db.execute("UPDATE transfers SET next_inquiry_at = NOW(3) - INTERVAL 1 SECOND")  # time passes
    await market.rentals.tick()  # the expiry sweep must not release a contract whose payment is unknown
    await market.rentals.process_transfers()
    c = await market.rentals.get(c.id)
    assert c.state == "PAID"
    assert await bank.balance_of(acct) == 1_000_000 - c.total


async def test_late_cancellation_pays_the_owner_half_the_rent(market: Market, bank: Bank) -> None:
    c, owner, borrower, owner_acct, borrower_acct = await _paid(market, bank, start=0, length=2)
    c = await market.rentals.cancel(borrower, c.id)
    assert c.state == "CANCELLED"
    await market.rentals.process_transfers()
    assert await bank.balance_of(owner_acct) == c.rent // 2
    assert await bank.balance_of(borrower_acct) == 1_000_000 - c.rent // 2 - c.fee
    assert await ledger_sum(market, f"escrow:{c.id}") == 0


async def test_early_cancellation_refunds_everything(market: Market, bank: Bank) -> None:
    c, owner, borrower, owner_acct, borrower_acct = await _paid(market, bank, start=5)
    await market.rentals.cancel(borrower, c.id)
    await market.rentals.process_transfers()
    assert await bank.balance_of(borrower_acct) == 1_000_000
    assert await bank.balance_of(owner_acct) == 0


async def test_damage_claims_are_capped_by_the_deposit_and_settle(market: Market, bank: Bank) -> None:
    c, owner, borrower, owner_acct, borrower_acct = await _paid(market, bank)
    await market.rentals.hand_over(owner, c.id)
    await market.rentals.hand_over(borrower, c.id)
    await market.rentals.mark_returned(owner, c.id)
    for bad in (0, -5, 30001, "1000", 10**12):
        with pytest.raises(InvalidInput):
            await market.rentals.claim(owner, c.id, bad, "스크래치")
    with pytest.raises(Forbidden):
        await market.rentals.claim(borrower, c.id, 1000, "내가 청구")
    c = await market.rentals.claim(owner, c.id, 12000, "<b>다리</b> 부러짐")
    assert c.state == "CLAIMED" and c.claim_note == "<b>다리</b> 부러짐"
    with pytest.raises(Forbidden):
        await market.rentals.accept_claim(owner, c.id)
    c = await market.rentals.accept_claim(borrower, c.id)
    assert c.state == "SETTLED"
    await market.rentals.process_transfers()
    assert await bank.balance_of(owner_acct) == 15000 + 12000
    assert await bank.balance_of(borrower_acct) == 1_000_000 - 15750 - 12000
    assert await ledger_sum(market) == 0


async def test_a_dispute_waits_for_an_operator(market: Market, bank: Bank) -> None:
    c, owner, borrower, owner_acct, borrower_acct = await _paid(market, bank)
    await market.rentals.hand_over(owner, c.id)
    await market.rentals.hand_over(borrower, c.id)
    await market.rentals.mark_returned(owner, c.id)
    await market.rentals.claim(owner, c.id, 20000, "깨짐")
    c = await market.rentals.dispute(borrower, c.id, "원래 있던 흠이에요")
    assert c.state == "DISPUTED"
    assert [d.id for d in await market.rentals.disputes()] == [c.id]
    with pytest.raises(InvalidInput):
        await market.rentals.resolve(c.id, 20001)
    c = await market.rentals.resolve(c.id, 5000, "사진으로 보아 일부만 인정")
    assert c.state == "SETTLED" and c.claim_amount == 5000
    await market.rentals.process_transfers()
    assert await bank.balance_of(owner_acct) == 15000 + 5000
    assert await bank.balance_of(borrower_acct) == 1_000_000 - 15750 - 5000


async def test_late_returns_pay_late_fees_from_the_deposit(market: Market, bank: Bank) -> None:
    c, owner, borrower, owner_acct, borrower_acct = await _paid(market, bank, start=0, length=1)
    await market.rentals.hand_over(owner, c.id)
    await market.rentals.hand_over(borrower, c.id)
    await market.db.execute("UPDATE contracts SET start_date = start_date - INTERVAL 4 DAY,"
                            " end_date = end_date - INTERVAL 4 DAY WHERE id = %s", (c.id,))
    done = await market.rentals.tick()
    assert done["overdue"] == 1
    assert (await market.rentals.get(c.id)).state == "OVERDUE"
    again = await market.rentals.tick()  # the daily reminder fires once a day, not every round
    assert again["overdue"] == 0 and again["reminded"] == 0
    await market.rentals.mark_returned(borrower, c.id)
    c = await market.rentals.mark_returned(owner, c.id)
    assert c.late_fee == 4 * 5000
    with pytest.raises(InvalidInput):
        await market.rentals.claim(owner, c.id, 30000 - 20000 + 1, "초과")
    await market.db.execute("UPDATE contracts SET returned_at = returned_at - INTERVAL 73 HOUR WHERE id = %s", (c.id,))
    done = await market.rentals.tick()
    assert done["settled"] == 1
    c = await market.rentals.get(c.id)
    assert c.state == "SETTLED"
    await market.rentals.process_transfers()
    assert await bank.balance_of(owner_acct) == 5000 + 20000
    assert await bank.balance_of(borrower_acct) == 1_000_000 - 5250 - 20000


async def test_unanswered_requests_and_unpaid_acceptances_expire(market: Market) -> None:
    owner, a, b = await user(market), await user(market), await user(market)
    iid = await item(market, owner)
    first, _ = await market.rentals.request(a, iid, *days(3, 2))
    await market.db.execute("UPDATE contracts SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE id = %s", (first.id,))
    with pytest.raises(Conflict):
        await market.rentals.accept(owner, first.id)  # too late, even before the sweep
    second, _ = await market.rentals.request(b, iid, *days(3, 2))  # the dates are free again
    await market.rentals.accept(owner, second.id)
    await market.db.execute("UPDATE contracts SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE id = %s", (second.id,))
    done = await market.rentals.tick()
    assert done["expired"] == 2
    assert {(await market.rentals.get(x.id)).state for x in (first, second)} == {"EXPIRED"}


async def test_an_extension_is_charged_when_the_owner_approves(market: Market, bank: Bank) -> None:
    c, owner, borrower, owner_acct, borrower_acct = await _paid(market, bank)
    await market.rentals.hand_over(owner, c.id)
    await market.rentals.hand_over(borrower, c.id)
    new_end = c.end_date.replace() + (c.end_date - c.start_date)  # two more days
    c = await market.rentals.request_extension(borrower, c.id, new_end)
    with pytest.raises(Forbidden):
        await market.rentals.approve_extension(borrower, c.id)
    c = await market.rentals.approve_extension(owner, c.id)
    assert c.end_date == new_end and c.extra_rent == 10000 and c.extra_fee == 500
    assert await bank.balance_of(borrower_acct) == 1_000_000 - 45750 - 10500
    await market.rentals.mark_returned(owner, c.id)
    await market.rentals.confirm_ok(owner, c.id)
    await market.rentals.process_transfers()
    assert await bank.balance_of(owner_acct) == 25000
    assert await bank.platform() == 1250
    assert await ledger_sum(market, f"escrow:{c.id}") == 0


async def test_a_lost_item_is_a_claim_for_the_deposit_and_the_rent_is_paid_at_once(market: Market, bank: Bank) -> None:
    c, owner, borrower, owner_acct, borrower_acct = await _paid(market, bank)
    await market.rentals.hand_over(owner, c.id)
    await market.rentals.hand_over(borrower, c.id)
    with pytest.raises(Forbidden):
        await market.rentals.report_lost(borrower, c.id)
    c = await market.rentals.report_lost(owner, c.id)
    assert c.state == "CLAIMED" and c.claim_kind == "lost" and c.claim_amount == 30000  # not a one-sided grab
    await market.rentals.process_transfers()
    assert await bank.balance_of(owner_acct) == 15000  # the rent nobody disputes, now
    assert await ledger_sum(market, f"escrow:{c.id}") == 30000  # the deposit waits for the borrower's answer
    c = await market.rentals.accept_claim(borrower, c.id)
    assert c.state == "SETTLED"
    await market.rentals.process_transfers()
    assert await bank.balance_of(owner_acct) == 15000 + 30000
    assert await bank.balance_of(borrower_acct) == 1_000_000 - 45750
    assert await ledger_sum(market, f"escrow:{c.id}") == 0 and await ledger_sum(market) == 0


async def test_a_lost_claim_can_be_disputed(market: Market, bank: Bank) -> None:
    c, owner, borrower, owner_acct, borrower_acct = await _paid(market, bank)
    await market.rentals.hand_over(owner, c.id)
    await market.rentals.hand_over(borrower, c.id)
    await market.rentals.report_lost(owner, c.id)
    c = await market.rentals.dispute(borrower, c.id, "돌려드렸어요")
    assert c.state == "DISPUTED"
    c = await market.rentals.resolve(c.id, 0, "반납이 확인됨")
    await market.rentals.process_transfers()
    assert c.state == "SETTLED"
    assert await bank.balance_of(owner_acct) == 15000
    assert await bank.balance_of(borrower_acct) == 1_000_000 - 15750


async def test_payouts_wait_for_a_linked_account_and_survive_a_refusal(market: Market, bank: Bank) -> None:
    owner, borrower = await user(market), await user(market)
    iid = await item(market, owner)
    borrower_acct = await link(market, bank, borrower, 1_000_000)
    c, _ = await market.rentals.request(borrower, iid, *days(0, 2))
    await market.rentals.accept(owner, c.id)
    await market.rentals.pay_now(borrower, c.id)
    await bank.fail("deposit", "closed")
    await market.rentals.cancel(borrower, c.id)  # late: half the rent to the owner, who has no bank link yet
    await market.rentals.process_transfers()
    assert await bank.balance_of(borrower_acct) == 1_000_000 - c.rent // 2 - c.fee
    rows = await market.db.fetchall("SELECT user_id, state FROM transfers WHERE direction = 'deposit' ORDER BY id")
    assert [(r["user_id"], r["state"]) for r in rows] == [(owner, "pending"), (borrower, "failed"),
                                                          (borrower, "done")]
    assert await ledger_sum(market, f"payable:{owner}") == c.rent // 2
    owner_acct = await link(market, bank, owner, 0)
    await market.rentals.payouts_for(owner)
    assert await bank.balance_of(owner_acct) == c.rent // 2
    assert await ledger_sum(market, f"payable:{owner}") == 0


async def test_double_clicks_and_two_tabs_charge_once(market: Market, bank: Bank) -> None:
    owner, borrower = await user(market), await user(market)
    iid = await item(market, owner)
    acct = await link(market, bank, borrower, 1_000_000)
    c, _ = await market.rentals.request(borrower, iid, *days(2, 2))
    await market.rentals.accept(owner, c.id)
    results = await asyncio.gather(*(market.rentals.pay_now(borrower, c.id) for _ in range(6)),
                                   return_exceptions=True)
    paid = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(paid) == 1 and len(refused) == 5
    assert all(getattr(e, "code", "") in ("pay.in_progress", "rental.already_paid") for e in refused)
    assert await bank.balance_of(acct) == 1_000_000 - paid[0].total
    assert await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE direction = 'withdraw'") == 1


async def test_only_the_owner_confirms_the_return(market: Market, bank: Bank) -> None:
    c, owner, borrower, owner_acct, borrower_acct = await _paid(market, bank)
    with pytest.raises(Conflict):
        await market.rentals.mark_returned(borrower, c.id)  # not even handed over yet
    await market.rentals.hand_over(owner, c.id)
    with pytest.raises(Conflict):
        await market.rentals.hand_over(owner, c.id)  # twice
    await market.rentals.hand_over(borrower, c.id)
    await market.rentals.mark_returned(borrower, c.id)
    with pytest.raises(Forbidden):
        await market.rentals.confirm_return(borrower, c.id)
    with pytest.raises(Conflict):
        await market.rentals.mark_returned(borrower, c.id)  # said once
    assert (await market.rentals.get(c.id)).state == "IN_USE"  # the borrower's word alone ends nothing
    await market.rentals.mark_returned(owner, c.id)
    with pytest.raises(Forbidden):
        await market.rentals.confirm_ok(borrower, c.id)
    with pytest.raises(Conflict):
        await market.rentals.cancel(borrower, c.id)
    assert (await market.rentals.get(c.id)).state == "RETURNED"


async def test_reminders_fire_once_even_when_two_rounds_race(market: Market, bank: Bank) -> None:
    c, owner, borrower, _, _ = await _paid(market, bank, start=2, length=1)
    await market.db.execute("UPDATE contracts SET start_date = start_date - INTERVAL 1 DAY,"
                            " end_date = end_date - INTERVAL 1 DAY WHERE id = %s", (c.id,))  # now starts tomorrow
    rounds = await asyncio.gather(market.rentals.tick(), market.rentals.tick())
    assert sum(r["reminded"] for r in rounds) == 1
    await market.rentals.hand_over(owner, c.id)
    await market.rentals.hand_over(borrower, c.id)
    await market.db.execute("UPDATE contracts SET start_date = start_date - INTERVAL 1 DAY,"
                            " end_date = end_date - INTERVAL 1 DAY WHERE id = %s", (c.id,))  # due today
    await asyncio.gather(market.rentals.tick(), market.rentals.tick())
    kinds = [e["kind"] for e in await market.rentals.events(c.id)]
    assert kinds.count("starts_tomorrow") == 1 and kinds.count("due_today") == 1


async def test_paying_the_day_before_is_not_followed_by_a_reminder_of_the_start(market: Market, bank: Bank) -> None:
    """Paid today for a rental that starts tomorrow: the payment's own message is the news; a "starts tomorrow"
    right after it would only repeat it (and overtake the owner's step just shown)."""
    c, _, _, _, _ = await _paid(market, bank, start=1, length=2)
    assert (await market.rentals.tick())["reminded"] == 0
    assert "starts_tomorrow" not in [e["kind"] for e in await market.rentals.events(c.id)]


async def test_one_scheduler_round_at_a_time_across_nodes(market: Market) -> None:
    from market.scheduler import Scheduler

    one = Scheduler(market.db, market.rentals, interval_s=60)
    two = Scheduler(market.db, market.rentals, interval_s=60)
    assert await one.run_once() is not None
    assert await two.run_once() is None  # the lease is taken
    assert await one.run_once() is not None  # and kept by its holder
    await market.db.execute("UPDATE leases SET expires_at = NOW(3) - INTERVAL 1 SECOND")  # the holder died
    assert await two.run_once() is not None
    assert await one.run_once() is None


async def test_an_extension_without_a_bank_link_fails_cleanly(market: Market, bank: Bank) -> None:
    c, owner, borrower, owner_acct, borrower_acct = await _paid(market, bank)
    await market.rentals.hand_over(owner, c.id)
    await market.rentals.hand_over(borrower, c.id)
    await market.rentals.request_extension(borrower, c.id, c.end_date + (c.end_date - c.start_date))
    assert market.billipay is not None and await market.billipay.unlink(borrower)
    with pytest.raises(Conflict) as no_link:
        await market.rentals.approve_extension(owner, c.id)
    assert no_link.value.code == "pay.no_link"
    after = await market.rentals.get(c.id)
    assert after.end_date == c.end_date and after.ext_end_date is None and after.state == "IN_USE"
    assert await market.db.fetchval("SELECT state FROM transfers WHERE purpose = %s", (f"ext:{c.id}",)) == "failed"
    assert (await market.rentals.events(c.id))[-1]["data"]["reason"] == "pay.no_link"


async def test_the_bank_refusing_our_own_token_changes_nothing(market: Market, bank: Bank) -> None:
    owner, borrower = await user(market), await user(market)
    iid = await item(market, owner)
    acct = await link(market, bank, borrower, 1_000_000)
    c, _ = await market.rentals.request(borrower, iid, *days(2, 2))
    await market.rentals.accept(owner, c.id)
    await bank.fail("token", "5xx")  # the platform's 2-legged token cannot be had right now
    with pytest.raises(Exception) as down:
        await market.rentals.pay_now(borrower, c.id)
    assert getattr(down.value, "code", "") == "pay.unreachable"
    assert await market.db.fetchval("SELECT COUNT(*) FROM transfers") == 0
    assert (await market.rentals.get(c.id)).state == "ACCEPTED"
    c = await market.rentals.pay_now(borrower, c.id)  # a moment later it works, once
    assert c.state == "PAID" and await bank.balance_of(acct) == 1_000_000 - c.total


async def test_one_open_contract_per_deal_room(market: Market, bank: Bank) -> None:
    c, owner, borrower, _, _ = await _paid(market, bank, start=1, length=1)
    later = days(10, 2)
    with pytest.raises(Conflict) as refused:  # the same person, the same item, other dates: after this one
        await market.rentals.request(borrower, c.item_id, *later)
    assert refused.value.code == "rental.room_busy"
    assert "끝난 뒤" in refused.value.message("ko")
    assert await market.db.fetchval("SELECT COUNT(*) FROM contracts WHERE room_id = %s", (c.room_id,)) == 1
    assert (await market.rentals.in_room(c.room_id)).id == c.id  # photos and commands address this one
    await market.rentals.hand_over(owner, c.id)
    await market.rentals.hand_over(borrower, c.id)
    await market.rentals.mark_returned(owner, c.id)
    await market.rentals.confirm_ok(owner, c.id)
    again, _ = await market.rentals.request(borrower, c.item_id, *later)  # settled: a new request is welcome
    assert again.room_id == c.room_id and (await market.rentals.in_room(c.room_id)).id == again.id


async def test_a_request_answers_with_the_contract_exactly_as_stored(market: Market) -> None:
    owner, borrower = await user(market), await user(market)
    iid = await item(market, owner, price_per_day=7000, deposit=20000)
    c, created = await market.rentals.request(borrower, iid, *days(3, 2))
    assert created and c.state == "REQUESTED" and (c.rent, c.fee, c.deposit) == (14000, 700, 20000)
    assert c == await market.rentals.get(c.id)  # (its row is not read back: the answer must still be the row)
    await market.rentals.cancel(borrower, c.id)
    again, created = await market.rentals.request(borrower, iid, *days(6, 1))  # the deal room is there already
    assert not created and again.room_id == c.room_id and again == await market.rentals.get(again.id)


async def test_one_open_request_per_item_and_only_so_many_in_all(market: Market) -> None:
    owner, borrower = await user(market), await user(market)
    items = [await item(market, owner) for _ in range(6)]
    first, _ = await market.rentals.request(borrower, items[0], *days(3, 2))
    with pytest.raises(Conflict) as twice:  # the same item again, other dates, while the first is open
        await market.rentals.request(borrower, items[0], *days(9, 2))
    assert twice.value.code == "rental.already_requested"
    for iid in items[1:5]:
        await market.rentals.request(borrower, iid, *days(3, 2))
    with pytest.raises(Conflict) as many:
        await market.rentals.request(borrower, items[5], *days(3, 2))
    assert many.value.code == "rental.too_many_requests" and many.value.params == {"max": 5}
    await market.rentals.cancel(borrower, first.id)  # one fewer open: the sixth item may be asked for now
    c, _ = await market.rentals.request(borrower, items[5], *days(3, 2))
    assert c.state == "REQUESTED"
    assert await market.db.fetchval("SELECT COUNT(*) FROM contracts WHERE borrower_id = %s", (borrower,)) == 6


async def test_a_block_made_after_the_first_read_still_stops_the_request(market: Market) -> None:
    owner, borrower = await user(market), await user(market)
    iid = await item(market, owner)
    opened = market.chat.may_open_deal_room

    async def blocked_meanwhile(*args: Any, **kwargs: Any) -> Any:
        out = await opened(*args, **kwargs)  # (the request's step between its first read and its locks)
        await market.blocks.block(owner, borrower)  # the owner blocks the asker while the request is under way
        return out

    market.chat.may_open_deal_room = blocked_meanwhile  # type: ignore[method-assign]
    try:
        with pytest.raises(Forbidden):
            await market.rentals.request(borrower, iid, *days(3, 2))
    finally:
        market.chat.may_open_deal_room = opened  # type: ignore[method-assign]
    assert not await market.db.fetchval("SELECT COUNT(*) FROM contracts WHERE item_id = %s", (iid,))


async def test_requests_racing_for_several_items_stay_within_the_open_requests_limit(market: Market) -> None:
    owner, borrower = await user(market), await user(market)
    items = [await item(market, owner) for _ in range(8)]
    limit = market.rentals.rules.max_open_requests
    for iid in items[:limit - 1]:
        await market.rentals.request(borrower, iid, *days(3, 2))
    await asyncio.gather(*(market.rentals.request(borrower, iid, *days(3, 2)) for iid in items[limit - 1:]),
                         return_exceptions=True)
    assert await market.db.fetchval("SELECT COUNT(*) FROM contracts WHERE borrower_id = %s AND state = 'REQUESTED'",
                                    (borrower,)) == limit


@asynccontextmanager
async def _row_locked(market: Market, lock: str, row_id: int) -> AsyncIterator[None]:
    """Another transaction holds a row lock (``lock``) for two seconds while the block runs (and then gives it
    back): whatever the block asks for waits for it."""
    locked = asyncio.Event()

    async def hold() -> None:
        async with market.db.transaction() as cur:
            await cur.execute(lock, (row_id,))
            locked.set()
            await asyncio.sleep(2.0)

    holder = asyncio.create_task(hold())
    await locked.wait()
    try:
        yield
    finally:
        await holder


async def test_a_hold_that_expires_while_a_request_waits_for_the_item_frees_its_dates(market: Market) -> None:
    owner, first, second = await user(market), await user(market), await user(market)
    iid = await item(market, owner)
    earlier, _ = await market.rentals.request(second, iid, *days(30, 2))  # the second asker's deal room exists
    await market.rentals.cancel(second, earlier.id)
    held, _ = await market.rentals.request(first, iid, *days(10, 3))
    await market.db.execute("UPDATE contracts SET expires_at = %s WHERE id = %s",
                            (market.rentals.clock.now() + timedelta(seconds=1), held.id))
    async with _row_locked(market, "SELECT status FROM items WHERE id = %s FOR UPDATE", iid):
        made, _ = await market.rentals.request(second, iid, *days(10, 3))  # the first hold expires meanwhile
    assert made.state == "REQUESTED"


async def test_an_open_request_that_expires_while_another_waits_for_the_locks_no_longer_counts(
        market: Market) -> None:
    """The open-requests limit is counted with the time after the locks: a request of the person's that expired
    while the new one waited leaves room for it — and one still live keeps it refused."""
    owner, borrower = await user(market), await user(market)
    limit = market.rentals.rules.max_open_requests
    items = [await item(market, owner) for _ in range(limit + 2)]
    held = [(await market.rentals.request(borrower, iid, *days(3, 2)))[0] for iid in items[:limit]]
    await market.db.execute("UPDATE contracts SET expires_at = %s WHERE id = %s",
                            (market.rentals.clock.now() + timedelta(seconds=1), held[0].id))
    async with _row_locked(market, "SELECT id FROM users WHERE id = %s FOR UPDATE", borrower):
        made, _ = await market.rentals.request(borrower, items[limit], *days(3, 2))  # the first expires meanwhile
    assert made.state == "REQUESTED"
    with pytest.raises(Conflict) as refused:
        await market.rentals.request(borrower, items[limit + 1], *days(3, 2))
    assert refused.value.code == "rental.too_many_requests"


async def test_a_refusal_in_an_open_deal_room_is_answered_without_waiting_for_the_items_lock(
        market: Market) -> None:
    """A request in a deal room already open that the rules refuse as committed (dates held, asked already) writes
    nothing, so it is answered from its first read without taking a lock: it does not queue behind a request
    holding the item; one that may be held still waits its turn and is held."""
    owner, first, second = await user(market), await user(market), await user(market)
    iid = await item(market, owner)
    held, _ = await market.rentals.request(first, iid, *days(10, 3))
    gone, _ = await market.rentals.request(second, iid, *days(30, 2))  # the second asker's deal room is open
    await market.rentals.cancel(second, gone.id)
    locked, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with market.db.transaction() as cur:
            await cur.execute("SELECT status FROM items WHERE id = %s FOR UPDATE", (iid,))
            locked.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await locked.wait()
    try:
        with pytest.raises(DatesTaken) as taken:
            await asyncio.wait_for(market.rentals.request(second, iid, *days(11, 1)), 30)
        assert taken.value.free and not holder.done()  # (answered while the lock is still held)
        with pytest.raises(Conflict) as again:
            await asyncio.wait_for(market.rentals.request(first, iid, *days(20, 1)), 30)
        assert again.value.code == "rental.already_requested" and not holder.done()
        waiting = asyncio.create_task(market.rentals.request(second, iid, *days(20, 1)))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # (a request that may be held waits for the lock)
    finally:
        release.set()
        await holder
    made, _ = await waiting
    assert made.state == "REQUESTED" and held.state == "REQUESTED"


async def test_two_people_asking_for_each_others_items_at_once_both_get_their_request(market: Market) -> None:
    """Each request locks its borrower's row, and its inserts check the other person's row (foreign keys): two
    neighbours asking for each other's things at the same moment deadlock in MariaDB, and the one it picks is sent
    through again rather than told "try again shortly"."""
    a, b = await user(market), await user(market)
    for n in range(4):
        ia, ib = await item(market, a), await item(market, b)
        made = await asyncio.gather(market.rentals.request(a, ib, *days(3 + n, 1)),
                                    market.rentals.request(b, ia, *days(3 + n, 1)), return_exceptions=True)
        assert not [r for r in made if isinstance(r, BaseException)], made
        assert {c.borrower_id for c, _ in made} == {a, b}  # type: ignore[union-attr]


async def test_dates_booked_for_good_are_refused_without_asking_the_rules_twice(market: Market,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A request's rules are asked with the clock from before its locks; a refusal is asked again after them only
    when what refused it may have lapsed meanwhile. Dates a paid rental books cannot lapse with the clock, so
    that refusal (the commonest) stands as asked: no second reading of the rules."""
    owner, first, second = await user(market), await user(market), await user(market)
    iid = await item(market, owner)
    earlier, _ = await market.rentals.request(second, iid, *days(22, 1))  # (their deal room exists already)
    await market.rentals.cancel(second, earlier.id)
    booked, _ = await market.rentals.request(first, iid, *days(3, 2))
    await market.db.execute("UPDATE contracts SET state = 'PAID' WHERE id = %s", (booked.id,))
    asked: list[str] = []
    real = market.db.transaction

    @asynccontextmanager
    async def counted(*a: Any, **kw: Any) -> Any:
        async with real(*a, **kw) as cur:
            execute = cur.execute

            async def ask(q: str, args: Any = None) -> Any:
                asked.append(q[:40])
                return await execute(q, args)
            cur.execute = ask
            yield cur

    monkeypatch.setattr(market.db, "transaction", counted)
    with pytest.raises(DatesTaken):
        await market.rentals.request(second, iid, *days(3, 2))
    assert asked == []
