"""MariaDB access: one aiomysql pool, short helpers for reads, and explicit transactions.

Every statement is parameterised (``%s``); no value is ever pasted into SQL text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomysql


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


class Database:
    """A connection pool. ``fetch*``/``execute`` run in autocommit; ``transaction()`` gives one connection."""

    def __init__(self, pool: aiomysql.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, url: str, *, pool_size: int = 10, create: bool = True) -> Database:
        target = DatabaseTarget.parse(url)
        if create:
            await ensure_database(target)
        pool = await aiomysql.create_pool(
            host=target.host, port=target.port, user=target.user, password=target.password,
            db=target.database, minsize=1, maxsize=pool_size, autocommit=True, charset="utf8mb4",
            cursorclass=aiomysql.DictCursor, local_infile=True,
            # Every DATETIME we store and every NOW() we compare with is UTC, whatever the server's own zone.
            init_command="SET time_zone = '+00:00'",
        )
        return cls(pool)

    async def close(self) -> None:
        self._pool.close()
        await self._pool.wait_closed()

    async def fetchone(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> Row | None:
        async with self._pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(sql, args)
            return await cur.fetchone()  # type: ignore[no-any-return]

    async def fetchall(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> list[Row]:
        async with self._pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall())

    async def fetchval(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        row = await self.fetchone(sql, args)
        return None if row is None else next(iter(row.values()))

    async def execute(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> int:
        """Run one statement in autocommit; returns the affected row count."""
        async with self._pool.acquire() as conn, conn.cursor() as cur:
            return int(await cur.execute(sql, args))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiomysql.DictCursor]:
        """A cursor inside BEGIN … COMMIT; any exception rolls back."""
        async with self._pool.acquire() as conn:
            await conn.begin()
            try:
                async with conn.cursor() as cur:
                    yield cur
                await conn.commit()
            except BaseException:
                await conn.rollback()
                raise


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
