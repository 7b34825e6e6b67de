"""Catch-up: a room's messages in seq order, live rows (MariaDB) and archived segments (S3) read as one."""

from __future__ import annotations

import json
from typing import Any

from market import validation as v
from market.chat.model import SELECT_MESSAGES, Message, _room_id, message_from_row
from market.db import Database
from market.errors import InvalidInput

MAX_HISTORY_PAGE = 100


class ChatHistory:
    """History pages and message ranges; a part of ``Chat`` (rooms.py), which supplies ``room`` (the
    membership check), ``_db`` and ``archive``."""

    _db: Database
    archive: Any

    async def history(self, user_id: int, room_id: Any, *, before_seq: Any = None, after_seq: Any = None,
                      limit: Any = 50) -> dict[str, Any]:
        """A page of a room's messages in seq order: the newest page, one before ``before_seq``, or the
        messages after ``after_seq`` (catch-up). Archived segments and live rows read as one."""
        room = await self.room(_room_id(room_id), user_id)
        n = v.integer({"limit": limit}, "limit", lo=1, hi=MAX_HISTORY_PAGE, required=False, default=50) or 50
        before = v.integer({"before_seq": before_seq}, "before_seq", lo=1, hi=2**62, required=False)
        after = v.integer({"after_seq": after_seq}, "after_seq", lo=0, hi=2**62, required=False)
        if before is not None and after is not None:
            raise InvalidInput("chat.bad_range", field="before_seq")
        if after is not None:
            lo, hi = after + 1, min(room.last_seq, after + n)
        else:
            hi = min(room.last_seq, (before - 1) if before is not None else room.last_seq)
            lo = max(1, hi - n + 1)
        if hi < lo:
            return {"room": room.id, "messages": [], "has_more": False, "last_seq": room.last_seq}
        messages = await self.range(room.id, lo, hi)
        has_more = (hi < room.last_seq) if after is not None else lo > 1
        return {"room": room.id, "messages": [m.for_viewer(user_id) for m in messages], "has_more": has_more,
                "last_seq": room.last_seq}

    async def range(self, room_id: int, lo: int, hi: int) -> list[Message]:
        """Messages lo..hi of a room, from MariaDB and, for older ones, the S3 archive."""
        rows = await self._db.fetchall(SELECT_MESSAGES + " WHERE m.room_id = %s AND m.seq BETWEEN %s AND %s"
                                       " ORDER BY m.seq", (room_id, lo, hi))
        live = [message_from_row(r) for r in rows]
        first_live = live[0].seq if live else hi + 1
        if first_live > lo and self.archive is not None:
            older = await self.archive.read(room_id, lo, first_live - 1)
            if older:  # archive objects are never rewritten: edits made later (retired buttons) apply here
                edits = {r["seq"]: json.loads(r["body"]) for r in await self._db.fetchall(
                    "SELECT seq, body FROM message_edits WHERE room_id = %s AND seq BETWEEN %s AND %s",
                    (room_id, older[0].seq, older[-1].seq))}
                older = [m if m.seq not in edits else Message(
                    m.room_id, m.seq, m.sender_id, m.sender_kind, m.sender_name, m.text, edits[m.seq], m.created_at,
                    m.client_msg_id, m.audience) for m in older]
            return older + live
        return live
