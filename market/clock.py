"""The one clock every deadline reads — of a contract and of its bank transfers. Its time is passed into the
SQL as a value (never ``NOW()``), so a test moves time for all of it at once (``advance``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

SEOUL = ZoneInfo("Asia/Seoul")


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        """UTC, naive (as stored), to the millisecond (as DATETIME(3) keeps it)."""
        t = datetime.now(UTC).replace(tzinfo=None) + self.offset
        return t.replace(microsecond=t.microsecond // 1000 * 1000)

    def today(self) -> date:
        """The date in Seoul, where rentals start and end."""
        return seoul_day(self.now())

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


def seoul_day(at: datetime) -> date:
    """The Seoul date of a stored (UTC, naive) time."""
    return at.replace(tzinfo=UTC).astimezone(SEOUL).date()


def day_start(d: date) -> datetime:
    """00:00 of a day in Seoul, as a stored (UTC) time."""
    return datetime.combine(d, datetime.min.time()) - timedelta(hours=9)
