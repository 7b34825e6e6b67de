"""MariaDB access: one aiomysql pool, short helpers for reads, and explicit transactions.

Every statement is parameterised (``%s``); no value is ever pasted into SQL text.

Deadlines: the server aborts a statement after ``statement_timeout_s`` (``max_statement_time``) and a lock wait after
as long (``innodb_lock_wait_timeout``); the client gives up two seconds later, or when the connection cannot be
made within ``connect_timeout_s``. A connection whose statement was cut off (by the deadline or a cancelled task)
is closed, never pooled again: its protocol state is unknown. Either way the caller gets ``DatabaseUnavailable``.

Stale connections: a connection lost before anything was asked on it (a restarted server) is replaced and the
work sent again once — reads always, ``execute(idempotent=True)`` writes, and a transaction whose BEGIN failed.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomysql
import aiomysql.connection
import pymysql
import pymysql.connections
import pymysql.converters
from pymysql.constants import FIELD_TYPE, SERVER_STATUS

# The connection is gone (server restarted or unreachable, network cut; 1927/1053: the server killed it or is
# shutting down): nothing more can be said on it, and what it had not committed is rolled back.
_LOST = frozenset({2003, 2006, 2013, 2055, 1927, 1053})
_INTERRUPTED = frozenset({1969, 1317})  # the server's max_statement_time ran out; a query killed
_GRACE_S = 2.0  # the client's deadline past the server's, so the server's own (clean) abort usually comes first


class DatabaseUnavailable(Exception):
    """MariaDB did not answer in time or the connection was lost. ``lost``: the connection broke (a retry on a
    fresh one may succeed); ``in_commit``: it broke during COMMIT, so whether the transaction landed is unknown
    (an autocommit write that broke may have landed too).

    Deliberately not a MarketError: code that catches those takes them for a refusal (a payment "failed", a
    prompt dropped); this one must pass through such code untouched, to the edges, which answer 503 ``code`` with
    ``params`` (``unavailable()``)."""

    code = "db.unavailable"

    def __init__(self, *, lost: bool = False, in_commit: bool = False) -> None:
        super().__init__(self.code)
        self.lost, self.in_commit = lost, in_commit
        self.params = {"retry_after": 2}  # (a chat client's queue waits that long, then sends again)


def _is_lost(e: BaseException) -> bool:
    return (isinstance(e, pymysql.err.OperationalError) and bool(e.args) and e.args[0] in _LOST) or isinstance(
        e, pymysql.err.InterfaceError)


def unavailable(e: BaseException) -> DatabaseUnavailable | None:
    """The database's answer a person should hear as "try again shortly" (a lock wait or deadlock still there after
    the code's own retries, a lost connection, a statement past its limit), or None for anything else."""
    if isinstance(e, DatabaseUnavailable):
        return e
    if isinstance(e, pymysql.err.OperationalError) and e.args and e.args[0] in (*_LOST, *_INTERRUPTED, 1205, 1213):
        return DatabaseUnavailable(lost=e.args[0] in _LOST)
    return None


class _Expiry:
    __slots__ = ("fired",)

    def __init__(self) -> None:
        self.fired = False


def _expire(task: asyncio.Task[Any], expiry: _Expiry) -> None:
    expiry.fired = True
    task.cancel()


async def _within(seconds: float, work: Any) -> Any:
    """``await work``, or TimeoutError once ``seconds`` have passed: ``asyncio.timeout``'s rules (the task is
    cancelled at the deadline, and only that cancellation becomes TimeoutError; one from elsewhere stays one), with
    one timer and no context manager — every statement pays for this, a dozen times a request."""
    task = asyncio.current_task()
    assert task is not None
    cancelling = task.cancelling()
    expiry = _Expiry()
    timer = asyncio.get_running_loop().call_later(seconds, _expire, task, expiry)
    counted = False
    try:
        return await work
    except asyncio.CancelledError:
        if expiry.fired:
            counted = True
            if task.uncancel() <= cancelling:
                raise TimeoutError from None
        raise
    finally:
        timer.cancel()
        if expiry.fired and not counted:  # (fired, but the work ended otherwise: its cancellation is taken back)
            task.uncancel()


