"""The lender confirms the return; a rental overdue too long is a 분실 claim, answered like any claim, with the
undisputed rent paid when it opens; a payment or extension charge that lands late buys only what it still can
(else everything goes back); an objection stops a one-sided hand-over from counting."""

from __future__ import annotations

from typing import Any

import pytest

from market.errors import Conflict, MarketError
from market.rentals import DatesTaken
from market.people.mypage import my_page
from market.service import Market
from tests.rentals.helpers import (Bank, billi, days, inquiries_due, item, ledger_sum, link, linked_balance,
                                   user)


@pytest.fixture
def bank(market: Market) -> Bank:
    assert market.config.bank_url
    return Bank(market.config.bank_url)


async def _in_use(market: Market, bank: Bank, *, late_days: int = 0, price: int = 5000,
                  deposit: int = 30000) -> tuple[Any, int, int]:
    """A rental in use (one day long, today), moved ``late_days`` into the past: then overdue."""
    owner, borrower = await user(market), await user(market)
    await link(market, bank, owner, 0, "주인")
    await link(market, bank, borrower, 1_000_000, "손님")
    c, _ = await market.rentals.request(borrower, await item(market, owner, price_per_day=price, deposit=deposit),
                                        *days(0, 1))
    await market.rentals.accept(owner, c.id)
    await market.rentals.pay_now(borrower, c.id)
    await market.rentals.hand_over(owner, c.id)
    await market.rentals.hand_over(borrower, c.id)
    if late_days:
        await market.db.execute("UPDATE contracts SET start_date = start_date - INTERVAL %s DAY, end_date ="
                                " end_date - INTERVAL %s DAY WHERE id = %s", (late_days, late_days, c.id))
        await market.rentals.tick()
    return await market.rentals.get(c.id), owner, borrower


async def _kinds(market: Market, cid: int) -> list[str]:
    return [e["kind"] for e in await market.rentals.events(cid)]


# -- the lender confirms the return -------------------------------------------------------------------------
async def test_the_borrowers_return_waits_for_the_owner_who_may_object(market: Market, bank: Bank) -> None:
    c, owner, borrower = await _in_use(market, bank, late_days=2)
    assert c.state == "OVERDUE"
    c = await market.rentals.mark_returned(borrower, c.id)  # 반납 완료
    assert c.state == "OVERDUE" and c.return_declared_at is not None and c.returned_at is None
    c = await market.rentals.object_return(owner, c.id)  # 아직 못 받았어요
    assert c.state == "OVERDUE" and c.return_declared_at is None
    assert await _kinds(market, c.id) == [*["requested", "accepted", "paid", "handed", "in_use", "overdue"],
                                          "still_overdue", "return_declared", "return_objected"]
    with pytest.raises(Conflict):
        await market.rentals.object_return(owner, c.id)  # nothing declared now
    await market.db.execute("UPDATE contracts SET start_date = start_date - INTERVAL 1 DAY, end_date ="
                            " end_date - INTERVAL 1 DAY WHERE id = %s", (c.id,))  # a day later, fees ran on
    await market.rentals.mark_returned(borrower, c.id)
    c = await market.rentals.mark_returned(owner, c.id)  # 반납 받음
    assert c.state == "RETURNED" and c.late_fee == 3 * 5000


async def test_an_owner_silent_for_a_day_is_taken_to_have_confirmed_with_fees_to_the_declared_day(
        market: Market, bank: Bank) -> None:
    c, owner, borrower = await _in_use(market, bank, late_days=3)
    await market.rentals.mark_returned(borrower, c.id)
    # declared two days ago (one day late then); the owner said nothing since
    await market.db.execute("UPDATE contracts SET return_declared_at = NOW(3) - INTERVAL 48 HOUR WHERE id = %s", (c.id,))
    await market.rentals.tick()
    c = await market.rentals.get(c.id)
    assert c.state == "RETURNED" and c.late_fee == 1 * 5000  # not three days' worth
    # the inspection window starts now, at the (silent) confirmation, not at the declaration
    assert await market.db.fetchval("SELECT returned_at > NOW(3) - INTERVAL 1 MINUTE FROM contracts WHERE id = %s",
                                    (c.id,)) == 1
    returned = [e for e in await market.rentals.events(c.id) if e["kind"] == "returned"][0]
    assert returned["actor_kind"] == "system" and returned["data"]["automatic"]
    assert (await market.rentals.tick())["settled"] == 0  # the owner still has the whole window


