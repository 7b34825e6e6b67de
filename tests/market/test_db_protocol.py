"""The database layer's own reading of MariaDB's answers (``market.db``: packets taken whole from the stream's
buffer, each distinct set of result columns parsed once): every answer still decodes to the same values, the
first time a statement runs and every time after, whatever its size."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import aiomysql
import aiomysql.connection

from market import db
from market.db import Tail
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


async def test_a_tails_answers_read_in_place_are_the_drivers(market: Market, monkeypatch) -> None:
    """A transaction's last round trip against the real server, its answers read in place where they arrived
    whole, says what the driver says: affected rows and inserted ids past 250 and 2**24, a statement with a
    warning and a result set among them (both left to the driver), the reads after the COMMIT."""

    await market.db.execute("CREATE TABLE IF NOT EXISTS tail_answers (id BIGINT AUTO_INCREMENT PRIMARY KEY,"
                            " k INT NOT NULL UNIQUE, v INT NOT NULL) AUTO_INCREMENT = 70000")

    async def run(base: int) -> tuple[list, list]:
        async with market.db.transaction() as cur:
            await cur.execute("SELECT 1 AS one")
            rows = ", ".join(f"({base + k}, {k})" for k in range(300))
            tail = Tail()
            tail.add(f"INSERT INTO tail_answers (k, v) VALUES {rows}")
            tail.add("SET @first = LAST_INSERT_ID()")
            tail.add("UPDATE tail_answers SET v = v + 1 WHERE k >= %s AND k < %s", base, base + 300)
            tail.add("INSERT IGNORE INTO tail_answers (k, v) VALUES (%s, 0)", base)  # (a duplicate: a warning)
            tail.add("INSERT INTO tail_answers (id, k, v) VALUES (%s, %s, 1)", 20_000_000 + base, base + 1000)
            tail.add("SELECT COUNT(*) AS n FROM tail_answers WHERE k >= %s", base)
            tail.add("DELETE FROM tail_answers WHERE k = %s", base + 1000)
            tail.read_after("SELECT v FROM tail_answers WHERE k = %s", base)
            return await tail.commit(cur)

    fast = await run(0)  # (each answer read in place when it had arrived whole, else by the driver)
    monkeypatch.setattr(db, "_FAST_OK", False)
    slow = await run(100_000)
    inserted_fast, inserted_slow = fast[0][0][1], slow[0][0][1]
    assert inserted_fast >= 70000 and inserted_slow > inserted_fast
    assert [a for a, _, _ in fast[0]] == [a for a, _, _ in slow[0]] == [300, 0, 300, 0, 1, 1, 1]
    assert fast[0][4][1] == 20_000_000 and slow[0][4][1] == 20_100_000
    assert fast[0][5][2] == [{"n": 301}] and slow[0][5][2] == [{"n": 301}]
    assert fast[1] == slow[1] == [[{"v": 1}]]
    assert await market.db.fetchval("SELECT COUNT(*) FROM tail_answers") == 600


def _ok(seq: int, affected: int, inserted: int, status: int, warnings: int = 0, message: bytes = b"") -> bytes:
    def lenenc(n: int) -> bytes:
        if n < 251:
            return bytes([n])
        if n < 2**16:
            return b"\xfc" + n.to_bytes(2, "little")
        if n < 2**24:
            return b"\xfd" + n.to_bytes(3, "little")
        return b"\xfe" + n.to_bytes(8, "little")
    body = b"\x00" + lenenc(affected) + lenenc(inserted) + status.to_bytes(2, "little") + warnings.to_bytes(
        2, "little") + message
    return len(body).to_bytes(3, "little") + bytes([seq]) + body


def _cursor_on(data: bytes, seq: int) -> tuple[Any, Any]:
    """A cursor after a statement of a batch whose next answers are ``data``, already in the stream's buffer."""
    conn = aiomysql.Connection.__new__(aiomysql.Connection)
    conn._loop, conn._encoding, conn._next_seq_id, conn._writer = asyncio.get_running_loop(), "utf8", seq, None
    conn._reader = asyncio.StreamReader()
    conn._reader.feed_data(data)
    previous = aiomysql.connection.MySQLResult(None)
    previous.affected_rows, previous.insert_id, previous.server_status, previous.has_next = 1, 9, 10, 8
    conn._result, conn._affected_rows, conn.server_status = previous, 1, 10
    cur = db._Cursor(conn)
    cur._result, cur._rowcount, cur._lastrowid = previous, 1, 9
    return conn, cur


def _state(conn: Any, cur: Any) -> tuple[Any, ...]:
    r = conn._result
    return ((r.affected_rows, r.insert_id, r.server_status, r.warning_count, r.message, r.has_next, r.rows,
             r.description, r.field_count, r.connection), conn._affected_rows, conn.server_status, conn._next_seq_id,
            bytes(conn._reader._buffer), cur._result is r, cur._rowcount, cur._lastrowid, cur._rows,
            cur._description, cur._rownumber)


async def test_an_ok_answer_read_in_place_leaves_what_the_driver_leaves() -> None:
    """Every length of affected rows and inserted id (one, three, four and nine bytes), with and without more
    answers after it, a message, the sequence id wrapping: the same cursor and connection as ``nextset()``."""
    more, last = 8 | 2, 2  # (SERVER_MORE_RESULTS_EXISTS | AUTOCOMMIT; AUTOCOMMIT)
    for affected in (0, 250, 251, 65_535, 65_536, 2**24, 2**40):
        for inserted in (0, 250, 65_536, 2**24 + 5):
            for status, message, seq in ((more, b"", 5), (last, b"Rows matched: 1  Changed: 1", 255)):
                data = _ok(seq, affected, inserted, status, message=message) + _ok((seq + 1) % 256, 1, 2, last)
                fast_conn, fast_cur = _cursor_on(data, seq)
                assert db._next_ok(fast_cur) == (affected, inserted)
                slow_conn, slow_cur = _cursor_on(data, seq)
                assert await slow_cur.nextset()
                assert _state(fast_conn, fast_cur) == _state(slow_conn, slow_cur)


async def test_an_answer_that_is_no_whole_ok_is_left_to_the_driver_untouched() -> None:
    whole = _ok(3, 1, 7, 10)
    for data in (_ok(3, 1, 7, 10, warnings=1), _ok(3, 1, 7, 10, warnings=256),  # (the driver asks for them)
                 b"\x17\x00\x00\x03\xff\x26\x04#23000Duplicate entry",  # an error
                 whole[:-1], whole[:4],  # not all here yet
                 _ok(4, 1, 7, 10),  # another sequence id
                 b"\x01\x00\x00\x03\x02"):  # a result set's column count
        conn, cur = _cursor_on(data, 3)
        before = _state(conn, cur)
        assert db._next_ok(cur) is None
        assert _state(conn, cur) == before
