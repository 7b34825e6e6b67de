"""Keeping the search index in step with the items table.

Every item change writes a ``search_outbox`` row in the same transaction (``enqueue``). The indexer drains
the outbox: it reads the current state of the items named there, indexes the ones that can be shown and
removes the rest, and only then deletes the outbox rows it handled. Delivery is at least once — a crash
between indexing and deleting re-indexes the same items, which changes nothing — and one indexer works at
a time (a MariaDB named lock), so several gateway processes can run the loop.

``reindex`` rebuilds the whole index from MariaDB, in id order, reporting progress.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from market.categories import Categories
from market.db import Database
from market.search.documents import SearchBackend, SearchDoc

log = logging.getLogger("billi.search")

LOCK_NAME = "billi_search_indexer"
IDLE_STRETCH = 4  # an idle indexer's longest wait, in its intervals
INDEXED_STATUSES = ("available", "reserved", "rented")
_DOC_COLUMNS = (
    "i.id, i.title, i.description, i.category_id, i.cat1_id, i.cat2_id, i.cat3_id, i.price_per_day, i.deposit,"
    " i.item_condition, ST_Y(i.public_location) AS lat, ST_X(i.public_location) AS lng, i.available_from,"
    " i.available_until, i.status, i.created_at"
)  # the public point: the index answers everyone's searches, so it never holds an item's exact place


async def enqueue(cur: Any, item_id: int) -> None:
    """Record, inside the caller's transaction, that an item changed."""
    await cur.execute("INSERT INTO search_outbox (item_id) VALUES (%s)", (item_id,))


class SearchIndexer:
    def __init__(self, db: Database, backend: SearchBackend, categories: Categories) -> None:
        self._db = db
        self._backend = backend
        self._categories = categories
        self._wake = asyncio.Event()
        self._stopping = False
        self._contended = False  # the last drain found another process's drain holding the lock

    def poke(self) -> None:
        """Drain soon (an item just changed in this process)."""
        self._wake.set()

    async def drain(self, batch: int = 500) -> int:
        """Index everything the outbox names; returns how many outbox rows were handled."""
        done = 0
        self._contended = False
        if await self._db.fetchone("SELECT 1 FROM search_outbox LIMIT 1") is None:
            return 0  # (an idle round: one statement, not the lock's five)
        async with self._db.transaction() as lock_cur:
            # The lock lives on this connection; another process's drain simply skips this round.
            await lock_cur.execute("SELECT GET_LOCK(%s, 0) AS got", (LOCK_NAME,))
            self._contended = not (await lock_cur.fetchone())["got"]
            if self._contended:
                return 0
            try:
                while True:
                    rows = await self._db.fetchall(
                        "SELECT id, item_id FROM search_outbox ORDER BY id LIMIT %s", (batch,))
                    if not rows:
                        return done
                    item_ids = sorted({int(r["item_id"]) for r in rows})
                    await self.index_items(item_ids)
                    last = max(int(r["id"]) for r in rows)
                    await self._db.execute("DELETE FROM search_outbox WHERE id <= %s", (last,))
                    done += len(rows)
            finally:
                await lock_cur.execute("SELECT RELEASE_LOCK(%s)", (LOCK_NAME,))

    async def index_items(self, item_ids: Sequence[int]) -> None:
        """Bring these items' search documents up to date with the items table."""
        rows = await self._db.fetchall(
            f"SELECT {_DOC_COLUMNS} FROM items i WHERE i.id IN ({', '.join(['%s'] * len(item_ids))})",
            tuple(item_ids))
        shown = [r for r in rows if r["status"] in INDEXED_STATUSES]
        docs = await asyncio.to_thread(self._build, shown)
        await self._backend.index(docs)
        gone = sorted(set(item_ids) - {d.item_id for d in docs})
        await self._backend.remove(gone)

    def _build(self, rows: list[dict[str, Any]]) -> list[SearchDoc]:
        names = [[c.name for c in self._categories.path(r["category_id"])] for r in rows]
        return SearchDoc.build_many(rows, names) if rows else []

    async def run(self, interval_s: float) -> None:
        """Drain now and then (and at once when poked) until ``stop``; failures are logged and retried.

        This process's own item changes poke it; the rounds between find those of other processes. While the
        outbox stays empty the wait doubles, up to ``IDLE_STRETCH`` times ``interval_s`` (an idle node asks less
        often); anything drained, a poke, a failure or another process's drain holding the lock (what it made
        meanwhile may be left for this one) brings it back to ``interval_s``.

        Stopping waits for the round in progress: cancelling one mid-query could strand its pooled
        connection, and closing the pool would then wait for it forever."""
        self._stopping = False
        wait_s = interval_s
        while not self._stopping:
            idle = False
            try:
                idle = await self.drain() == 0 and not self._contended
                await self._backend.refresh()
            except Exception:
                log.exception("search indexing round failed; will retry")
            wait_s = min(wait_s * 2, interval_s * IDLE_STRETCH) if idle else interval_s
            if await self._pause(wait_s):
                wait_s = interval_s  # (poked: a change of this process's)

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` between rounds, or until poked (then True)."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
            return True
        except TimeoutError:
            return False
        finally:
            self._wake.clear()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def reindex(self, *, batch: int = 500, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the index from MariaDB; returns how many items were indexed."""
        total = int(await self._db.fetchval(
            "SELECT COUNT(*) FROM items WHERE status IN ('available', 'reserved', 'rented')"))
        # The outbox is cleared up to now: everything before this point is in the rebuild.
        mark = int(await self._db.fetchval("SELECT COALESCE(MAX(id), 0) FROM search_outbox"))
        await self._backend.clear()
        after, indexed = 0, 0
        while True:
            rows = await self._db.fetchall(
                f"SELECT {_DOC_COLUMNS} FROM items i WHERE i.id > %s"
                " AND i.status IN ('available', 'reserved', 'rented') ORDER BY i.id LIMIT %s", (after, batch))
            if not rows:
                break
            docs = await asyncio.to_thread(self._build, rows)
            await self._backend.index(docs)
            indexed += len(docs)
            after = int(rows[-1]["id"])
            if progress:
                progress(indexed, total)
        await self._db.execute("DELETE FROM search_outbox WHERE id <= %s", (mark,))
        await self._backend.refresh()
        return indexed