async def test_a_declared_return_stops_the_daily_reminder_and_extensions(market: Market, bank: Bank) -> None:
    c, owner, borrower = await _in_use(market, bank, late_days=2)
    await market.rentals.request_extension(borrower, c.id, days(2, 1)[0])
    await market.rentals.mark_returned(borrower, c.id)
    with pytest.raises(Conflict) as late:  # the owner's old 연장 승인 button: no days to charge for any more
        await market.rentals.approve_extension(owner, c.id)
    assert late.value.code == "rental.return_declared"
    await market.rentals.decline_extension(owner, c.id)
    await market.db.execute("UPDATE contracts SET overdue_reminded_on = NULL WHERE id = %s", (c.id,))
    assert (await market.rentals.tick())["reminded"] == 0
    with pytest.raises(Conflict) as refused:
        await market.rentals.request_extension(borrower, c.id, days(1, 1)[0])
    assert refused.value.code == "rental.return_declared"


# -- 분실 ---------------------------------------------------------------------------------------------------
async def test_fourteen_days_overdue_becomes_a_lost_claim_the_borrower_can_dispute(market: Market, bank: Bank) -> None:
    c, owner, borrower = await _in_use(market, bank, late_days=13, price=1000, deposit=50000)
    assert c.state == "OVERDUE"
    await market.db.execute("UPDATE contracts SET start_date = start_date - INTERVAL 2 DAY, end_date ="
                            " end_date - INTERVAL 2 DAY WHERE id = %s", (c.id,))  # now 15 days late
    await market.rentals.tick()
    await market.rentals.process_transfers()
    c = await market.rentals.get(c.id)
    assert c.state == "CLAIMED" and c.claim_kind == "lost"
    # the whole deposit is claimed, and no late fees apart: they are part of what the borrower may dispute
    assert (c.late_fee, c.claim_amount) == (0, 50000)
    claimed = [e for e in await market.rentals.events(c.id) if e["kind"] == "claimed"][0]
    assert claimed["actor_kind"] == "system" and claimed["data"]["automatic"]
    # the rent nobody disputes reached the owner at once; the deposit waits for the answer
    assert await linked_balance(market, bank, owner) == 1000
    assert await ledger_sum(market, f"escrow:{c.id}") == 50000
    c = await market.rentals.dispute(borrower, c.id, "돌려드렸어요")
    c = await market.rentals.resolve(c.id, 10000, "일부만 인정")
    await market.rentals.process_transfers()
    assert c.state == "SETTLED" and await ledger_sum(market, f"escrow:{c.id}") == 0
    assert await linked_balance(market, bank, owner) == 1000 + 10000
    assert await linked_balance(market, bank, borrower) == 1_000_000 - 1050 - 10000
    assert await ledger_sum(market) == 0


async def test_a_declared_return_is_never_taken_for_lost(market: Market, bank: Bank) -> None:
    c, owner, borrower = await _in_use(market, bank, late_days=20)
    assert (await market.rentals.get(c.id)).state == "CLAIMED"  # twenty days late: a claim (the sweep ran)
    c2, _, borrower2 = await _in_use(market, bank, late_days=3)
    await market.rentals.mark_returned(borrower2, c2.id)
    await market.db.execute("UPDATE contracts SET start_date = start_date - INTERVAL 20 DAY, end_date ="
                            " end_date - INTERVAL 20 DAY WHERE id = %s", (c2.id,))
    await market.rentals.tick()
    assert (await market.rentals.get(c2.id)).state == "OVERDUE"  # the owner is asked about the return instead


