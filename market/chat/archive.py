"""Chat archive: old messages move from MariaDB to S3 as gzip JSON-Lines segments indexed by seq range.

A segment is uploaded and read back before the rows it holds are deleted (in the same transaction that
records it), so a failed upload leaves everything in MariaDB to retry; its key is fixed by its seq range,
so a retry after a crash overwrites rather than duplicates.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import logging
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from market.chat.model import SELECT_MESSAGES, Message, message_from_row
from market.db import Database
from market.storage import BlobStore

log = logging.getLogger("billi.archive")


class ChatArchive:
    def __init__(self, db: Database, store: BlobStore, *, segment_size: int = 2000, cache_segments: int = 64) -> None:
        self._db = db
        self._store = store
        self._segment_size = segment_size
        self._cache: OrderedDict[str, list[Message]] = OrderedDict()
        self._cache_size = cache_segments

    @staticmethod
    def key(room_id: int, from_seq: int, to_seq: int) -> str:
        return f"archive/rooms/{room_id}/{from_seq:012d}-{to_seq:012d}.jsonl.gz"

    async def archive_older_than(self, age: timedelta, *, max_segments: int = 1000) -> dict[str, int]:
        """Move messages older than ``age`` into segments; safe to run on several nodes at once."""
        async with self._db.held() as lock:  # (the lock belongs to one connection: taken and let go on it)
            await lock.execute("SELECT GET_LOCK('billi_chat_archive', 0) AS got")
            if (await lock.fetchone())["got"] != 1:
                return {"segments": 0, "messages": 0}
            try:
                return await self._archive_all(age, max_segments)
            finally:
                await lock.execute("DO RELEASE_LOCK('billi_chat_archive')")

    async def _archive_all(self, age: timedelta, max_segments: int) -> dict[str, int]:
        cutoff = datetime.now(UTC).replace(tzinfo=None) - age
        rooms = await self._db.fetchall(
            "SELECT DISTINCT room_id FROM messages WHERE created_at < %s LIMIT 10000", (cutoff,))
        segments = moved = 0
        for r in rooms:
            while segments < max_segments:
                count = await self._archive_one(r["room_id"], cutoff)
                if not count:
                    break
                segments += 1
                moved += count
        return {"segments": segments, "messages": moved}

    async def _archive_one(self, room_id: int, cutoff: datetime) -> int:
        # The oldest live messages of the room, contiguous from its lowest live seq, all older than cutoff.
        rows = await self._db.fetchall(
            SELECT_MESSAGES + " WHERE m.room_id = %s ORDER BY m.seq LIMIT %s", (room_id, self._segment_size))
        batch = []
        for row in rows:
            if row["created_at"] >= cutoff:
                break
            batch.append(message_from_row(row))
        if not batch:
            return 0
        lo, hi = batch[0].seq, batch[-1].seq
        key = self.key(room_id, lo, hi)
        data = gzip.compress("\n".join(json.dumps(m.to_record(), ensure_ascii=False, default=str)
                                       for m in batch).encode(), mtime=0)
        await self._store.put(key, data, "application/gzip")
        stored = await self._store.get(key)
        if stored is None or stored.body != data:
            raise RuntimeError(f"archive segment {key} did not read back intact")
        async with self._db.transaction() as cur:
            await cur.execute(
                "INSERT INTO archive_segments (room_id, from_seq, to_seq, object_key, message_count, bytes)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE to_seq = VALUES(to_seq),"
                " object_key = VALUES(object_key), message_count = VALUES(message_count), bytes = VALUES(bytes)",
                (room_id, lo, hi, key, len(batch), len(data)))
            await cur.execute("DELETE FROM messages WHERE room_id = %s AND seq BETWEEN %s AND %s", (room_id, lo, hi))
        log.info("archived room %d seq %d..%d (%d messages, %d bytes)", room_id, lo, hi, len(batch), len(data))
        return len(batch)

    async def read(self, room_id: int, lo: int, hi: int) -> list[Message]:
        """Archived messages lo..hi of a room, in seq order."""
        segments = await self._db.fetchall(
            "SELECT from_seq, to_seq, object_key FROM archive_segments WHERE room_id = %s AND to_seq >= %s"
            " AND from_seq <= %s ORDER BY from_seq", (room_id, lo, hi))
        out: list[Message] = []
        for seg in segments:
            messages = await self._segment(room_id, seg["object_key"])
            out += [m for m in messages if lo <= m.seq <= hi]
        return await self._named_now(out)

    async def rename(self, user_id: int, room_ids: list[int], new: str) -> int:
        """Write anew the segments of these rooms that name ``user_id`` (who left) as a sender by another name: the
        sender name of their own messages becomes ``new``. Nothing else is touched — what the bot said is the
        record of what was said, and no substring of a message is ever replaced. A rewritten segment gets a new
        key (so no node's cache serves the old one); the old object is deleted once the index points at the new
        one. Returns how many segments were rewritten. If it stops part-way (an error, a cancellation), what is
        left is logged before the exception goes on."""
        rewritten, left = 0, list(room_ids)
        try:
            for room_id in room_ids:
                for seg in await self.segments(room_id):
                    rewritten += await self._rename_segment(room_id, seg, user_id, new)
                left.remove(room_id)
        except BaseException:
            log.warning("archived chat of user %d: segments of rooms %s not yet renamed", user_id,
                        " ".join(map(str, left)))
            raise
        return rewritten

    async def _rename_segment(self, room_id: int, seg: dict[str, Any], user_id: int, new: str) -> int:
        old_key = seg["object_key"]
        obj = await self._store.get(old_key)
        if obj is None:
            return 0
        text = await asyncio.to_thread(lambda: gzip.decompress(obj.body).decode())
        records = [json.loads(line) for line in text.splitlines() if line]
        changed = False
        for rec in records:
            if rec.get("sender_kind") == "user" and rec.get("sender_id") == user_id and rec.get("sender_name") != new:
                rec["sender_name"], changed = new, True
        if not changed:
            return 0
        data = gzip.compress("\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in records).encode(),
                             mtime=0)
        key = self.key(room_id, seg["from_seq"], seg["to_seq"]).replace(".jsonl.gz",
                                                                        f".{uuid.uuid4().hex[:8]}.jsonl.gz")
        await self._store.put(key, data, "application/gzip")
        try:
            moved = await self._db.execute(
                "UPDATE archive_segments SET object_key = %s, bytes = %s WHERE room_id = %s AND from_seq = %s"
                " AND object_key = %s", (key, len(data), room_id, seg["from_seq"], old_key))
        except BaseException:
            log.warning("archive segment %s: its renamed copy %s may be left unused", old_key, key)
            raise
        if not moved:  # the index no longer points at what we read (rewritten meanwhile): ours is the stray one
            await self._store.discard(key)
            return 0
        await self._store.discard(old_key)
        return 1

    async def _named_now(self, messages: list[Message]) -> list[Message]:
        """People's messages with their senders named as the users table names them today (a segment keeps the
        name they had when it was written: someone who changed their nickname or left — "탈퇴한 이웃" — is shown
        as live messages show them)."""
        ids = sorted({m.sender_id for m in messages if m.sender_kind == "user" and m.sender_id is not None})
        if not ids:
            return messages
        rows = await self._db.fetchall("SELECT id, nickname FROM users WHERE id IN (" + ", ".join(["%s"] * len(ids))
                                       + ")", ids)
        names = {int(r["id"]): r["nickname"] for r in rows}
        return [dataclasses.replace(m, sender_name=names[m.sender_id])
                if m.sender_kind == "user" and m.sender_id in names else m for m in messages]

    async def _segment(self, room_id: int, key: str) -> list[Message]:
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        obj = await self._store.get(key)
        if obj is None:
            raise RuntimeError(f"archive segment {key} is missing")
        text = await asyncio.to_thread(lambda: gzip.decompress(obj.body).decode())
        messages = [Message.from_record(room_id, json.loads(line)) for line in text.splitlines() if line]
        self._cache[key] = messages
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return messages

    async def segments(self, room_id: int) -> list[dict[str, Any]]:
        return await self._db.fetchall(
            "SELECT from_seq, to_seq, object_key, message_count FROM archive_segments WHERE room_id = %s"
            " ORDER BY from_seq", (room_id,))

