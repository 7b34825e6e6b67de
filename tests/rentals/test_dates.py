"""Korean rental dates, read in Asia/Seoul."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.rentals.kdates import DateReading, describe, read_dates

TODAY = date(2026, 11, 27)  # a Friday


@pytest.mark.parametrize(("text", "start", "end", "doubt"), [
    ("12/24~12/26", date(2026, 12, 24), date(2026, 12, 26), None),
    ("12/24 ~ 12/26", date(2026, 12, 24), date(2026, 12, 26), None),
    ("12/24-26", date(2026, 12, 24), date(2026, 12, 26), None),
    ("12.24~12.26", date(2026, 12, 24), date(2026, 12, 26), None),
    ("2026-12-24~2026-12-26", date(2026, 12, 24), date(2026, 12, 26), None),
    ("12월 24일-26일", date(2026, 12, 24), date(2026, 12, 26), None),
    ("12월 24일부터 26일까지", date(2026, 12, 24), date(2026, 12, 26), None),
    ("내일부터 3일", date(2026, 11, 28), date(2026, 11, 30), None),
    ("내일부터 3일간", date(2026, 11, 28), date(2026, 11, 30), None),
    ("토요일부터 2박", date(2026, 11, 28), date(2026, 11, 30), None),
    ("이번 주말", date(2026, 11, 28), date(2026, 11, 29), None),
    ("다음 주말", date(2026, 12, 5), date(2026, 12, 6), None),
    ("다음주 월요일부터 수요일까지", date(2026, 11, 30), date(2026, 12, 2), None),
    ("모레~글피", date(2026, 11, 29), date(2026, 11, 30), None),
    ("12/30~1/2", date(2026, 12, 30), date(2027, 1, 2), None),
    # readings the person may not have meant: the bot shows them and asks
    ("12/24", date(2026, 12, 24), date(2026, 12, 24), "dates.single_day"),
    ("1/3~1/5", date(2027, 1, 3), date(2027, 1, 5), "dates.next_year"),
])
def test_readings(text: str, start: date, end: date, doubt: str | None) -> None:
    assert read_dates(text, TODAY) == DateReading(start, end, doubt)


@pytest.mark.parametrize(("text", "start", "end"), [
    ("내일부터 3일", date(2026, 12, 2), date(2026, 12, 4)),  # not "from the 2nd until the 3rd"
    ("모레부터 5일", date(2026, 12, 3), date(2026, 12, 7)),
    ("토요일부터 3일", date(2026, 12, 5), date(2026, 12, 7)),
    ("2일 후부터 4일", date(2026, 12, 3), date(2026, 12, 6)),
    ("12월 2일부터 5일", date(2026, 12, 2), date(2026, 12, 5)),  # a start with its day: the last day
    ("3일부터 5일", date(2026, 12, 3), date(2026, 12, 5)),
])
def test_a_start_in_words_is_followed_by_a_length_early_in_a_month(text: str, start: date, end: date) -> None:
    assert read_dates(text, date(2026, 12, 1)) == DateReading(start, end)


def test_this_weekend_on_a_sunday_is_asked_about() -> None:
    sunday = date(2026, 11, 29)
    assert read_dates("이번 주말", sunday) == DateReading(sunday, sunday, "dates.weekend_today")


@pytest.mark.parametrize("text", ["", "   ", "언젠가", "13/40", "2/30~3/2", "12/26~12/24", "내일부터 0일", None, 42,
                                  "'; DROP TABLE contracts; --", "🎉🎉", "1" * 1000])
def test_nonsense_is_not_a_date(text: object) -> None:
    assert read_dates(text, TODAY) is None


@given(st.text(max_size=60), st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)))
def test_never_raises_and_never_reverses(text: str, today: date) -> None:
    reading = read_dates(text, today)
    if reading is not None:
        assert reading.start <= reading.end
        assert reading.days >= 1


def test_readings_are_described_in_korean() -> None:
    r = DateReading(date(2026, 12, 24), date(2026, 12, 26))
    assert describe(r) == "12월 24일(목) ~ 12월 26일(토), 3일"
    assert describe(r, "en").endswith("3 days")