async def test_a_damage_claim_pays_the_undisputed_rent_when_it_opens(market: Market, bank: Bank) -> None:
    c, owner, borrower = await _in_use(market, bank)
    await market.rentals.mark_returned(owner, c.id)
    await market.rentals.claim(owner, c.id, 12000, "깨짐")
    await market.rentals.process_transfers()
    assert await linked_balance(market, bank, owner) == 5000
    await market.rentals.accept_claim(borrower, c.id)
    await market.rentals.process_transfers()
    assert await linked_balance(market, bank, owner) == 5000 + 12000
    assert await linked_balance(market, bank, borrower) == 1_000_000 - 5250 - 12000
    assert await ledger_sum(market, "fees") >= 250 and await ledger_sum(market, f"escrow:{c.id}") == 0


# -- money that lands late ----------------------------------------------------------------------------------
async def test_a_payment_that_lands_after_the_rental_started_is_refunded_in_full(market: Market, bank: Bank) -> None:
    owner, borrower = await user(market), await user(market)
    acct = await link(market, bank, borrower, 1_000_000, "손님")
    c, _ = await market.rentals.request(borrower, await item(market, owner), *days(1, 2))
    await market.rentals.accept(owner, c.id)
    await bank.fail("withdraw", "late", applied=True, after=1)
    with pytest.raises(MarketError):
        await market.rentals.pay_now(borrower, c.id)
    # the bank sits on it; meanwhile the start day passes
    await market.db.execute("UPDATE contracts SET start_date = start_date - INTERVAL 3 DAY WHERE id = %s", (c.id,))
    await bank.land()
    await inquiries_due(market)
    await market.rentals.process_transfers()
    await market.rentals.process_transfers()  # the refund goes out
    after = await market.rentals.get(c.id)
    assert after.state == "EXPIRED"
    refunded = [e for e in await market.rentals.events(c.id) if e["kind"] == "late_payment_refunded"]
    assert [e["data"]["reason"] for e in refunded] == ["rental.started"]
    assert await bank.balance_of(acct) == 1_000_000
    assert await ledger_sum(market, f"escrow:{c.id}") == 0


async def test_a_payment_that_lands_after_its_dates_were_given_away_is_refunded(market: Market, bank: Bank) -> None:
    owner, borrower, other = await user(market), await user(market), await user(market)
    acct = await link(market, bank, borrower, 1_000_000, "손님")
    iid = await item(market, owner)
    c, _ = await market.rentals.request(borrower, iid, *days(3, 2))
    await market.rentals.accept(owner, c.id)
    await bank.fail("withdraw", "late", applied=True, after=1)
    with pytest.raises(MarketError):
        await market.rentals.pay_now(borrower, c.id)
    # (a booking made while the hold had lapsed, before payments held their dates)
    d, _ = await market.rentals.request(other, iid, *days(10, 2))
    await market.db.execute("UPDATE contracts SET state = 'PAID', start_date = %s, end_date = %s WHERE id = %s",
                            (*days(3, 2), d.id))
    await bank.land()
    await inquiries_due(market)
    await market.rentals.process_transfers()
    await market.rentals.process_transfers()
    assert (await market.rentals.get(c.id)).state == "EXPIRED"
    assert (await market.rentals.get(d.id)).state == "PAID"
    assert await bank.balance_of(acct) == 1_000_000


