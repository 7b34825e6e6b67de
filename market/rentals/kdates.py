"""Rental dates as people write them in Korean (and plainly in digits), read in Asia/Seoul.

``read_dates("12/24~12/26", today)`` → ``DateReading(start, end, doubt)``. Understood:

- ranges: ``12/24~12/26``, ``12/24-26``, ``12.24~12.26``, ``2026-12-24~2026-12-26``, ``12월 24일-26일``,
  ``12월 24일부터 26일까지``, ``다음주 월요일부터 수요일까지`` (the end inherits the start's month or week);
- relative days: 오늘, 내일, 모레, 글피, ``3일 후``; weekdays ``이번 주 금요일``, ``다음주 월요일``, ``토요일``;
- weekends: ``이번 주말``, ``다음 주말``;
- a start and a length: ``내일부터 3일``, ``12/24부터 3일간``, ``토요일부터 2박`` (2 nights = 3 days).

A reading the person may not have meant carries ``doubt`` (a key of the message catalogue), and the bot
shows its reading and asks before going on: a single day, a month/day already past this year (read as next
year), "이번 주말" said on a Sunday. ``None`` means no dates were found at all. Whether the dates are allowed
(not past, not too long, free) is the rental rules' business, not this reader's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

SEOUL = ZoneInfo("Asia/Seoul")
WEEKDAYS = "월화수목금토일"
MAX_TEXT = 80


def seoul_today(now: datetime | None = None) -> date:
    return (now or datetime.now(SEOUL)).astimezone(SEOUL).date()


@dataclass(frozen=True, slots=True)
class DateReading:
    start: date
    end: date  # inclusive
    doubt: str | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True, slots=True)
class _Point:
    day: date
    doubt: str | None = None


_ISO = re.compile(r"(\d{4})\s*[-./]\s*(\d{1,2})\s*[-./]\s*(\d{1,2})")
_MONTH_DAY = re.compile(r"(\d{1,2})\s*(?:월\s*(\d{1,2})\s*일?|[/.]\s*(\d{1,2}))")
_DAY_ONLY = re.compile(r"(\d{1,2})\s*일")
_WEEKDAY = re.compile(r"(이번\s*주|이번주|다음\s*주|다음주|다다음\s*주|다다음주)?\s*([월화수목금토일])요일")
_RELATIVE = {"오늘": 0, "금일": 0, "내일": 1, "명일": 1, "모레": 2, "내일모레": 2, "글피": 3}
_AFTER = re.compile(r"(\d{1,3})\s*일\s*(?:후|뒤)")
_WEEKEND = re.compile(r"(이번|다음|다다음)\s*주\s*말")
_LENGTH = re.compile(r"(\d{1,3})\s*(박|일간|일 동안|일동안|일)(?:\s*\d{1,3}\s*일)?\s*$")
_WEEKDAY_NOTE = re.compile(r"\(\s*[월화수목금토일]\s*\)")
_SPLIT = re.compile(r"\s*(?:~|〜|∼|부터|에서|–|—|-|to\b)\s*")


def read_dates(text: object, today: date) -> DateReading | None:
    if not isinstance(text, str):
        return None
    s = " ".join(_WEEKDAY_NOTE.sub("", text).split())[:MAX_TEXT]  # "12월 5일(토)": the weekday is a label
    until = "까지" in s
    s = s.replace("까지", "").strip()
    if not s:
        return None
    weekend = _WEEKEND.fullmatch(s.replace(" ", "")) or _WEEKEND.fullmatch(s)
    if weekend:
        return _weekend(weekend.group(1), today)
    iso = _ISO.fullmatch(s)
    if iso:  # a single ISO date; ranges of ISO dates are split below
        point = _iso(iso, today)
        return None if point is None else DateReading(point.day, point.day, "dates.single_day")
    length = _LENGTH.search(s)
    head = s[:length.start()].strip() if length else ""
    if length and not until and re.search(r"(부터|에서|\s)$", s[:length.start()]):
        start = _point(re.sub(r"(부터|에서)$", "", head).strip(), today, None)
        n, unit = int(length.group(1)), length.group(2)
        # A start written with its day of the month (12월 24일, 24일, 12/24) may be followed by the last day:
        # "12월 24일부터 26일" names the 26th. A start said in words (내일, 토요일, 3일 후) is followed by a length:
        # "내일부터 3일" is three days, whatever tomorrow's date. "12월 5일" is a day, not 12월 + 5 days.
        named = re.search(r"\d", head) is not None and not re.search(r"\d+\s*일\s*(후|뒤)", head)
        plain_day = start is None or (unit == "일" and named and start.day.day < n <= 31)
        if start is not None and not plain_day:
            days = n + 1 if unit == "박" else n
            if days < 1:
                return None
            return DateReading(start.day, start.day + timedelta(days=days - 1), start.doubt)
    parts = _split(s)
    if parts is None:
        return None
    if len(parts) == 1:
        point = _point(parts[0], today, None)
        return None if point is None else DateReading(point.day, point.day, point.doubt or "dates.single_day")
    first = _point(parts[0], today, None)
    if first is None:
        return None
    second = _point(parts[1], today, first.day)
    if second is None:
        return None
    end = second.day
    # the end's own "already past, so next year" is no doubt when the range simply crosses the new year
    doubt = first.doubt or (second.doubt if second.doubt != "dates.next_year" or end < first.day else None)
    if end < first.day:
        crosses = end.month < first.day.month and first.day.year == end.year
        if crosses and _MONTH_DAY.fullmatch(parts[1].strip()) and not _ISO.fullmatch(parts[1].strip()):
            end = _next_year(end)  # 12/30~1/2 crosses the new year
            doubt = first.doubt
        else:
            return None
    return DateReading(first.day, end, doubt)


def _split(s: str) -> list[str] | None:
    iso = list(_ISO.finditer(s))
    if len(iso) == 2:  # "2026-12-24~2026-12-26": the dashes belong to the dates
        return [iso[0].group(0), iso[1].group(0)]
    parts = _SPLIT.split(s)
    if parts[-1] == "":
        parts.pop()  # "12/24부터": a start and nothing after it
    if not 1 <= len(parts) <= 2 or "" in parts:
        return None  # a separator with nothing before it: "내일부터 -3일" (a minus sign), "~12/26", "내일~~모레"
    return parts


def _point(text: str, today: date, base: date | None) -> _Point | None:
    t = text.strip()
    compact = t.replace(" ", "")
    if compact in _RELATIVE:
        return _Point(today + timedelta(days=_RELATIVE[compact]))
    m = _AFTER.fullmatch(t)
    if m:
        return _Point(today + timedelta(days=int(m.group(1))))
    m = _ISO.fullmatch(t)
    if m:
        return _iso(m, today)
    m = _MONTH_DAY.fullmatch(t)
    if m:
        month, day = int(m.group(1)), int(m.group(2) or m.group(3))
        return _month_day(month, day, today)
    m = _DAY_ONLY.fullmatch(t) or (re.fullmatch(r"\d{1,2}", t) if base is not None else None)
    if m:
        day = int(m.group(1) if m.re is _DAY_ONLY else m.group(0))
        anchor = base or today
        try:
            found = anchor.replace(day=day)
        except ValueError:
            return None
        if found < anchor:  # "26일" after the 24th of this month is this month; before it, the next month
            month = anchor.month % 12 + 1
            year = anchor.year + (anchor.month == 12)
            try:
                found = date(year, month, day)
            except ValueError:
                return None
            return _Point(found, "dates.next_month" if base is None else None)
        return _Point(found)
    m = _WEEKDAY.fullmatch(t)
    if m:
        return _weekday(m.group(1), WEEKDAYS.index(m.group(2)), today, base)
    return None


def _iso(m: re.Match[str], today: date) -> _Point | None:
    try:
        return _Point(date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
    except ValueError:
        return None


def _month_day(month: int, day: int, today: date) -> _Point | None:
    try:
        found = date(today.year, month, day)
    except ValueError:
        if month == 2 and day == 29:  # Feb 29th of the next leap year is too far to be meant
            return None
        return None
    if found < today:
        return _Point(_next_year(found), "dates.next_year")
    return _Point(found)


def _next_year(d: date) -> date:
    try:
        return d.replace(year=d.year + 1)
    except ValueError:  # 2/29
        return d.replace(year=d.year + 1, day=28)


def _weekday(which: str | None, weekday: int, today: date, base: date | None) -> _Point:
    w = (which or "").replace(" ", "")
    if w:
        monday = today - timedelta(days=today.weekday())
        weeks = {"이번주": 0, "다음주": 1, "다다음주": 2}[w]
        return _Point(monday + timedelta(weeks=weeks, days=weekday))
    anchor = base or today
    ahead = (weekday - anchor.weekday()) % 7
    return _Point(anchor + timedelta(days=ahead))


def _weekend(which: str, today: date) -> DateReading:
    weeks = {"이번": 0, "다음": 1, "다다음": 2}[which]
    monday = today - timedelta(days=today.weekday())
    saturday = monday + timedelta(weeks=weeks, days=5)
    sunday = saturday + timedelta(days=1)
    if weeks == 0 and today == sunday:
        return DateReading(today, today, "dates.weekend_today")
    return DateReading(max(saturday, today), sunday)


def describe(reading: DateReading, locale: str = "ko") -> str:
    """"12월 24일(목) ~ 12월 26일(토), 3일" — how the bot shows its reading."""
    return f"{day_label(reading.start, locale)} ~ {day_label(reading.end, locale)}, " + (
        f"{reading.days}일" if locale == "ko" else f"{reading.days} day{'s' * (reading.days != 1)}")


def day_label(d: date, locale: str = "ko") -> str:
    if locale == "en":
        return d.strftime("%a %b ") + str(d.day)
    return f"{d.month}월 {d.day}일({WEEKDAYS[d.weekday()]})"
