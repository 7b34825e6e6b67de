"""Reports (신고) of a person or a listing: filed by anyone signed in, queued for the operators (``billi reports``),
closed by an operator's resolution. A report changes nothing about its target by itself."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pymysql
import redis.asyncio as aioredis

from market import validation as v
from market.db import Database
from market.errors import Conflict, InvalidInput, NotFound, RateLimited

# The fixed reasons, in the order a person is offered them.
REASONS: dict[str, tuple[str, str]] = {
    "fraud": ("사기 의심", "suspected fraud"),
    "inappropriate": ("부적절한 내용", "inappropriate content"),
    "prohibited": ("금지 물품", "prohibited item"),
    "spam": ("스팸/광고", "spam or advertising"),
    "other": ("기타", "other"),
}
KINDS = ("person", "item")
MAX_NOTE = 500
RATE_WINDOW_S = 24 * 3600


class Reports:
    """Filing a report (one open per reporter and target), the operators' queue, and resolving."""

    def __init__(self, db: Database, redis: aioredis.Redis, *, rate_limit: int) -> None:
        self._db = db
        self._redis = redis
        self._rate_limit = rate_limit

    async def file(self, reporter_id: int, data: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Report a person or an item (``data``: untrusted kind, id, reason, note); returns the report and whether
        it is new. A repeat while the first is open answers that one and changes nothing."""
        v.only_fields(data, {"kind", "id", "reason", "note"})
        kind = data.get("kind")
        if kind not in KINDS:
            raise InvalidInput("report.bad_kind", field="kind")
        target = v.integer(data, "id", lo=1, hi=2**62)
        assert target is not None
        if data.get("reason") not in REASONS:
            raise InvalidInput("report.bad_reason", field="reason", reasons=", ".join(REASONS))
        note = v.text(data, "note", max_len=MAX_NOTE, multiline=True, required=False, default="") or ""
        await self._check_target(reporter_id, kind, target)
        earlier = await self._open(reporter_id, kind, target)
        if earlier is not None:
            return earlier, False
        await self._count(reporter_id)
        try:
            await self._db.execute(
                "INSERT INTO reports (reporter_id, target_kind, target_id, reason, note) VALUES (%s, %s, %s, %s, %s)",
                (reporter_id, kind, target, data["reason"], note))
            created = True
        except pymysql.err.IntegrityError:  # the same report, sent twice at once: the other one stands
            created = False
        report = await self._open(reporter_id, kind, target)
        assert report is not None
        return report, created

    async def _check_target(self, reporter_id: int, kind: str, target: int) -> None:
        if kind == "person":
            if await self._db.fetchval("SELECT 1 FROM users WHERE id = %s AND deleted_at IS NULL", (target,)) is None:
                raise NotFound("account.not_found")
            owner = target
        else:
            owner = await self._db.fetchval("SELECT owner_id FROM items WHERE id = %s AND status <> 'deleted'",
                                            (target,))
            if owner is None:
                raise NotFound("item.not_found")
        if owner == reporter_id:
            raise Conflict("report.self")

    async def _count(self, reporter_id: int) -> None:
        """A light limit per person per day, so the queue cannot be flooded (the counter may be lost with Redis)."""
        key = f"reports:filed:{reporter_id}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=RATE_WINDOW_S, nx=True)
            pipe.incr(key)
            _, count = await pipe.execute()
        if int(count) > self._rate_limit:
            raise RateLimited("report.too_many", retry_after=await self._redis.ttl(key))

    async def _open(self, reporter_id: int, kind: str, target: int) -> dict[str, Any] | None:
        row = await self._db.fetchone(
            "SELECT id, target_kind, target_id, reason, note, status, created_at FROM reports"
            " WHERE reporter_id = %s AND target_kind = %s AND target_id = %s AND status = 'open'",
            (reporter_id, kind, target))
        return None if row is None else _public(row)

    async def queue(self) -> list[dict[str, Any]]:
        """The open reports, one entry per target (most reporters first): its name, reasons, how many people
        reported it, the latest note; ``id`` is the entry's first report (resolving it closes the target's all)."""
        rows = await self._db.fetchall(
            "SELECT q.*, u.nickname, i.title, i.owner_id,"
            " (SELECT r.note FROM reports r WHERE r.target_kind = q.target_kind AND r.target_id = q.target_id"
            "  AND r.status = 'open' AND r.note <> '' ORDER BY r.id DESC LIMIT 1) AS latest_note"
            " FROM (SELECT target_kind, target_id, MIN(id) AS id, COUNT(DISTINCT reporter_id) AS reporters,"
            "   GROUP_CONCAT(DISTINCT reason ORDER BY reason) AS reasons, MAX(created_at) AS latest_at"
            "   FROM reports WHERE status = 'open' GROUP BY target_kind, target_id) q"
            " LEFT JOIN users u ON q.target_kind = 'person' AND u.id = q.target_id"
            " LEFT JOIN items i ON q.target_kind = 'item' AND i.id = q.target_id"
            " ORDER BY q.reporters DESC, q.id")
        return [{"id": r["id"], "kind": r["target_kind"], "target_id": r["target_id"],
                 "name": r["nickname"] if r["target_kind"] == "person" else r["title"], "owner_id": r["owner_id"],
                 "reasons": [REASONS[x][0] for x in r["reasons"].split(",")], "reporters": int(r["reporters"]),
                 "latest_note": r["latest_note"] or "", "latest_at": r["latest_at"]} for r in rows]

    async def resolve(self, report_id: int, note: Any) -> int:
        """Close an open report with the operator's note, and every other open report on the same target (one
        case); returns how many were closed."""
        text = v.text({"note": note}, "note", max_len=MAX_NOTE, multiline=True) or ""
        row = await self._db.fetchone("SELECT target_kind, target_id FROM reports WHERE id = %s AND status = 'open'",
                                      (report_id,))
        if row is None:
            raise NotFound("report.not_found")
        return await self._db.execute(
            "UPDATE reports SET status = 'resolved', resolved_at = NOW(3), resolution_note = %s"
            " WHERE target_kind = %s AND target_id = %s AND status = 'open'", (text, row["target_kind"],
                                                                              row["target_id"]))


def _public(row: dict[str, Any]) -> dict[str, Any]:
    created: datetime = row["created_at"]
    return {"id": row["id"], "kind": row["target_kind"], "target_id": row["target_id"], "reason": row["reason"],
            "reason_label": REASONS[row["reason"]][0], "note": row["note"], "status": row["status"],
            "created_at": created.isoformat(timespec="seconds") + "Z"}