async def test_an_extension_charge_that_lands_late_moves_the_end_date_and_takes_back_the_late_fees(
        market: Market, bank: Bank) -> None:
    c, owner, borrower = await _in_use(market, bank, late_days=4)
    assert c.state == "OVERDUE"
    new_end = days(1, 1)[0]
    c = await market.rentals.request_extension(borrower, c.id, new_end)
    await bank.fail("withdraw", "late", applied=True, after=1)
    with pytest.raises(MarketError):
        await market.rentals.approve_extension(owner, c.id)
    for change in (market.rentals.decline_extension(owner, c.id),
                   market.rentals.request_extension(borrower, c.id, days(2, 1)[0])):
        with pytest.raises(Conflict):  # the extension cannot change while its charge may land
            await change
    transfer = await market.db.fetchone("SELECT kind, pays_for FROM transfers WHERE contract_id = %s AND kind = 'ext'",
                                        (c.id,))
    assert transfer["kind"] == "ext" and new_end.isoformat() in transfer["pays_for"]
    await market.rentals.mark_returned(borrower, c.id)
    c = await market.rentals.mark_returned(owner, c.id)
    assert c.state == "RETURNED" and c.late_fee == 4 * 5000  # against the current end date
    with pytest.raises(Conflict):
        await market.rentals.confirm_ok(owner, c.id)  # not settled while the charge may still land
    await bank.land()
    await inquiries_due(market)
    await market.rentals.process_transfers()
    c = await market.rentals.get(c.id)
    assert c.state == "RETURNED" and c.end_date == new_end and c.late_fee == 0
    assert (c.extra_rent, c.ext_end_date) == (5 * 5000, None)
    c = await market.rentals.confirm_ok(owner, c.id)
    await market.rentals.process_transfers()
    assert await linked_balance(market, bank, owner) == 5000 + 5 * 5000
    assert await linked_balance(market, bank, borrower) == 1_000_000 - 5250 - 5 * 5250
    assert await ledger_sum(market, f"escrow:{c.id}") == 0 and await ledger_sum(market) == 0


async def test_an_extension_charge_landing_while_overdue_puts_the_rental_back_in_use(
        market: Market, bank: Bank) -> None:
    c, owner, borrower = await _in_use(market, bank, late_days=2)
    await market.rentals.request_extension(borrower, c.id, days(3, 1)[0])
    await bank.fail("withdraw", "late", applied=True, after=1)
    with pytest.raises(MarketError):
        await market.rentals.approve_extension(owner, c.id)
    await bank.land()
    await inquiries_due(market)
    await market.rentals.process_transfers()
    c = await market.rentals.get(c.id)
    assert c.state == "IN_USE" and c.end_date == days(3, 1)[0]
    assert "extended" in await _kinds(market, c.id)


# -- an objection to a one-sided hand-over ------------------------------------------------------------------
async def _handed_then_contested(market: Market, bank: Bank) -> tuple[Any, int, int, dict[str, Any]]:
    owner, borrower = await user(market), await user(market)
    await link(market, bank, owner, 0, "주인")
    acct = await link(market, bank, borrower, 1_000_000, "손님")
    c, _ = await market.rentals.request(borrower, await item(market, owner), *days(3, 2))
    await market.rentals.accept(owner, c.id)
    await market.rentals.pay_now(borrower, c.id)
    await market.rentals.hand_over(owner, c.id)  # 전달 완료 …
    with pytest.raises(Conflict):
        await market.rentals.object_handover(owner, c.id)  # (not one's own)
    c = await market.rentals.object_handover(borrower, c.id)  # … 아직 못 받았어요
    return c, owner, borrower, acct


