"""The database layer's own reading of MariaDB's answers (``market.db``: packets taken whole from the stream's
buffer, each distinct set of result columns parsed once): every answer still decodes to the same values, the
first time a statement runs and every time after, whatever its size."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal

from market.service import Market

_TYPES = ("SELECT 7 AS n, '빌리마켓' AS word, CAST('2026-12-05' AS DATE) AS day,"
          " CAST('2026-12-05 10:11:12.345' AS DATETIME(3)) AS at, CAST('12.50' AS DECIMAL(8, 2)) AS money,"
          " JSON_OBJECT('k', '값') AS doc, UNHEX('00FF') AS raw, NULL AS nothing, %s AS given")


async def test_each_answer_decodes_the_same_once_its_columns_are_known(market: Market) -> None:
    expected = {"n": 7, "word": "빌리마켓", "day": date(2026, 12, 5), "at": datetime(2026, 12, 5, 10, 11, 12, 345000),
                "money": Decimal("12.50"), "doc": '{"k": "값"}', "raw": b"\x00\xff", "nothing": None}
    for given in ("첫째", "둘째", "셋째"):
        row = await market.db.fetchone(_TYPES, (given,))
        assert row == {**expected, "given": given}
    async with market.db.transaction() as cur:
        await cur.execute(_TYPES, ("넷째",))
        assert await cur.fetchone() == {**expected, "given": "넷째"}


async def test_columns_of_one_name_and_another_type_are_told_apart(market: Market) -> None:
    assert await market.db.fetchval("SELECT %s AS x", (5,)) == 5
    assert await market.db.fetchval("SELECT %s AS x", ("5",)) == "5"
    assert await market.db.fetchval("SELECT CAST(%s AS DATE) AS x", ("2026-01-02",)) == date(2026, 1, 2)
    assert await market.db.fetchval("SELECT %s AS x", (5,)) == 5


async def test_answers_larger_than_what_one_read_brings_arrive_whole(market: Market) -> None:
    rows = await market.db.fetchall(  # (MariaDB's sequence tables: 20,000 rows of 200-256 characters)
        "SELECT a.seq * 100 + b.seq AS n, REPEAT(CHAR(65 + MOD(a.seq * 100 + b.seq, 26) USING utf8mb4),"
        " 200 + MOD(a.seq * 100 + b.seq, 57)) AS filler FROM seq_0_to_199 a JOIN seq_0_to_99 b")
    assert len(rows) == 20000
    assert all(r["filler"] == chr(65 + r["n"] % 26) * (200 + r["n"] % 57) for r in rows)
    # many at once on the pool's connections, interleaved on the loop
    many = await asyncio.gather(*(market.db.fetchall("SELECT %s AS k, REPEAT('가', %s) AS v", (k, k * 300))
                                  for k in range(1, 40)))
    assert [(r[0]["k"], len(r[0]["v"])) for r in many] == [(k, k * 300) for k in range(1, 40)]


async def test_named_values_the_statement_does_not_name_are_left_out(market: Market) -> None:
    row = await market.db.fetchone("SELECT %(a)s + %(a)s AS twice, '100%%' AS pct, %(ab)s AS ab",
                                   {"a": 2, "ab": "에이비", "b": 3, "now": datetime(2026, 1, 1)})
    assert row == {"twice": 4, "pct": "100%", "ab": "에이비"}
