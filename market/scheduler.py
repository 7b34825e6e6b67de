"""The scheduler: expiries, reminders, overdue marks, automatic settlement, unknown transfers and queued payouts,
and once a day the reconciliation of the platform account's bank statement (yesterday's, in Seoul).

Every gateway node runs one; a lease row in MariaDB lets one node at a time do a round (a node that dies loses
its lease when it expires, and another takes over). The work itself is restart-safe twice over: everything it
does is a guarded contract change or a transfer settled once, so even two rounds at once would not fire twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from market.db import Database
from market.reconcile import Reconciler
from market.rentals import Rentals

log = logging.getLogger("billi.scheduler")
LEASE = "scheduler"
RECONCILE_DAYS = 7
RECONCILE_AFTER_HOUR = 6
SESSIONS_KEPT_DAYS = 1  # an ended session's row is kept this long past its expiry, then deleted
PURGE_BATCH = 1000  # rows deleted per round at most (a short statement; a backlog goes over a few rounds)


class Scheduler:
    def __init__(self, db: Database, rentals: Rentals, interval_s: float, reconciler: Reconciler | None = None) -> None:
        self.db = db
        self.rentals = rentals
        self.reconciler = reconciler
        self.reconcile_after_hour = RECONCILE_AFTER_HOUR
        self._failed_days: set[date] = set()  # days of the window the bank would not give: tried again
        self.interval_s = interval_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"[:64]
        self._stop = asyncio.Event()

    async def lease(self) -> bool:
        """Take or keep the lease for a few rounds; False when another live node holds it."""
        ttl = max(5.0, self.interval_s * 3)
        await self.db.execute(
            "INSERT INTO leases (name, holder, expires_at) VALUES (%s, %s, NOW(3) + INTERVAL %s SECOND)"
            " ON DUPLICATE KEY UPDATE"
            " holder = IF(expires_at < NOW(3) OR holder = VALUES(holder), VALUES(holder), holder),"
            " expires_at = IF(holder = VALUES(holder), VALUES(expires_at), expires_at)",
            (LEASE, self.holder, ttl))
        return await self.db.fetchval("SELECT holder FROM leases WHERE name = %s", (LEASE,)) == self.holder

    async def run_once(self) -> dict[str, Any] | None:
        if not await self.lease():
            return None
        done: dict[str, Any] = await self.rentals.tick()
        done["reconciled"] = await self.reconcile()
        done["sessions_purged"] = await self.purge_sessions()
        return done

    async def purge_sessions(self) -> int:
        """Deletes sessions that expired more than SESSIONS_KEPT_DAYS ago (a revoked one expires too: its row is
        refused until then either way), at most PURGE_BATCH a round, oldest first by the expiry index."""
        # (the wall clock, as sessions are made and checked by; not the rentals' clock, which tests move)
        cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=SESSIONS_KEPT_DAYS)
        try:
            return await self.db.execute("DELETE FROM sessions WHERE expires_at < %s ORDER BY expires_at LIMIT %s",
                                         (cutoff, PURGE_BATCH))
        except Exception:  # noqa: BLE001 — the database failed: tried again next round
            log.exception("purging ended sessions failed; tried again next round")
            self.rentals.job_failures["sessions"] += 1
            return 0

    async def reconcile(self) -> int:
        """Once a day, after RECONCILE_AFTER_HOUR in Seoul (when the bank's postings of the night are in): the
        statements of the last RECONCILE_DAYS days, again — a transfer still open when its day was first
        reconciled (settled later, by the bank or an operator) is checked once it has settled. The differences
        found are logged and shown in /metrics. A bank that does not answer is tried again next round; the
        failure is counted like any job's."""
        if self.reconciler is None:
            return 0
        now = self.rentals.clock.now() + timedelta(hours=9)  # Seoul
        yesterday = now.date() - timedelta(days=1)
        if now.hour < self.reconcile_after_hour:
            return 0
        try:
            if await self.reconciler.done_on(yesterday):
                days = sorted(self._failed_days, reverse=True)  # only what failed earlier today, again
            else:
                days = [now.date() - timedelta(days=back) for back in range(1, RECONCILE_DAYS + 1)]
        except Exception:  # noqa: BLE001 — the database failed: the rest of the round already ran
            log.exception("reconciliation: could not read what was done; tried again next round")
            self.rentals.job_failures["reconcile"] += 1
            return 0
        if not days:
            return 0
        found: Counter[str] = Counter()
        for day in days:  # yesterday first; each day on its own
            try:
                await self.reconciler.run(day)
            except Exception:  # noqa: BLE001 — the bank did not give that day: the other days still run
                log.exception("reconciliation of %s failed; tried again next round", day)
                self.rentals.job_failures["reconcile"] += 1
                if day == yesterday:
                    return 0  # yesterday is not done: the whole window again next round
                self._failed_days.add(day)
                continue
            self._failed_days.discard(day)
            found += self.reconciler.last
        self.reconciler.last = found
        return sum(found.values())

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("scheduler round failed; will retry")
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval_s)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()