async def test_a_contested_hand_over_goes_to_an_operator_not_to_a_refund(market: Market, bank: Bank) -> None:
    c, owner, borrower, acct = await _handed_then_contested(market, bank)
    assert c.state == "DISPUTED" and c.claim_kind == "handover" and c.owner_handed_at is not None
    for cancel in (market.rentals.cancel(borrower, c.id), market.rentals.cancel(owner, c.id)):
        with pytest.raises(Conflict):  # nobody's word alone ends it: no refund to a borrower who may have it
            await cancel
    await market.db.execute("UPDATE contracts SET start_date = start_date - INTERVAL 5 DAY,"
                            " handover_objected_at = handover_objected_at - INTERVAL 5 DAY WHERE id = %s", (c.id,))
    await market.rentals.tick()
    assert (await market.rentals.get(c.id)).state == "DISPUTED"  # no timed edge takes it either
    with pytest.raises(Conflict):
        await market.rentals.resolve(c.id, 0)  # not a claim
    assert await market.rentals.waiting_on_operator([c.id]) == {c.id}
    page = await my_page(market, borrower)
    assert page["borrowed"]["current"][0]["operator_note"] == "운영자가 확인하고 있어요 · 보통 2일 안에"
    assert (await my_page(market, owner))["lent"]["current"][0]["operator_note"]
    await market.chat.send(borrower, "손님", c.room_id, "문 앞에 두셨다는데 없었어요")  # a statement
    out = await billi(market.config, "disputes")
    assert f"#{c.id}" in out and "hand-over contested by the borrower" in out
    assert "borrower: 문 앞에 두셨다는데 없었어요" in out
    await billi(market.config, "disputes", "--resolve", str(c.id), "--handed", "yes", "--note", "사진 확인")
    after = await market.rentals.get(c.id)
    assert after.state == "IN_USE" and after.borrower_got_at is not None
    assert await bank.balance_of(acct) == 1_000_000 - c.total


async def test_an_operator_who_finds_nothing_was_handed_over_refunds_everything(market: Market, bank: Bank) -> None:
    c, owner, borrower, acct = await _handed_then_contested(market, bank)
    c = await market.rentals.resolve_handover(c.id, False, "전달 기록 없음")
    await market.rentals.process_transfers()
    assert c.state == "CANCELLED" and await bank.balance_of(acct) == 1_000_000
    assert await ledger_sum(market, f"escrow:{c.id}") == 0


async def test_a_contested_hand_over_keeps_its_dates_booked(market: Market, bank: Bank) -> None:
    c, owner, borrower, acct = await _handed_then_contested(market, bank)
    other = await user(market)
    with pytest.raises(DatesTaken):  # the operator may yet say the rental runs
        await market.rentals.request(other, c.item_id, c.start_date, c.end_date)


async def test_an_operator_deciding_late_that_it_was_handed_over_starts_no_late_fees_or_lost_claim(
        market: Market, bank: Bank) -> None:
    c, owner, borrower, acct = await _handed_then_contested(market, bank)
    clock = market.rentals.clock
    clock.advance(days=20)  # the operator takes long; meanwhile the days up to today stay with the dispute
    await market.rentals.tick()
    other = await user(market)
    with pytest.raises(DatesTaken):
        await market.rentals.request(other, c.item_id, clock.today(), clock.today())
    with pytest.raises(Conflict):
        await market.rentals.resolve_handover(c.id, None)  # "not yet" only before the start
    c = await market.rentals.resolve_handover(c.id, True, "전달됨")
    await market.rentals.tick()
    c = await market.rentals.get(c.id)
    assert c.state == "OVERDUE" and c.end_date == days(3, 2)[1]  # the dates are what was agreed (and booked) …
    assert c.lateness(clock.today()) == (0, 0)  # … but no late fees for the days spent waiting on the operator
    clock.advance(days=2)
    assert c.lateness(clock.today()) == (2, 2 * c.price_per_day)
    await market.rentals.tick()
    assert (await market.rentals.get(c.id)).state == "OVERDUE"  # and no 분실 claim for those days either


async def test_an_operator_may_send_an_early_contested_hand_over_back_to_both(market: Market, bank: Bank) -> None:
    c, owner, borrower, acct = await _handed_then_contested(market, bank)  # 전달 완료 pressed days early
    c = await market.rentals.resolve_handover(c.id, None, "아직 만나지 않음")
    assert c.state == "PAID" and c.owner_handed_at is None and c.borrower_got_at is None
    await market.rentals.hand_over(owner, c.id)
    c = await market.rentals.hand_over(borrower, c.id)
    assert c.state == "IN_USE"