async def _bounded(conn: aiomysql.Connection, deadline_s: float | None, work: Any, *, in_commit: bool = False) -> Any:
    """Await ``work`` (a statement on ``conn``) within the deadline; a cut-off or broken connection is closed and
    reported as ``DatabaseUnavailable``."""
    try:
        if deadline_s is None:
            return await work
        return await _within(deadline_s, work)
    except TimeoutError:
        conn.close()
        raise DatabaseUnavailable(in_commit=in_commit) from None
    except asyncio.CancelledError:
        conn.close()  # mid-statement: what the server has read of it is unknown
        raise
    except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as e:
        if _is_lost(e):
            conn.close()
            raise DatabaseUnavailable(lost=True, in_commit=in_commit) from e
        if e.args and e.args[0] in _INTERRUPTED:
            raise DatabaseUnavailable() from e
        raise


_slow_read_packet = aiomysql.connection.Connection._read_packet


async def _read_packet(self: aiomysql.Connection, packet_type: Any = pymysql.connections.MysqlPacket) -> Any:
    """aiomysql's packet read, without two awaits per packet when the whole packet has already arrived.

    A statement's answer is several packets (one per column, one per row, and a few more), and aiomysql reads
    each with two ``readexactly`` calls — the costliest part of a statement for the gateway's CPU. When the
    packet is whole in the stream's buffer (nearly always: MariaDB sends a result at once) it is taken from there
    directly; anything else (a partial packet, one of 16 MB or more, a wrong sequence number, a broken stream) goes
    the library's own way, which waits, checks and fails as before."""
    reader = self._reader
    buf = reader._buffer if reader is not None and reader._exception is None else b""
    if len(buf) >= 4:
        size = buf[0] | buf[1] << 8 | buf[2] << 16
        if size < 0xFFFFFF and len(buf) >= 4 + size and buf[3] == self._next_seq_id:
            data = bytes(buf[4:4 + size])
            del buf[:4 + size]
            reader._maybe_resume_transport()
            self._next_seq_id = (self._next_seq_id + 1) % 256
            packet = packet_type(data, self._encoding)
            if packet.is_error_packet():
                if self._result is not None and self._result.unbuffered_active is True:
                    self._result.unbuffered_active = False
                packet.raise_for_error()
            return packet
    return await _slow_read_packet(self, packet_type)


aiomysql.connection.Connection._read_packet = _read_packet


_DESCRIPTIONS: dict[tuple[Any, ...], tuple[list[Any], list[Any], tuple[Any, ...]]] = {}
_MAX_DESCRIPTIONS = 2048


def _whole_packets(conn: Any, count: int) -> list[bytes] | None:
    """The payloads of the next ``count`` packets when all of them are whole in the stream's buffer, in sequence
    and none an error (a result's column definitions: MariaDB sends them at once), taken as ``_read_packet`` takes
    each; else None, and nothing taken (the caller reads them one by one)."""
    reader = conn._reader
    if reader is None or reader._exception is not None:
        return None
    buf, at, seq, spans = reader._buffer, 0, conn._next_seq_id, []
    for _ in range(count):
        if len(buf) < at + 4:
            return None
        size = buf[at] | buf[at + 1] << 8 | buf[at + 2] << 16
        if size >= 0xFFFFFF or size == 0 or len(buf) < at + 4 + size or buf[at + 3] != seq or buf[at + 4] == 0xFF:
            return None
        spans.append((at + 4, at + 4 + size))
        at, seq = at + 4 + size, (seq + 1) % 256
    raw = [bytes(buf[a:b]) for a, b in spans]
    del buf[:at]
    reader._maybe_resume_transport()
    conn._next_seq_id = seq
    return raw


