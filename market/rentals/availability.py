"""Which dates of an item are free. REQUESTED and ACCEPTED contracts hold their dates until ``expires_at`` (an
accepted one whose payment may still land, past it too); PAID, IN_USE and OVERDUE ones (an overdue one up to
today) and a contested hand-over waiting for an operator book them, and an approved extension whose charge may still land holds its extra days. A new hold locks
the item row first, so two overlapping holds on one item cannot both commit, whichever node they come from."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import orjson

from market.errors import InvalidInput
from market.rentals.contract import MAX_FUTURE_DAYS
from market.rentals.machine import Machine

# An accepted contract whose payment may still land holds its dates past the payment window (else the dates
# could be given to someone else and the late payment would book them twice).
PAYMENT_OPEN = ("(state = 'ACCEPTED' AND EXISTS (SELECT 1 FROM transfers t WHERE t.purpose = CONCAT('pay:', contracts.id)"
                " AND t.state IN ('pending','sending','unknown','review')))")
# (a contested hand-over waits for an operator who may say the rental runs: its dates stay booked)
_HOLDS = ("(state IN ('PAID','IN_USE','OVERDUE') OR (state IN ('REQUESTED','ACCEPTED') AND expires_at > %(now)s)"
          " OR (state = 'DISPUTED' AND claim_kind = 'handover') OR " + PAYMENT_OPEN + ")")
# The last day a contract holds: its end date, or today for one overdue or whose hand-over is contested (the item
# may be out with the borrower until it comes back or an operator decides).
_UNTIL = ("(CASE WHEN state = 'OVERDUE' OR (state = 'DISPUTED' AND claim_kind = 'handover')"
          " THEN GREATEST(end_date, %(today)s) ELSE end_date END)")


# Whether another contract holds any day of %(start)s … %(end)s of item %(item)s (one expression, so a request can
# ask it together with its other checks): a hold overlapping the dates, or an approved extension whose charge may
# still land over them.
TAKEN = ("(EXISTS (SELECT 1 FROM contracts WHERE item_id = %(item)s AND id <> %(exclude)s AND start_date <= %(end)s"
         f" AND {_UNTIL} >= %(start)s AND {_HOLDS})"
         " OR EXISTS (SELECT 1 FROM contracts WHERE item_id = %(item)s AND id <> %(exclude)s AND ext_end_date IS NOT"
         " NULL AND end_date < %(end)s AND ext_end_date >= %(start)s AND EXISTS (SELECT 1 FROM transfers t WHERE"
         " t.purpose = CONCAT('ext:', contracts.id) AND t.state IN ('pending','sending','unknown','review'))))")

# Until when TAKEN holds at a later time than %(now)s (on the same day in Seoul) whatever else happens with the
# clock: the last expiry of the requests and accepted holds over those dates that lapse with it, or for good
# (9999-12-31) when a hold over them does not lapse with the clock (paid, in use, overdue, a contested hand-over,
# a payment or an extension's charge that may still land) — only another transaction frees those. NULL: nothing.
_FOR_GOOD = "CAST('9999-12-31 00:00:00' AS DATETIME)"
TAKEN_UNTIL = ("(SELECT MAX(u) FROM (SELECT CASE WHEN state IN ('REQUESTED','ACCEPTED') AND NOT " + PAYMENT_OPEN
               + f" THEN expires_at ELSE {_FOR_GOOD} END AS u FROM contracts WHERE item_id = %(item)s"
               f" AND id <> %(exclude)s AND start_date <= %(end)s AND {_UNTIL} >= %(start)s AND {_HOLDS}"
               f" UNION ALL SELECT {_FOR_GOOD} FROM contracts WHERE item_id = %(item)s AND id <> %(exclude)s"
               " AND ext_end_date IS NOT NULL AND end_date < %(end)s AND ext_end_date >= %(start)s AND EXISTS (SELECT 1"
               " FROM transfers t WHERE t.purpose = CONCAT('ext:', contracts.id)"
               " AND t.state IN ('pending','sending','unknown','review'))) lapses)")
# The days an item is held from today on (%(item)s, %(today)s, %(now)s): each hold's first and last day.
BUSY_DATES = (f"SELECT start_date, {_UNTIL} AS e FROM contracts WHERE item_id = %(item)s AND {_UNTIL} >= %(today)s"
              f" AND {_HOLDS}")
# The same as one JSON column of another query ([[first day, last day], …]; ``busy_of`` reads it back).
BUSY_DATES_JSON = (f"(SELECT COALESCE(JSON_ARRAYAGG(JSON_ARRAY(start_date, {_UNTIL})), '[]') FROM contracts"
                   f" WHERE item_id = %(item)s AND {_UNTIL} >= %(today)s AND {_HOLDS})")


def busy_of(raw: str | bytes) -> list[dict[str, date]]:
    """``BUSY_DATES_JSON``'s column as ``BUSY_DATES``'s rows."""
    return [{"start_date": date.fromisoformat(s), "e": date.fromisoformat(e)} for s, e in orjson.loads(raw)]


class Availability(Machine):
    async def taken(self, cur: Any, item_id: int, start: date, end: date, exclude: int = 0) -> bool:
        await cur.execute(f"SELECT {TAKEN} AS taken", self.params(item=item_id, exclude=exclude, start=start, end=end))
        return bool((await cur.fetchone())["taken"])

    async def free_ranges(self, item_id: int, start: date, days: int, count: int = 3,
                          item: Mapping[str, Any] | None = None,
                          busy_rows: list[Any] | None = None) -> list[tuple[date, date]]:
        """The free ranges of ``days`` days nearest to ``start`` (never in the past, within the item's dates;
        ``item``: its ``available_from`` and ``available_until``, when the caller read them already; ``busy_rows``:
        what ``BUSY_DATES`` says of the item, likewise)."""
        if item is None:
            item = await self.db.fetchone("SELECT available_from, available_until FROM items WHERE id = %s",
                                          (item_id,))
        if item is None:
            return []
        today = self.clock.today()
        if busy_rows is None:
            busy_rows = await self.db.fetchall(BUSY_DATES, self.params(item=item_id))
        busy = [(r["start_date"], r["e"]) for r in busy_rows]
        lo = max(today, item["available_from"])
        hi = item["available_until"] or today + timedelta(days=MAX_FUTURE_DAYS)

        def free(s: date) -> bool:
            e = s + timedelta(days=days - 1)
            return s >= lo and e <= hi and not any(b0 <= e and b1 >= s for b0, b1 in busy)

        found: list[tuple[date, date]] = []
        for step in range(1, MAX_FUTURE_DAYS):
            for s in (start + timedelta(days=step), start - timedelta(days=step)):
                if free(s) and all(abs((s - f[0]).days) >= days for f in found):
                    found.append((s, s + timedelta(days=days - 1)))
            if len(found) >= count:
                break
        return sorted(found[:count])

    def check_dates(self, start: Any, end: Any) -> None:
        if not isinstance(start, date) or not isinstance(end, date):
            raise InvalidInput("rental.bad_dates", field="dates")
        today = self.clock.today()
        if start < today:
            raise InvalidInput("rental.past_dates", field="dates")
        if end < start:
            raise InvalidInput("rental.reversed_dates", field="dates")
        if (end - start).days + 1 > self.rules.max_days:
            raise InvalidInput("rental.too_long", field="dates", max=self.rules.max_days)
        if start > today + timedelta(days=MAX_FUTURE_DAYS):
            raise InvalidInput("rental.too_far", field="dates")
