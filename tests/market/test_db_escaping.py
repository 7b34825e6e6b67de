"""Long text is escaped for SQL exactly as the driver escapes it, and stored and read back unchanged."""

from __future__ import annotations

import random

from pymysql.converters import escape_string

from market import db as database
from market.service import Market

TRICKY = ["\\", "\0", "\n", "\r", "\032", "'", '"', "%", "%s", "\\'", "가", "🏕️", "a", " ", "\t", "\\\\n", "}"]


def _texts() -> list[str]:
    rng = random.Random(5)
    return ["".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 600))) for _ in range(300)]


def test_long_text_is_the_same_literal_as_the_drivers() -> None:
    for text in _texts():
        assert database._escaped(text) == "'" + escape_string(text) + "'"


async def test_long_text_is_stored_and_read_back_unchanged(market: Market) -> None:
    texts = [t for t in _texts() if len(t) > database._LONG_TEXT][:20]
    assert texts
    for text in texts:
        got = await market.db.fetchval("SELECT %s", (text,))
        assert got == text


async def test_every_kind_of_value_is_the_same_literal_as_the_drivers(market: Market) -> None:
    from datetime import date, datetime
    from decimal import Decimal

    now = datetime(2026, 11, 30, 12, 5, 9, 120000)
    values = [1, 0, -7, 2**62, True, False, None, now, now, datetime(2026, 1, 2, 3, 4, 5), now, 1.5, Decimal("2.50"),
              date(2026, 12, 1), "user", "", "it's", "가" * 300, now.replace(microsecond=1)]
    async with market.db.held() as cur:
        conn = cur.connection
        assert cur._escape_args(values, conn) == tuple(conn.escape(v) for v in values)
        assert await cur.execute("SELECT CAST(%s AS DATETIME(6)) AS a, %s AS b, %s AS c", (now, None, 42)) == 1
        assert await cur.fetchone() == {"a": now, "b": None, "c": 42}


async def test_named_values_are_the_same_literals_as_the_drivers_and_only_the_named_are_sent(market: Market) -> None:
    from datetime import date, datetime

    now = datetime(2026, 11, 30, 12, 5, 9, 120000)
    values = {"n": 7, "flag": True, "none": None, "now": now, "day": date(2026, 12, 1), "text": "it's 가",
              "long": "'\\" * 200, "unused": object()}
    async with market.db.held() as cur:
        conn = cur.connection
        named = {k: v for k, v in values.items() if k != "unused"}
        assert cur._escape_args(named, conn) == {k: conn.escape(v) for k, v in named.items()}
        # (a value the statement does not name is never escaped: an object the driver cannot write is fine)
        await cur.execute("SELECT %(n)s AS n, %(flag)s AS flag, %(none)s AS none, CAST(%(now)s AS DATETIME(6)) AS now,"
                          " %(day)s AS day, %(text)s AS text, %(long)s AS `long`,"
                          " %(n)s + 1 AS again", values)
        row = await cur.fetchone()
    assert row == {"n": 7, "flag": 1, "none": None, "now": now, "day": "2026-12-01", "text": "it's 가",
                   "long": "'\\" * 200, "again": 8}


def test_the_names_of_a_statement_are_kept_for_a_bounded_number_of_texts() -> None:
    assert database._names_in("SELECT %(a)s, %(b)s, %(a)s, %s, %%(c)s") == ("a", "b", "c")
    for i in range(3 * database._NAMES_KEPT):
        assert database._names_in(f"SELECT %(v{i})s") == (f"v{i}",)
    assert database._names_in.cache_info().currsize <= database._NAMES_KEPT