async def _get_descriptions(self: Any) -> None:
    """aiomysql's reading of a result's column definitions, parsed once per distinct set of them.

    Every answer to a SELECT starts with one packet per column saying its name, table, type and character set;
    PyMySQL parses each field by field, in Python, each time — a sixth of the gateway's CPU on a rental request.
    The packets of one statement's columns are the same bytes every time, so what they parse to (the fields,
    their decoders, the cursor's description) is kept by those bytes (and the connection's decoding), and shared:
    nothing changes them once parsed. At most ``_MAX_DESCRIPTIONS`` are kept (then the cache starts anew)."""
    conn = self.connection
    raw = _whole_packets(conn, self.field_count)
    if raw is None:
        raw = [(await conn._read_packet(pymysql.connections.MysqlPacket))._data for _ in range(self.field_count)]
    eof_packet = await conn._read_packet()
    assert eof_packet.is_eof_packet(), "Protocol error, expecting EOF"
    key = (*raw, conn.use_unicode, conn.encoding, id(conn.decoders))
    known = _DESCRIPTIONS.get(key)
    if known is None:
        fields, converters, description = [], [], []
        for data in raw:
            field = pymysql.connections.FieldDescriptorPacket(data, conn._encoding)
            fields.append(field)
            description.append(field.description())
            field_type = field.type_code
            if not conn.use_unicode:
                encoding = None
            elif field_type == FIELD_TYPE.JSON:
                encoding = conn.encoding  # (a JSON column says "binary"; PyMySQL decodes it as the connection's)
            elif field_type in pymysql.connections.TEXT_TYPES:
                encoding = None if field.charsetnr == 63 else conn.encoding  # (63: binary)
            else:
                encoding = "ascii"
            converter = conn.decoders.get(field_type)
            converters.append((encoding, None if converter is pymysql.converters.through else converter))
        if len(_DESCRIPTIONS) >= _MAX_DESCRIPTIONS:
            _DESCRIPTIONS.clear()
        known = _DESCRIPTIONS[key] = (fields, converters, tuple(description))
    self.fields, self.converters, self.description = list(known[0]), list(known[1]), known[2]


aiomysql.connection.MySQLResult._get_descriptions = _get_descriptions


def _read_row_from_packet(self: Any, packet: Any) -> tuple[Any, ...]:
    """PyMySQL's reading of one result row, the same values, in one loop over the packet's bytes.

    The driver reads each column with three method calls (the length's first byte, the length, the bytes) before
    decoding it; a search's answer is a dozen rows of twenty-odd columns, and this was a twentieth of the gateway's
    CPU on a ``/검색``. Lengths are read here as PyMySQL reads them (one byte under 251, 251 for NULL, 252/253/254
    for a 2, 3 or 8 byte length); a row that ends early stops as the driver's does; one cut short fails as the
    driver's does (a cut length prefix with another exception than its ``struct.error``: nothing catches either)."""
    data, pos = packet._data, packet._position
    end = len(data)
    row = []
    for encoding, converter in self.converters:
        if pos >= end:
            break  # no more columns in this row (as PyMySQL: its IndexError)
        c = data[pos]
        if c < 251:
            size, pos = c, pos + 1
        elif c == 251 or c == 255:  # NULL (255 is no length: the driver reads None too)
            row.append(None)
            pos += 1
            continue
        elif c == 252:
            size, pos = data[pos + 1] | data[pos + 2] << 8, pos + 3
        elif c == 253:
            size, pos = data[pos + 1] | data[pos + 2] << 8 | data[pos + 3] << 16, pos + 4
        else:  # 254
            size, pos = int.from_bytes(data[pos + 1:pos + 9], "little"), pos + 9
        if pos + size > end:
            raise AssertionError(f"Result length not requested length: expected={size} got={end - pos}")
        value: Any = data[pos:pos + size]
        pos += size
        if encoding is not None:
            value = value.decode(encoding)
        if converter is not None:
            value = converter(value)
        row.append(value)
    packet._position = pos
    return tuple(row)


