"""``_Cursor.commit_after``'s deadlines with a scripted cursor (no server): each answer up to the COMMIT's has three
statement deadlines of its own, the reads after it share three more; ``done`` stays consistent when that shared one
runs out mid-way."""

from __future__ import annotations

import asyncio
from typing import Any

import aiomysql
import pymysql
import pytest

from market.db import DatabaseUnavailable, _Cursor


class _Conn:
    closed = False

    def close(self) -> None:
        self.closed = True


class _Scripted(aiomysql.DictCursor):  # type: ignore[misc]
    """Answers (delay, rows or an exception) one by one: ``execute`` the first, ``nextset`` each next."""

    script: list[tuple[float, Any]]

    def __init__(self, conn: _Conn, script: list[tuple[float, Any]]) -> None:  # (no aiomysql state)
        self._conn, self.script, self._rows_now = conn, list(script), []

    @property
    def connection(self) -> Any:
        return self._conn

    @property
    def rowcount(self) -> int:
        return 1

    @property
    def lastrowid(self) -> int:
        return 0

    async def _answer(self) -> bool:
        if not self.script:
            return False
        delay, what = self.script.pop(0)
        await asyncio.sleep(delay)
        if isinstance(what, BaseException):
            self.script.clear()
            raise what
        self._rows_now = what
        return True

    async def execute(self, query: str, args: Any = None) -> int:
        await self._answer()
        return 1

    async def nextset(self) -> bool | None:
        return True if await self._answer() else None

    def fetchall(self) -> Any:
        f = asyncio.get_running_loop().create_future()
        f.set_result(self._rows_now)
        return f


class _Cur(_Cursor, _Scripted):
    pass


def _cursor(script: list[tuple[float, Any]], deadline_s: float) -> tuple[_Cur, _Conn]:
    conn = _Conn()
    cur = _Cur(conn, script)
    cur.deadline_s = deadline_s
    return cur, conn


async def test_reads_cut_off_by_the_shared_deadline_are_none_and_the_commit_stands() -> None:
    # statement 0 (first answer), statement 1, COMMIT, three reads; 3 x 0.1 s each up to the COMMIT, shared after
    cur, conn = _cursor([(0.0, []), (0.25, []), (0.25, []), (0.2, [{"r": 0}]), (0.2, [{"r": 1}]),
                         (0.2, [{"r": 2}])], 0.1)
    done = await cur.commit_after("A; B", (), reads=["R0", "R1", "R2"], statements=2)
    assert cur.committed and conn.closed
    assert done == [(1, 0, []), (1, 0, []), (1, 0, [{"r": 0}]), None, None]
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_cut_off_before_the_commits_answer_raises_unknown() -> None:
    cur, conn = _cursor([(0.0, []), (0.35, []), (0.0, []), (0.0, [{"r": 0}])], 0.1)
    with pytest.raises(DatabaseUnavailable) as e:
        await cur.commit_after("A; B", (), reads=["R0"], statements=2)
    assert e.value.in_commit and conn.closed and not cur.committed


async def test_a_read_that_fails_after_the_commit_leaves_it() -> None:
    cur, conn = _cursor([(0.0, []), (0.0, []), (0.0, [{"r": 0}]),
                         (0.0, pymysql.err.ProgrammingError(1064, "x"))], 0.1)
    done = await cur.commit_after("A", (), reads=["R0", "R1"], statements=1)
    assert cur.committed and not conn.closed and done == [(1, 0, []), (1, 0, [{"r": 0}]), None]


async def test_a_tail_of_writes_each_well_within_its_deadline_commits() -> None:
    """Each of a tail's answers comes within the statement deadline (the server's own limit would have let each
    one through); together they outlast three deadlines: it commits (a shared deadline would cut the connection
    off before the COMMIT's answer, and the server roll back what it would have committed)."""
    cur, conn = _cursor([(0.0, [])] + [(0.09, [])] * 4 + [(0.0, [])], 0.1)  # 5 writes, COMMIT
    done = await cur.commit_after("A; B; C; D; E", ())
    assert cur.committed and not conn.closed and len(done) == 5


async def test_the_deadline_and_another_cancellation_before_the_task_resumes_is_a_cancellation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic form of "fired in the same turn": another cancellation lands right after the timer's, before
    the task runs again (with two call_later timers this depends on both falling due in one loop turn)."""
    from market import db

    fire = db._expire
    monkeypatch.setattr(db, "_expire", lambda task, expiry: (fire(task, expiry), task.cancel()))

    async def caller() -> None:
        await db._within(0.01, asyncio.sleep(5))

    task = asyncio.create_task(caller())
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelling() == 1


async def test_a_server_that_stops_answering_mid_tail_is_heard_after_one_answers_deadline() -> None:
    """Up to the COMMIT's answer each answer has its own deadline: a silent server is heard when the first late
    one is (0.3 s here), not after the tail's sum."""
    cur, conn = _cursor([(0.0, []), (0.05, []), (5.0, []), (0.0, [])], 0.1)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(DatabaseUnavailable) as e:
        await cur.commit_after("A; B; C", ())
    assert e.value.in_commit and conn.closed and loop.time() - began < 1.0
