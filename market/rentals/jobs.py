"""The scheduler's work: every timed edge of the machine (the SYSTEM rows of ``machine.EDGES``, in their order,
the money ones first), the bank transfers that wait for an answer or for sending, and announcements a crash left
behind. Each job runs on its own and within a job each row on its own: a row that fails unexpectedly is logged
with its traceback, counted (``job_failures``, shown in /metrics) and passed over, so one bad contract never holds
up anyone else's settlement, refund or reminder."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from market.errors import Conflict, InvalidInput, NotFound
from market.rentals.machine import GUARDS, TIMED, Edge
from market.rentals.money import Money

log = logging.getLogger("billi.rentals")


class Jobs(Money):
    job_failures: Any

    async def tick(self) -> dict[str, int]:
        """One round of time-driven work; safe to run on several nodes at once (every change is guarded)."""
        jobs: list[tuple[str, Callable[[], Awaitable[int]]]] = []
        for edge in TIMED:
            jobs.append((edge.action, lambda edge=edge: self.run_edge(edge)))  # type: ignore[misc]
            if edge.action == "auto_settle":  # the transfers right after the first money job
                jobs.append(("transfers", self._job_transfers))
        jobs.append(("announce", self._job_announce))
        done: dict[str, int] = {}
        for name, job in jobs:
            try:
                done[name] = await job()
            except Exception:  # noqa: BLE001 — the job's own query failed: the next job still runs
                log.exception("scheduler job %s failed; the other jobs go on", name)
                self.job_failures[name] += 1
                done[name] = 0
        return {"settled": done["auto_settle"], "transfers": done["transfers"], "expired": done["expire"],
                "overdue": done["overdue"], "announced": done["announce"],
                "reminded": sum(n for name, n in done.items() if name.startswith("remind_"))}

    async def run_edge(self, edge: Edge) -> int:
        """Every contract the edge's guards select now, each taken through ``apply`` (which checks them again
        on the locked row, so two nodes never both take it)."""
        where = " AND ".join(f"({GUARDS[g].sql})" for g in edge.guards)
        p = self.params()
        rows = await self.db.fetchall(
            f"SELECT id FROM contracts WHERE state IN ({', '.join(repr(s) for s in edge.sources)}) AND {where}"
            " ORDER BY id LIMIT 500", p)
        return sum([await self.row(edge.action, r["id"], self.apply(edge.action, r["id"])) for r in rows])

    async def _job_transfers(self) -> int:
        return await self.process_transfers() if self.pay is not None else 0

    async def _job_announce(self) -> int:
        # (a couple of seconds' margin: a change that just committed announces its own events)
        rows = await self.db.fetchall("SELECT DISTINCT contract_id FROM contract_events WHERE announced_at IS NULL"
                                      " AND created_at <= %s LIMIT 500", (self.clock.now() - timedelta(seconds=2),))
        return sum([await self.row("announce", r["contract_id"], self.flush(r["contract_id"])) for r in rows])

    async def process_transfers(self) -> int:
        """Settle unknown transfers whose next inquiry is due and send queued ones; a transfer that fails
        unexpectedly is logged, counted and passed over."""
        pay = self.billipay()
        n = 0

        async def inquire(tid: int) -> bool:
            return (await pay.inquire(tid, self.on_done, self.on_failed)).state != "unknown"

        unreachable = False

        async def send(tid: int) -> bool:
            nonlocal unreachable
            outcome = await pay.send(tid, self.on_done, self.on_failed)
            unreachable = outcome.state == "pending" and outcome.reason == "pay.unreachable"
            return outcome.state in ("done", "failed")

        async def abandon(tid: int) -> bool:
            return (await pay.settle(tid, "failed", None, self.on_done, self.on_failed, "pay.unreachable",
                                     only_from="pending")).state == "failed"

        for tid in await pay.stale_unknown():
            n += await self.row("transfers", tid, inquire(tid), counts=True)
        for tid in await pay.abandoned():
            n += await self.row("transfers", tid, abandon(tid), counts=True)
        for tid in await pay.queued():
            n += await self.row("transfers", tid, send(tid), counts=True)
            if unreachable:  # the bank is not answering: the rest wait for the next round, not a timeout each
                log.warning("the bank could not be reached; queued transfers wait for the next round")
                break
        rows = await self.db.fetchall("SELECT DISTINCT contract_id FROM contract_events WHERE announced_at IS NULL"
                                      " AND contract_id IS NOT NULL AND created_at <= %s LIMIT 500",
                                      (self.clock.now() - timedelta(seconds=2),))
        for r in rows:
            await self.row("announce", r["contract_id"], self.flush(r["contract_id"]))
        return n

    async def row(self, job: str, row_id: int, work: Awaitable[Any], *, counts: bool = False) -> int:
        """One row of a job: 1 when it did something. Someone having got there first (a guarded change that
        no longer applies) is 0; anything else is logged with its traceback, counted and passed over."""
        try:
            result = await work
        except (Conflict, NotFound, InvalidInput):
            return 0
        except Exception:  # noqa: BLE001 — one bad row must not stop the round for everyone
            log.exception("scheduler job %s: row %s failed; passed over this round", job, row_id)
            self.job_failures[job] += 1
            return 0
        if counts:
            return int(bool(result))
        return int(result) if isinstance(result, int) and not isinstance(result, bool) else 1