aiomysql.connection.MySQLResult._read_row_from_packet = _read_row_from_packet


_MORE_RESULTS = SERVER_STATUS.SERVER_MORE_RESULTS_EXISTS
_FAST_OK = True


def _lenenc(buf: Any, pos: int) -> tuple[int, int] | None:
    """A length-encoded integer of an OK packet at ``pos`` (PyMySQL's ``read_length_encoded_integer``) and the
    position after it; None for NULL (251), which an OK packet never holds."""
    c = buf[pos]
    if c < 251:
        return c, pos + 1
    if c == 252:
        return buf[pos + 1] | buf[pos + 2] << 8, pos + 3
    if c == 253:
        return buf[pos + 1] | buf[pos + 2] << 8 | buf[pos + 3] << 16, pos + 4
    if c == 254:
        return int.from_bytes(buf[pos + 1:pos + 9], "little"), pos + 9
    return None


def _next_ok(cur: Any) -> tuple[int, int] | None:
    """The next answer of a ``;``-separated batch when it is an OK packet (a write's, a SET's, COMMIT's) already
    whole in the stream's buffer and without warnings: its affected row count and inserted id, taken and parsed
    here, leaving the cursor and the connection as ``cur.nextset()`` would. Else None and nothing taken: the
    caller reads it the driver's way (a result set, an error, a packet still arriving, warnings to fetch).

    A rental request's last round trip is a dozen such answers, and the driver reads each through five
    coroutines and three objects — a sixth of the request's CPU in the gateway."""
    conn = cur.connection
    result = getattr(cur, "_result", None)
    if conn is None or result is None or result is not conn._result or not result.has_next:
        return None
    reader = conn._reader
    if reader is None or reader._exception is not None:
        return None
    buf = reader._buffer
    if len(buf) < 11:  # (a header and the shortest OK packet: 7 bytes)
        return None
    size = buf[0] | buf[1] << 8 | buf[2] << 16
    if size < 7 or size >= 0xFFFFFF or len(buf) < 4 + size or buf[3] != conn._next_seq_id or buf[4] != 0:
        return None
    end = 4 + size
    affected = _lenenc(buf, 5)
    if affected is None:
        return None
    inserted = _lenenc(buf, affected[1])
    if inserted is None or inserted[1] + 4 > end:
        return None
    pos = inserted[1]
    status = buf[pos] | buf[pos + 1] << 8
    if buf[pos + 2] or buf[pos + 3]:  # warnings: the driver fetches them (SHOW WARNINGS)
        return None
    message = bytes(buf[pos + 4:end])
    del buf[:end]
    reader._maybe_resume_transport()
    conn._next_seq_id = (conn._next_seq_id + 1) % 256
    answer = aiomysql.connection.MySQLResult(None)
    answer.affected_rows, answer.insert_id, answer.server_status = affected[0], inserted[0], status
    answer.message, answer.has_next = message, status & _MORE_RESULTS
    conn._result, conn._affected_rows, conn.server_status = answer, affected[0], status
    cur._clear_result()
    cur._result, cur._rowcount, cur._lastrowid = answer, affected[0], inserted[0]
    return affected[0], inserted[0]


