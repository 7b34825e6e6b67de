"""Versioned SQL migrations: ``market/migrations/NNNN_name.sql`` applied once each, in order.

Safe to run from several processes at once (a named MariaDB lock serialises them).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from market.db import Database

log = logging.getLogger("billi.migrate")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self) -> list[str]:
        return split_statements(self.path.read_text(encoding="utf-8"))


def available() -> list[Migration]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file name must look like 0001_name.sql: {path.name}")
        found.append(Migration(int(m.group(1)), m.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError("two migrations share a version number")
    return found


def split_statements(sql: str) -> list[str]:
    """Split a script on ``;`` outside quotes and ``--`` comments."""
    out: list[str] = []
    buf: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(sql):
        ch = sql[i]
        if quote:
            buf.append(ch)
            if ch == "\\" and i + 1 < len(sql):
                buf.append(sql[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
            buf.append(ch)
        elif ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
            continue
        elif ch == ";":
            stmt = "".join(buf).strip()
            if stmt:
                out.append(stmt)
            buf = []
        else:
            buf.append(ch)
        i += 1
    tail = "".join(buf).strip()
    if tail:
        out.append(tail)
    return out


async def migrate(db: Database) -> list[int]:
    """Apply every migration not yet applied; returns the versions applied now."""
    applied_now: list[int] = []
    async with db.transaction(unlimited=True) as lock_cur:
        # The lock is held by this connection until RELEASE_LOCK (or the connection closes).
        await lock_cur.execute("SELECT GET_LOCK('billi_migrate', 60) AS got")
        if (await lock_cur.fetchone())["got"] != 1:
            raise RuntimeError("another process holds the migration lock")
        try:
            exists = await db.fetchone(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE()"
                " AND table_name = 'schema_migrations'")
            if exists is None:
                await db.execute(
                    "CREATE TABLE schema_migrations ("
                    " version INT UNSIGNED NOT NULL PRIMARY KEY, name VARCHAR(100) NOT NULL,"
                    " applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)"
                    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci")
            done = {r["version"] for r in await db.fetchall("SELECT version FROM schema_migrations")}
            for m in available():
                if m.version in done:
                    continue
                log.info("applying migration %04d_%s", m.version, m.name)
                async with db.transaction(unlimited=True) as cur:
                    for stmt in m.statements():
                        await cur.execute(stmt)
                    await cur.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                                      (m.version, m.name))
                applied_now.append(m.version)
        finally:
            await lock_cur.execute("DO RELEASE_LOCK('billi_migrate')")
    return applied_now
