"""Every state has an exit in time: accepting and paying end when the rental starts; a paid rental nobody
handed over is cancelled and refunded; a one-sided hand-over counts after a day; an unanswered claim goes to an
operator (never silently accepted)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from market.errors import Conflict
from market.service import Market
from tests.rentals.helpers import Bank, days, item, link, paid_rental, user


@pytest.fixture
def bank(market: Market) -> Bank:
    assert market.config.bank_url
    return Bank(market.config.bank_url)


async def _contract(market: Market, bank: Bank, *, pay: bool = True) -> tuple[Any, int, int, dict[str, Any]]:
    owner, borrower = await user(market), await user(market)
    await link(market, bank, owner, 0, "주인")
    acct = await link(market, bank, borrower, 1_000_000, "손님")
    c, _ = await market.rentals.request(borrower, await item(market, owner), *days(0, 2))
    await market.rentals.accept(owner, c.id)
    if pay:
        c = await market.rentals.pay_now(borrower, c.id)
    return c, owner, borrower, acct


async def _started(market: Market, cid: int, days_ago: int) -> None:
    await market.db.execute("UPDATE contracts SET start_date = start_date - INTERVAL %s DAY,"
                            " end_date = end_date - INTERVAL %s DAY + INTERVAL 5 DAY WHERE id = %s",
                            (days_ago, days_ago, cid))


async def _paid_ago(market: Market, cid: int, days_ago: int) -> None:
    await market.db.execute("UPDATE contract_events SET created_at = created_at - INTERVAL %s DAY"
                            " WHERE contract_id = %s AND kind = 'paid'", (days_ago, cid))


async def test_accepting_and_paying_end_when_the_rental_has_started(market: Market, bank: Bank) -> None:
    owner, borrower = await user(market), await user(market)
    acct = await link(market, bank, borrower, 1_000_000, "손님")
    iid = await item(market, owner)
    c, _ = await market.rentals.request(borrower, iid, *days(0, 2))
    await _started(market, c.id, 1)
    with pytest.raises(Conflict) as refused:
        await market.rentals.accept(owner, c.id)
    assert refused.value.code == "rental.started"
    await market.db.execute("UPDATE contracts SET start_date = CURDATE() + INTERVAL 1 DAY WHERE id = %s", (c.id,))
    await market.rentals.accept(owner, c.id)
    await _started(market, c.id, 2)
    with pytest.raises(Conflict) as late:
        await market.rentals.pay_now(borrower, c.id)
    assert late.value.code == "rental.started"
    assert await bank.balance_of(acct) == 1_000_000
    assert await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE contract_id = %s", (c.id,)) == 0


async def test_a_paid_rental_nobody_handed_over_is_cancelled_and_refunded_in_full(market: Market, bank: Bank) -> None:
    c, owner, borrower, acct = await _contract(market, bank)
    await market.rentals.tick()
    assert (await market.rentals.get(c.id)).state == "PAID"  # today is the start: still time
    await _started(market, c.id, 2)  # two days later, no 전달 완료, no 수령 완료 …
    await market.rentals.tick()
    assert (await market.rentals.get(c.id)).state == "PAID"  # … but paid only now: a day from the payment
    await _paid_ago(market, c.id, 2)
    await market.rentals.tick()
    await market.rentals.process_transfers()
    after = await market.rentals.get(c.id)
    assert after.state == "CANCELLED"
    assert await bank.balance_of(acct) == 1_000_000  # rent, fee and deposit back
    assert "no_show" in [e["kind"] for e in await market.rentals.events(c.id)]


async def test_a_one_sided_hand_over_counts_after_a_day(market: Market, bank: Bank) -> None:
    c, owner, borrower, _ = await _contract(market, bank)
    await market.rentals.hand_over(owner, c.id)  # the owner says 전달 완료; the borrower never answers
    await market.rentals.tick()
    assert (await market.rentals.get(c.id)).state == "PAID"
    await market.db.execute("UPDATE contracts SET owner_handed_at = owner_handed_at - INTERVAL 25 HOUR"
                            " WHERE id = %s", (c.id,))
    await _started(market, c.id, 2)  # (and the no-show rule does not cancel what the owner handed over)
    await market.rentals.tick()
    after = await market.rentals.get(c.id)
    assert after.state == "IN_USE" and after.borrower_got_at is not None


async def test_an_unanswered_claim_goes_to_an_operator(market: Market, bank: Bank) -> None:
    c, owner, borrower, _ = await _contract(market, bank)
    await market.rentals.hand_over(owner, c.id)
    await market.rentals.hand_over(borrower, c.id)
    await market.rentals.mark_returned(owner, c.id)
    await market.rentals.claim(owner, c.id, 10_000, "다리가 부러졌어요")
    await market.rentals.tick()
    assert (await market.rentals.get(c.id)).state == "CLAIMED"
    await market.db.execute("UPDATE contract_events SET created_at = created_at - INTERVAL 73 HOUR"
                            " WHERE contract_id = %s AND kind = 'claimed'", (c.id,))
    await market.rentals.tick()
    assert (await market.rentals.get(c.id)).state == "DISPUTED"
    assert c.id in [d.id for d in await market.rentals.disputes()]


async def test_a_hand_over_pressed_days_before_the_start_counts_only_from_the_start_day(
        market: Market, bank: Bank) -> None:
    cid, owner, _ = await paid_rental(market, bank, start=5, length=2)
    await market.rentals.hand_over(owner, cid)
    await market.db.execute("UPDATE contracts SET owner_handed_at = owner_handed_at - INTERVAL 3 DAY WHERE id = %s",
                            (cid,))
    await market.rentals.tick()
    assert (await market.rentals.get(cid)).state == "PAID"  # the rental starts in five days


async def test_every_deadline_follows_the_one_clock(market: Market, bank: Bank) -> None:
    """Nothing but the clock moves: a paid rental nobody hands over, a declared return nobody answers, a claim
    nobody answers — each takes its timed edge exactly when the clock passes its deadline."""
    clock = market.rentals.clock
    c, owner, borrower, acct = await _contract(market, bank)  # starts today, two days
    clock.advance(hours=23)
    await market.rentals.tick()
    assert (await market.rentals.get(c.id)).state == "PAID"
    clock.advance(hours=26)  # a day after the start day began (and after the payment)
    await market.rentals.tick()
    await market.rentals.process_transfers()
    assert (await market.rentals.get(c.id)).state == "CANCELLED" and await bank.balance_of(acct) == 1_000_000

    clock.offset = timedelta()  # (back to today, for a new rental)
    d, owner, borrower, _ = await _contract(market, bank)
    await market.rentals.hand_over(owner, d.id)
    await market.rentals.hand_over(borrower, d.id)
    await market.rentals.mark_returned(borrower, d.id)
    clock.advance(hours=23)
    await market.rentals.tick()
    assert (await market.rentals.get(d.id)).state == "IN_USE"
    clock.advance(hours=2)
    await market.rentals.tick()
    assert (await market.rentals.get(d.id)).state == "RETURNED"  # the owner's silence confirmed it
    await market.rentals.claim(owner, d.id, 1000, "흠집")
    clock.advance(hours=71)
    await market.rentals.tick()
    assert (await market.rentals.get(d.id)).state == "CLAIMED"
    clock.advance(hours=2)
    await market.rentals.tick()
    assert (await market.rentals.get(d.id)).state == "DISPUTED"