class _Cursor(aiomysql.DictCursor):  # type: ignore[misc]
    """A cursor whose every statement has the database's deadline (``deadline_s`` None: none)."""

    deadline_s: float | None = None
    committed = False  # its transaction ended with ``commit_after``

    async def execute(self, query: str, args: Any = None) -> int:
        if isinstance(args, dict):
            # Named values come as a whole set (the clock, the rules and the rest), and the driver escapes every
            # value given, named in the statement or not: only those it names are sent on.
            args = {k: args[k] for k in _names_in(query) if k in args}
        return int(await _bounded(self.connection, self.deadline_s, super().execute(query, args)))

    async def next_rows(self) -> list[Row]:
        """The rows of the next statement of a ``;``-separated batch (its error, if it failed, is raised here)."""
        if not await _bounded(self.connection, self.deadline_s, self.nextset()):
            raise RuntimeError("no further statement in the batch")
        return list(await self.fetchall())

    async def commit_after(self, query: str, args: Any = None, *, reads: Sequence[str] = (),
                           read_args: Sequence[Any] = (), statements: int = 0
                           ) -> list[tuple[int, int, list[Row]]]:
        """``query`` (one statement or several, ``;``-separated) and the transaction's COMMIT in one round trip.
        The first statement that fails stops the rest (COMMIT included) and raises; the transaction then rolls
        back as usual. A connection that breaks meanwhile leaves the outcome unknown, as in COMMIT. Returns each
        statement's affected row count, inserted id and rows (a SELECT's), in order (COMMIT's left out).

        ``reads``: statements sent after the COMMIT in the same round trip (``read_args`` their values; ``query``
        holds ``statements`` statements): each reads what is committed by then, as a query of its own after the
        commit would. Their answers follow the statements'; one that fails (or a connection that breaks once the
        COMMIT's answer has come) leaves the commit standing and the answers from there on None.

        Each answer up to the COMMIT's is awaited for three times the statement deadline, as COMMIT alone is (a
        server that stops answering is heard as soon as one answer is late); the reads after it share one such
        deadline (cut off, they are None: the commit stands)."""
        conn = self.connection
        deadline = None if self.deadline_s is None else 3 * self.deadline_s
        sql = f"{query}; COMMIT" + "".join(f"; {r}" for r in reads)
        await _bounded(conn, deadline, super().execute(sql, (*args, *read_args) if reads else args), in_commit=True)
        done: list[Any] = [(self.rowcount, self.lastrowid or 0, list(await self.fetchall()))]

        async def the_reads() -> None:
            while await self.nextset():
                done.append((self.rowcount, self.lastrowid or 0, list(await self.fetchall())))

        try:
            while not reads or len(done) <= statements:  # (up to the COMMIT's answer: one deadline each)
                ok = _next_ok(self) if _FAST_OK else None
                if ok is not None:
                    done.append((ok[0], ok[1], []))
                    continue
                if not await _bounded(conn, deadline, self.nextset(), in_commit=True):
                    break
                done.append((self.rowcount, self.lastrowid or 0, list(await self.fetchall())))
            else:
                await _bounded(conn, deadline, the_reads(), in_commit=True)
        except (DatabaseUnavailable, pymysql.err.MySQLError):
            if not reads or len(done) <= statements:  # (the COMMIT's answer had not come)
                raise
            # a read after the commit failed: the commit stands (a broken connection is closed already)
            done += [None] * (statements + 1 + len(reads) - len(done))
        self.committed = True
        if reads:
            assert len(done) == statements + 1 + len(reads), (len(done), statements, len(reads))
            return done[:statements] + done[statements + 1:]
        return done[:-1]

    def _escape_args(self, args: Any, conn: aiomysql.Connection) -> Any:
        """The driver's escaping (``conn.escape``: PyMySQL's default encoders), with the same literals written
        sooner for what a batch of chat messages is made of: a whole number, NULL and one datetime repeated in
        every row (formatted once), and long text escaped by ``_escaped`` (several times faster than the driver's
        ``str.translate`` on non-ASCII text: a bot answer's stored cards are kilobytes of it)."""
        if conn.server_status & _NO_BACKSLASH_ESCAPES:
            return super()._escape_args(args, conn)
        if isinstance(args, dict):  # (named values: each as one of a list would be)
            return dict(zip(args, self._escape_args(tuple(args.values()), conn), strict=True))
        if isinstance(args, (tuple, list)):
            out = []
            last: Any = _escaped  # (the last datetime met and its literal: rows repeat their batch's clock)
            literal = ""
            for a in args:
                kind = type(a)
                if kind is int:  # (not bool: a subclass, written 1/0 by the driver)
                    out.append(str(a))
                elif a is None:
                    out.append("NULL")
                elif kind is datetime:
                    if a is not last:
                        last, literal = a, pymysql.converters.escape_datetime(a)
                    out.append(literal)
                elif kind is str and len(a) > _LONG_TEXT:
                    out.append(_escaped(a))
                else:
                    out.append(conn.escape(a))
            return tuple(out)
        return super()._escape_args(args, conn)


