"""A refusal answered without a transaction (a request in a deal room already open) is the one the locked path gives:
the rules are asked in its order (already asked, the room busy, too many open requests, the dates taken), and a rule
that applies but cannot be decided without the locks (one of the asker's requests lapses within the wait) leaves
the answer to them — no later rule answers first."""

from __future__ import annotations

from datetime import timedelta

import pytest

from market.errors import Conflict
from market.rentals import DatesTaken
from market.service import Market
from tests.rentals.helpers import days, item, user


async def test_asking_again_for_the_same_dates_says_already_requested_not_dates_taken(market: Market) -> None:
    owner, other_owner, borrower = await user(market), await user(market), await user(market)
    iid = await item(market, owner)
    elsewhere = await item(market, other_owner)
    mine, _ = await market.rentals.request(borrower, iid, *days(10, 3))  # live for a day
    soon, _ = await market.rentals.request(borrower, elsewhere, *days(10, 3))
    # another open request of the asker's (another item) lapses within 3× the statement deadline
    await market.db.execute("UPDATE contracts SET expires_at = %s WHERE id = %s",
                            (market.rentals.clock.now() + timedelta(seconds=5), soon.id))
    try:
        await market.rentals.request(borrower, iid, *days(10, 3))  # the very same request again
    except DatesTaken as e:
        pytest.fail(f"refused as dates taken (by the asker's own request {mine.id}) instead of"
                    f" rental.already_requested: free={e.free}")
    except Conflict as e:
        assert e.code == "rental.already_requested"
    else:
        pytest.fail("a second request for the same dates was held")


async def test_too_many_open_requests_is_said_before_dates_taken(market: Market) -> None:
    owner, borrower = await user(market), await user(market)
    limit = market.rentals.rules.max_open_requests
    items = [await item(market, owner) for _ in range(limit)]
    held = [(await market.rentals.request(borrower, iid, *days(3, 2)))[0] for iid in items]
    target = await item(market, owner)
    first = await user(market)
    await market.rentals.request(first, target, *days(20, 2))  # these dates are someone else's
    # the asker's deal room for ``target`` is open (an inquiry), and one of their requests lapses in 5 s
    await market.chat.open_deal_room(target, borrower)
    await market.db.execute("UPDATE contracts SET expires_at = %s WHERE id = %s",
                            (market.rentals.clock.now() + timedelta(seconds=5), held[0].id))
    with pytest.raises(Conflict) as refused:  # _hold (under the locks, 5 s still to go) says too many
        await market.rentals.request(borrower, target, *days(20, 2))
    assert refused.value.code == "rental.too_many_requests"


async def test_with_no_statement_deadline_asking_again_is_not_answered_dates_taken(
        market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    """``db_statement_timeout_ms=0`` (deadline None): ``live`` is never true, so "asked already" is never answered
    lock-free — and then a hold for good over the new dates (paid by someone else) answers DatesTaken, where
    ``_hold`` says rental.already_requested (its first rule). Every time, not only near an expiry."""
    monkeypatch.setattr(market.db, "_deadline_s", None)
    owner, borrower, payer = await user(market), await user(market), await user(market)
    iid = await item(market, owner)
    await market.rentals.request(borrower, iid, *days(10, 2))  # asked already (other dates)
    theirs, _ = await market.rentals.request(payer, iid, *days(20, 2))
    await market.db.execute("UPDATE contracts SET state = 'PAID' WHERE id = %s", (theirs.id,))  # booked for good
    with pytest.raises(Conflict) as refused:
        await market.rentals.request(borrower, iid, *days(20, 2))
    assert refused.value.code == "rental.already_requested"


async def test_dates_taken_in_an_open_deal_room_names_the_free_ranges_of_the_same_read(
        market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock-free "dates taken" names the nearest free ranges from what the request's one read said of the
    item's holds (an overdue one held up to today included): the same ranges the item's held dates give, with no
    second statement."""
    from market.rentals.availability import BUSY_DATES

    owner, first, second, borrower = await user(market), await user(market), await user(market), await user(market)
    iid = await item(market, owner)
    held, _ = await market.rentals.request(first, iid, *days(6, 3))
    late, _ = await market.rentals.request(second, iid, *days(12, 2))
    today = market.rentals.clock.today()
    await market.db.execute("UPDATE contracts SET state = 'OVERDUE', start_date = %s, end_date = %s WHERE id = %s",
                            (today - timedelta(days=4), today - timedelta(days=2), late.id))
    await market.chat.open_deal_room(iid, borrower)  # (an inquiry first: the deal room is open)
    busy = await market.db.fetchall(BUSY_DATES, market.rentals.params(item=iid))
    assert len(busy) == 2 and any(r["e"] == today for r in busy)  # (the overdue one, up to today)
    want = await market.rentals.free_ranges(iid, days(7, 2)[0], 2, busy_rows=busy)
    statements = []
    real = market.db.fetchone, market.db.fetchall

    async def fetchone(sql: str, args: object = ()) -> object:
        statements.append(sql)
        return await real[0](sql, args)

    async def fetchall(sql: str, args: object = ()) -> object:
        statements.append(sql)
        return await real[1](sql, args)

    monkeypatch.setattr(market.db, "fetchone", fetchone)
    monkeypatch.setattr(market.db, "fetchall", fetchall)
    with pytest.raises(DatesTaken) as taken:
        await market.rentals.request(borrower, iid, *days(7, 2))
    assert taken.value.free == want and len(want) == 3
    assert len(statements) == 1  # the request's one read