_NO_BACKSLASH_ESCAPES = SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES
_NAMED = re.compile(r"%\((\w+)\)s")
_NAMES_KEPT = 1024


@functools.lru_cache(maxsize=_NAMES_KEPT)
def _names_in(query: str) -> tuple[str, ...]:
    """The ``%(name)s`` values ``query`` names, each once, found once per statement text (the texts are the
    code's own: a few hundred)."""
    return tuple(dict.fromkeys(_NAMED.findall(query)))


_LONG_TEXT = 200


def _escaped(text: str) -> str:
    """``text`` as a quoted SQL literal, exactly as pymysql's ``escape_string`` writes it (backslash first)."""
    return ("'" + text.replace("\\", "\\\\").replace("\0", "\\0").replace("\n", "\\n")
            .replace("\r", "\\r").replace("\032", "\\Z").replace("'", "\\'").replace('"', '\\"') + "'")


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def parse(cls, url: str) -> DatabaseTarget:
        parts = urlsplit(url)
        if parts.scheme not in {"mysql", "mariadb"}:
            raise ValueError("database URL must start with mysql:// or mariadb://")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=(parts.path or "/billi").lstrip("/") or "billi",
        )

    def with_database(self, name: str) -> DatabaseTarget:
        return DatabaseTarget(self.host, self.port, self.user, self.password, name)


Row = dict[str, Any]


class Tail:
    """Statements kept for a transaction's last round trip, sent with its COMMIT (``cur.commit_after(tail.sql,
    tail.args)``): writes whose answers nothing before the commit needs. A statement refers to an id inserted
    before it by a user variable it set (``SET @room = LAST_INSERT_ID()``); ``add`` returns the statement's place
    in what ``commit_after`` returns. Its SQL text is the code's own, its values are ``%s`` (no literal ``%``)."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.args: list[Any] = []
        self.reads: list[str] = []  # sent after the COMMIT (``read_after``)
        self.read_args: list[Any] = []

    def add(self, sql: str, *args: Any) -> int:
        self.statements.append(sql)
        self.args.extend(args)
        return len(self.statements) - 1

    def read_after(self, sql: str, *args: Any) -> int:
        """A read sent right after the COMMIT, in the same round trip: it sees what committed, as a query of its
        own after the commit would. Returns its place in the reads ``commit`` returns (its answer None when it
        failed: the commit stands all the same)."""
        assert ";" not in sql
        self.reads.append(sql)
        self.read_args.extend(args)
        return len(self.reads) - 1

    @property
    def sql(self) -> str:
        return "; ".join(self.statements)

    async def commit(self, cur: Any) -> tuple[list[tuple[int, int, list[Row]]], list[list[Row] | None]]:
        """Send the statements, the COMMIT and the reads after it in one round trip (``cur.commit_after``);
        returns each statement's (affected rows, inserted id, rows) and each read's rows."""
        n = len(self.statements)
        done = await cur.commit_after(self.sql, tuple(self.args), reads=self.reads, read_args=self.read_args,
                                      statements=n)
        return done[:n], [None if r is None else r[2] for r in done[n:]]


class Database:
    """A connection pool. ``fetch*``/``execute`` run in autocommit; ``transaction()`` gives one connection."""

    def __init__(self, pool: aiomysql.Pool, deadline_s: float | None = None) -> None:
        self._pool = pool
        self._deadline_s = deadline_s

    @property
    def deadline_s(self) -> float | None:
        """How long a statement may take, a lock wait included, before it is cut off (None: no limit)."""
        return self._deadline_s

    @classmethod
    async def connect(cls, url: str, *, pool_size: int = 10, create: bool = True,
                      statement_timeout_s: float | None = None, connect_timeout_s: float = 10.0) -> Database:
        """``statement_timeout_s``: each statement's limit (None: none — tools that load or migrate in bulk)."""
        target = DatabaseTarget.parse(url)
        if create:
            await ensure_database(target)
        # Every DATETIME we store and every NOW() we compare with is UTC, whatever the server's own zone.
        init = "SET time_zone = '+00:00'"
        deadline = None
        if statement_timeout_s:
            init += (f", max_statement_time = {statement_timeout_s:.3f},"
                     f" innodb_lock_wait_timeout = {max(1, math.ceil(statement_timeout_s))}")
            deadline = statement_timeout_s + _GRACE_S
        cursor = type("Cursor", (_Cursor,), {"deadline_s": deadline})
        pool = await aiomysql.create_pool(
            host=target.host, port=target.port, user=target.user, password=target.password,
            db=target.database, minsize=1, maxsize=pool_size, autocommit=True, charset="utf8mb4",
            cursorclass=cursor, local_infile=True, connect_timeout=connect_timeout_s, init_command=init,
        )
        return cls(pool, deadline)

    async def close(self) -> None:
        self._pool.close()
        try:
            await asyncio.wait_for(self._pool.wait_closed(), 10)
        except TimeoutError:  # a connection still stuck on a silent server: drop it rather than wait forever
            self._pool.terminate()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiomysql.Connection]:
        """A pooled connection, waited for no longer than a statement's deadline; one that cannot be made (the
        server is down) is ``DatabaseUnavailable``."""
        try:
            # (even with a connection counted free: it may be dead, and the pool then makes a new one, whose
            # handshake with a server that accepts but never greets would never end)
            if self._deadline_s is None:
                conn = await self._pool.acquire()
            else:
                conn = await _within(self._deadline_s, self._pool.acquire())
        except TimeoutError:
            raise DatabaseUnavailable() from None
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError) as e:
            raise DatabaseUnavailable(lost=True) from e
        try:
            yield conn
        finally:
            self._pool.release(conn)
            if conn.closed:  # (the pool wakes no waiter when a closed connection comes back: room was made)
                asyncio.ensure_future(self._pool._wakeup())

    @asynccontextmanager
    async def held(self) -> AsyncIterator[aiomysql.DictCursor]:
        """A cursor on one connection for as long as the block runs, in autocommit — for what belongs to a
        connection, such as a named lock (GET_LOCK … RELEASE_LOCK must be said on the same one)."""
        async with self._connection() as conn, conn.cursor() as cur:
            yield cur

    async def _once_more(self, work: Any, *args: Any) -> Any:
        """``work(*args)``; if the connection was lost, once more on a fresh one (only for work that may be
        repeated)."""
        try:
            return await work(*args)
        except DatabaseUnavailable as e:
            if not e.lost:
                raise
        return await work(*args)

    async def _fetch(self, sql: str, args: Sequence[Any] | Mapping[str, Any], many: bool) -> Any:
        async with self._connection() as conn, conn.cursor() as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall()) if many else await cur.fetchone()

    async def fetchone(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> Row | None:
        return await self._once_more(self._fetch, sql, args, False)  # type: ignore[no-any-return]

    async def fetchall(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> list[Row]:
        return await self._once_more(self._fetch, sql, args, True)  # type: ignore[no-any-return]

    async def fetchval(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        row = await self.fetchone(sql, args)
        return None if row is None else next(iter(row.values()))

    async def _execute(self, sql: str, args: Sequence[Any] | Mapping[str, Any]) -> int:
        async with self._connection() as conn, conn.cursor() as cur:
            return int(await cur.execute(sql, args))

    async def execute(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = (), *, idempotent: bool = False
                      ) -> int:
        """Run one statement in autocommit; returns the affected row count. ``idempotent``: the statement may run
        twice (it carries its own key), so a lost connection is retried once."""
        if idempotent:
            return await self._once_more(self._execute, sql, args)  # type: ignore[no-any-return]
        return await self._execute(sql, args)

    @asynccontextmanager
    async def _begun(self, unlimited: bool, first: tuple[str, Any] | None
                     ) -> AsyncIterator[tuple[aiomysql.Connection, _Cursor]]:
        """A connection with BEGIN done (and ``first`` run, in the same round trip), and a cursor on it; a
        connection found dead there (nothing done yet: the server rolls back what it had) is replaced once."""
        for attempt in (1, 2):
            async with self._connection() as conn, conn.cursor() as cur:
                if unlimited:
                    cur.deadline_s = None
                try:
                    if unlimited:
                        await _bounded(conn, self._deadline_s, conn.query(
                            "SET max_statement_time = 0, innodb_lock_wait_timeout = 3600"))
                    if first is None:
                        await _bounded(conn, self._deadline_s, conn.begin())
                    else:
                        await cur.execute("BEGIN; " + first[0], first[1])
                        await _bounded(conn, cur.deadline_s, cur.nextset())
                except BaseException as e:
                    if isinstance(e, DatabaseUnavailable) and e.lost and attempt == 1:
                        continue
                    await _rolled_back(conn, self._deadline_s)  # (``first`` may have failed after BEGIN)
                    raise
                try:
                    yield conn, cur
                finally:
                    if unlimited:
                        conn.close()  # its session limits stay lifted: it is not pooled again
                return

    @asynccontextmanager
    async def transaction(self, *, unlimited: bool = False, first: tuple[str, Any] | None = None
                          ) -> AsyncIterator[_Cursor]:
        """A cursor inside BEGIN … COMMIT; any exception rolls back. ``unlimited``: no statement deadline (a
        migration, a maintenance task). ``first``: a statement (SQL, args) sent with BEGIN, in one round trip
        (its rows are the cursor's); the block may end the transaction with ``cur.commit_after(…)``, its last
        statements and COMMIT in one round trip too — its last act: what is raised after it cannot undo what it
        committed."""
        async with self._begun(unlimited, first) as (conn, cur):
            try:
                yield cur
                if not cur.committed:
                    # COMMIT is not cut short at the statement deadline: cutting it off does not stop the server's
                    # COMMIT, it only makes its outcome unknown; it gets three times as long (no limit: unlimited)
                    await _bounded(conn, None if unlimited or self._deadline_s is None else 3 * self._deadline_s,
                                   conn.commit(), in_commit=True)
            except BaseException:
                await _rolled_back(conn, self._deadline_s)
                raise


async def _rolled_back(conn: aiomysql.Connection, deadline_s: float | None) -> None:
    """ROLLBACK on a connection still open (a closed one: the server rolls back what it had)."""
    if not conn.closed:
        try:
            await _bounded(conn, deadline_s, conn.rollback())
        except DatabaseUnavailable:
            pass  # closed now


async def ensure_database(target: DatabaseTarget) -> None:
    """Create the database (utf8mb4) if it does not exist yet."""
    conn = await aiomysql.connect(host=target.host, port=target.port, user=target.user,
                                  password=target.password, charset="utf8mb4", autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                              (target.database,))
            if await cur.fetchone() is None:
                await cur.execute(
                    f"CREATE DATABASE IF NOT EXISTS `{_ident(target.database)}` "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
    finally:
        conn.close()


async def drop_database(target: DatabaseTarget) -> None:
    conn = await aiomysql.connect(host=target.host, port=target.port, user=target.user,
                                  password=target.password, charset="utf8mb4", autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{_ident(target.database)}`")
    finally:
        conn.close()


def _ident(name: str) -> str:
    """A database name is configuration, but it is still checked before it meets SQL text."""
    if not name or not all(c.isalnum() or c == "_" for c in name) or len(name) > 64:
        raise ValueError(f"invalid database name: {name!r}")
    return name
