"""Chat: rooms and members, durable messages with a per-room gap-free ``seq``, history, read positions.

Messages are written by one ``MessageWriter`` per process that commits whatever is pending in one
transaction (group commit); the room row lock makes seqs gap-free across processes. Only members write,
and that rule is checked inside the same transaction. Nothing here knows about sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pymysql
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from market import validation as v
from market.accounts import session_key
from market.db import Database, DatabaseUnavailable, Row
from market.errors import Conflict, InvalidInput, MarketError, NotFound, RateLimited, Unauthenticated
from market.images import process_image
from market.storage import BlobStore, media_url

log = logging.getLogger("billi.chat")

MAX_TEXT = 2000
MAX_HISTORY_PAGE = 100
BOT_NAME = "빌리"
SYSTEM_NAME = "알림"
_CLIENT_MSG_ID = re.compile(r"^[A-Za-z0-9_\-:.]{1,64}$")
_MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class Room:
    id: int
    kind: str
    item_id: int | None
    owner_id: int
    borrower_id: int | None
    last_seq: int

    @classmethod
    def from_row(cls, row: Row) -> Room:
        return cls(row["id"], row["kind"], row["item_id"], row["owner_id"], row["borrower_id"], row["last_seq"])


@dataclass(frozen=True, slots=True)
class Message:
    room_id: int
    seq: int
    sender_id: int | None
    sender_kind: str
    sender_name: str
    text: str
    body: dict[str, Any] | None
    created_at: datetime
    client_msg_id: str | None = None
    audience: int | None = None  # None: every member; else the one member who may see it

    def visible_to(self, user_id: int | None) -> bool:
        return self.audience is None or self.audience == user_id

    def for_viewer(self, user_id: int | None) -> dict[str, Any]:
        """The message as ``user_id`` receives it: whole, or a placeholder when it is for another member."""
        return self.to_wire() if self.visible_to(user_id) else self.placeholder()

    def placeholder(self) -> dict[str, Any]:
        """What the other members get of a private message: its place in the room's seq and nothing else."""
        return {"room": self.room_id, "seq": self.seq, "id": f"{self.room_id}:{self.seq}", "hidden": True}

    def to_wire(self) -> dict[str, Any]:
        """The message as clients receive it (DESIGN §3); all text is plain text. Only for members who may
        see it (``for_viewer`` decides)."""
        out: dict[str, Any] = {
            "room": self.room_id, "seq": self.seq, "id": f"{self.room_id}:{self.seq}",
            "ts": self.created_at.isoformat(timespec="milliseconds") + "Z",
            "sender": {"id": self.sender_id, "kind": self.sender_kind, "name": self.sender_name},
            "text": self.text,
        }
        if self.client_msg_id:
            out["client_msg_id"] = self.client_msg_id
        if self.audience is not None:
            out["audience"] = self.audience  # the widget marks it "나에게만 보여요"
        if self.body:
            out.update(self.body)
        return out

    def to_record(self) -> dict[str, Any]:
        """The form kept in archive segments (enough to rebuild the message)."""
        return {"seq": self.seq, "sender_id": self.sender_id, "sender_kind": self.sender_kind,
                "sender_name": self.sender_name, "text": self.text, "body": self.body,
                "created_at": self.created_at.isoformat(), "client_msg_id": self.client_msg_id,
                "audience": self.audience}

    @classmethod
    def from_record(cls, room_id: int, rec: dict[str, Any]) -> Message:
        return cls(room_id, rec["seq"], rec["sender_id"], rec["sender_kind"], rec["sender_name"], rec["text"],
                   rec["body"], datetime.fromisoformat(rec["created_at"]), rec.get("client_msg_id"),
                   rec.get("audience"))


@dataclass(frozen=True, slots=True)
class Sent:
    """A stored message, whether it repeated an earlier send, and each member's unread count after it."""

    message: Message
    duplicate: bool
    unread: dict[int, int]


@dataclass(slots=True)
class Draft:
    room_id: int
    sender_id: int | None
    sender_kind: str
    sender_name: str
    text: str
    body: dict[str, Any] | None = None
    client_msg_id: str | None = None
    audience: int | None = None
    future: asyncio.Future[Sent] = field(default=None)  # type: ignore[assignment]


class NotMember(NotFound):
    """A room that does not exist and a room one is not in look the same from outside."""


class MessageWriter:
    """Group commit: one task per process writes every pending message in one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: asyncio.Queue[Draft] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="billi-message-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while not self._queue.empty():
            d = self._queue.get_nowait()
            if not d.future.done():
                d.future.set_exception(RuntimeError("the message writer stopped"))

    async def write(self, draft: Draft) -> Sent:
        """Store a message (once per client_msg_id)."""
        self.start()
        draft.future = asyncio.get_running_loop().create_future()
        await self._queue.put(draft)
        return await draft.future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await self._commit_with_retry(batch)
            except Exception as e:  # noqa: BLE001 — every waiting sender must hear about it
                log.exception("writing %d chat messages failed", len(batch))
                for d in batch:
                    if not d.future.done():
                        d.future.set_exception(e)
                continue
            for d, result in zip(batch, results, strict=True):
                if d.future.done():
                    continue
                if isinstance(result, MarketError):
                    d.future.set_exception(result)
                else:
                    d.future.set_result(result)

    async def _commit_with_retry(self, batch: list[Draft]) -> list[Sent | MarketError]:
        # Optimistic first: a retried send is rare, so look for earlier copies only when the unique
        # (room, sender, client_msg_id) key says there is one — then the whole batch is redone carefully.
        look_for_repeats = lost = False
        for attempt in range(6):
            try:
                return await self._commit(batch, look_for_repeats)
            except pymysql.err.IntegrityError as e:
                if e.args[0] != 1062 or look_for_repeats:
                    raise
                look_for_repeats = True
            except DatabaseUnavailable as e:
                # The connection broke (a restarted server) before COMMIT: the server rolled the batch back, so it
                # goes once more on a fresh connection. Broken in COMMIT, it may have landed: each sender hears of
                # the failure and sends again with its client_msg_id, which finds the stored copy.
                if not e.lost or e.in_commit or lost:
                    raise
                lost = True
            except pymysql.err.OperationalError as e:
                if e.args[0] not in (1213, 1205) or attempt == 5:  # deadlock, lock wait timeout
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _commit(self, batch: list[Draft], look_for_repeats: bool) -> list[Sent | MarketError]:
        results: list[Sent | MarketError | None] = [None] * len(batch)
        now = datetime.now(UTC).replace(tzinfo=None)
        async with self._db.transaction() as cur:
            room_ids = sorted({d.room_id for d in batch})
            # The rooms (locked, in id order, so concurrent writers on other nodes queue instead of
            # deadlocking) with their members' read positions, in one statement.
            await cur.execute(
                "SELECT r.id, r.last_seq, m.user_id, m.last_read_seq, m.hidden_unread FROM rooms r"
                f" LEFT JOIN room_members m ON m.room_id = r.id WHERE r.id IN ({_marks(room_ids)})"
                " ORDER BY r.id FOR UPDATE", tuple(room_ids))
            last_seq: dict[int, int] = {}
            read_at: dict[int, dict[int, int]] = {}
            hidden: dict[int, dict[int, int]] = {}  # messages after each member's read position hidden from them
            for r in await cur.fetchall():
                last_seq[r["id"]] = r["last_seq"]
                members = read_at.setdefault(r["id"], {})
                if r["user_id"] is not None:
                    members[r["user_id"]] = r["last_read_seq"]
                    hidden.setdefault(r["id"], {})[r["user_id"]] = r["hidden_unread"]
            keyed = [(d.room_id, d.sender_id, d.client_msg_id) for d in batch if d.client_msg_id]
            earlier: dict[tuple[int, int | None, str], Message] = {}
            # A bot message with an id (an announced event) has no unique key to trip (its sender is NULL), so
            # its earlier copy is always looked for; such messages are rare.
            if keyed and (look_for_repeats or any(d.sender_id is None for d in batch if d.client_msg_id)):
                await cur.execute(
                    SELECT_MESSAGES + " WHERE " + " OR ".join(
                        ["(m.room_id = %s AND m.sender_id <=> %s AND m.client_msg_id = %s)"] * len(keyed)),
                    tuple(x for k in keyed for x in k))
                for row in await cur.fetchall():
                    msg = message_from_row(row)
                    earlier[(msg.room_id, msg.sender_id, msg.client_msg_id or "")] = msg
            rows: list[Any] = []
            read_marks: dict[tuple[int, int], int] = {}
            hidden_marks: set[tuple[int, int]] = set()
            for i, d in enumerate(batch):
                if d.room_id not in last_seq:
                    results[i] = NotMember("chat.unknown_room")
                    continue
                if (d.sender_kind == "user" and d.sender_id not in read_at[d.room_id]) or (
                        d.audience is not None and d.audience not in read_at[d.room_id]):
                    results[i] = NotMember("chat.unknown_room")
                    continue
                key = (d.room_id, d.sender_id, d.client_msg_id or "")
                if d.client_msg_id and key in earlier:
                    results[i] = Sent(earlier[key], True, {})
                    continue
                last_seq[d.room_id] += 1
                msg = Message(d.room_id, last_seq[d.room_id], d.sender_id, d.sender_kind, d.sender_name, d.text,
                              d.body, now, d.client_msg_id, d.audience)
                if d.client_msg_id:
                    earlier[key] = msg  # a retry inside the same batch
                room_hidden = hidden[d.room_id] if d.room_id in hidden else {}
                if d.sender_kind == "user" and d.sender_id is not None:
                    read_at[d.room_id][d.sender_id] = msg.seq  # a sender has read up to their own message
                    if room_hidden.get(d.sender_id):
                        room_hidden[d.sender_id] = 0
                        hidden_marks.add((d.room_id, d.sender_id))
                if d.audience is not None:
                    for u in room_hidden:
                        if u != d.audience:
                            room_hidden[u] += 1
                            hidden_marks.add((d.room_id, u))
                results[i] = Sent(msg, False, {u: max(0, msg.seq - seen - room_hidden.get(u, 0))
                                               for u, seen in read_at[d.room_id].items()})
                rows += [msg.room_id, msg.seq, msg.sender_id, msg.sender_kind, msg.audience, msg.client_msg_id,
                         msg.text, json.dumps(msg.body, ensure_ascii=False) if msg.body else None, now]
                if d.sender_kind == "user" and d.sender_id is not None:
                    read_marks[(d.room_id, d.sender_id)] = msg.seq
            if rows:
                count = len(rows) // 9
                await cur.execute(
                    "INSERT INTO messages (room_id, seq, sender_id, sender_kind, audience_id, client_msg_id, text,"
                    " body, created_at) VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * count),
                    tuple(rows))
                # One statement moves each room's last_seq, each sender's read position (a sender has read up to
                # their own message) and the count of hidden messages after it where that changed; a room with
                # only bot messages joins no member row.
                changed = sorted({m.message.room_id for m in results if isinstance(m, Sent) and not m.duplicate})
                marks: list[tuple[int, int, int | None, int, int | None]] = [
                    (r, last_seq[r], u, read_marks.get((r, u), 0), hidden[r][u] if (r, u) in hidden_marks else None)
                    for r, u in sorted(set(read_marks) | hidden_marks)]
                marked = {m[0] for m in marks}
                marks += [(r, last_seq[r], None, 0, None) for r in changed if r not in marked]
                await cur.execute(
                    "UPDATE rooms r JOIN (" + " UNION ALL ".join(
                        ["SELECT %s AS room, %s AS last, %s AS user, %s AS seen, %s AS hidden"] * len(marks))
                    + ") x ON x.room = r.id LEFT JOIN room_members m ON m.room_id = x.room AND m.user_id = x.user"
                    " SET r.last_seq = x.last, r.last_message_at = %s,"
                    " m.last_read_seq = GREATEST(m.last_read_seq, x.seen),"
                    " m.hidden_unread = COALESCE(x.hidden, m.hidden_unread)",
                    (*(v for mark in marks for v in mark), now))
        return results  # type: ignore[return-value]


SELECT_MESSAGES = (
    "SELECT m.room_id, m.seq, m.sender_id, m.sender_kind, m.audience_id, m.client_msg_id, m.text, m.body, m.created_at,"
    " u.nickname AS sender_name FROM messages m LEFT JOIN users u ON u.id = m.sender_id")


def _marks(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def message_from_row(row: Row) -> Message:
    kind = row["sender_kind"]
    name = row["sender_name"] if kind == "user" else (BOT_NAME if kind == "bot" else SYSTEM_NAME)
    return Message(row["room_id"], row["seq"], row["sender_id"], kind, name or "", row["text"],
                   json.loads(row["body"]) if row["body"] else None, row["created_at"], row["client_msg_id"],
                   row["audience_id"])


class SendGate:
    """Per-send Redis bookkeeping — the sender's rate counter and, optionally, their session — for every
    send pending in this process, in one pipelined round trip (the same idea as the group commit).

    With Redis away, sending goes on: each node counts in its own memory (a sender spread over n nodes gets at
    most n times the limit, only while Redis is away) and the session is left to MariaDB."""

    def __init__(self, redis: aioredis.Redis, window_s: int) -> None:
        self._redis = redis
        self._window_s = window_s
        self._local: dict[tuple[int, int], int] = {}  # (user, window) → sends, while Redis is away
        self._away = False
        self._pending: list[tuple[int, str | None, asyncio.Future[tuple[int, str | None]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        # One command per send: count it (the counter expires with its window) and read the session.
        self._script = redis.register_script(
            "local n = redis.call('INCR', KEYS[1]) "
            "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
            "return {n, redis.call('GET', KEYS[2])}")

    async def check(self, user_id: int, session_token: str | None) -> tuple[int, str | None]:
        """The sender's count in the current window (this send included) and the session's user id."""
        future: asyncio.Future[tuple[int, str | None]] = asyncio.get_running_loop().create_future()
        self._pending.append((user_id, session_token, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            window = int(datetime.now(UTC).timestamp()) // self._window_s
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for user_id, token, _ in batch:
                        await self._script(keys=[f"billi:rate:chat:{user_id}:{window}",
                                                 session_key(token) if token else "billi:no-session"],
                                           args=[self._window_s + 1], client=pipe)
                    results = await pipe.execute()
            except RedisError as e:
                if not self._away:
                    log.warning("chat send-rate counters unreachable (%s): counting on this node", e)
                    self._away = True
                self._count_here(batch, window)
                continue
            except Exception as e:  # noqa: BLE001 — every waiting sender hears about it
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            self._away = False
            for (count, session_user), (*_, future) in zip(results, batch, strict=True):
                if not future.done():
                    future.set_result((int(count), session_user))


    def _count_here(self, batch: list[tuple[int, str | None, asyncio.Future[tuple[int, str | None]]]],
                    window: int) -> None:
        for key in [k for k in self._local if k[1] != window]:
            del self._local[key]  # past windows
        for user_id, _, future in batch:
            self._local[(user_id, window)] = count = self._local.get((user_id, window), 0) + 1
            if not future.done():
                future.set_result((count, None))  # (no cached session: MariaDB is asked)


class Chat:
    """Rooms, membership, sending, history and read positions."""

    def __init__(self, db: Database, redis: aioredis.Redis, store: BlobStore, *, rate_limit: int,
                 rate_window_s: int, max_upload_bytes: int, max_image_pixels: int, archive: Any = None) -> None:
        self._db = db
        self._redis = redis
        self._store = store
        self._max_upload_bytes = max_upload_bytes
        self._max_image_pixels = max_image_pixels
        self._rate_limit = rate_limit
        self._rate_window_s = rate_window_s
        self.writer = MessageWriter(db)
        self._gate = SendGate(redis, rate_window_s)
        self.archive = archive  # market.chat.archive.ChatArchive, set by the service
        self.notifications: Any = None  # market.notifications.Notifications, set by the service
        self.sessions: Any = None  # Accounts.session_from_db (a token's user id when the cache has nothing)

    # -- rooms -------------------------------------------------------------------------------------
    async def assistant_room(self, user_id: int) -> Room:
        """The user's own room with the bot, created on first use."""
        key = f"assistant:{user_id}"
        row = await self._db.fetchone("SELECT * FROM rooms WHERE unique_key = %s", (key,))
        if row is None:
            try:
                async with self._db.transaction() as cur:
                    await cur.execute("INSERT INTO rooms (kind, unique_key, owner_id) VALUES ('assistant', %s, %s)",
                                      (key, user_id))
                    room_id = cur.lastrowid
                    await cur.execute("INSERT INTO room_members (room_id, user_id, role) VALUES (%s, %s, 'user')",
                                      (room_id, user_id))
            except pymysql.err.IntegrityError:
                pass  # created by a concurrent request
            row = await self._db.fetchone("SELECT * FROM rooms WHERE unique_key = %s", (key,))
        assert row is not None
        return Room.from_row(row)

    async def open_deal_room(self, item_id: int, borrower_id: int) -> tuple[Room, bool]:
        """The deal room of (item, borrower); created on first inquiry with the owner and the borrower."""
        item = await self._db.fetchone("SELECT id, owner_id, status FROM items WHERE id = %s", (item_id,))
        if item is None or item["status"] in ("deleted", "hidden"):
            raise NotFound("item.not_found")
        if item["owner_id"] == borrower_id:
            raise Conflict("chat.own_item")
        key = f"deal:{item_id}:{borrower_id}"
        row = await self._db.fetchone("SELECT * FROM rooms WHERE unique_key = %s", (key,))
        if row is not None:
            return Room.from_row(row), False
        try:
            async with self._db.transaction() as cur:
                await cur.execute(
                    "INSERT INTO rooms (kind, unique_key, item_id, owner_id, borrower_id)"
                    " VALUES ('deal', %s, %s, %s, %s)", (key, item_id, item["owner_id"], borrower_id))
                room_id = cur.lastrowid
                await cur.execute(
                    "INSERT INTO room_members (room_id, user_id, role) VALUES (%s, %s, 'owner'), (%s, %s, 'borrower')",
                    (room_id, item["owner_id"], room_id, borrower_id))
                if self.notifications is not None:
                    await cur.execute("SELECT u.nickname, i.title FROM users u JOIN items i ON i.id = %s"
                                      " WHERE u.id = %s", (item_id, borrower_id))
                    who = await cur.fetchone()
                    await self.notifications.add(cur, item["owner_id"], "new_inquiry", room_id=room_id,
                                                 item_id=item_id, params={"name": who["nickname"],
                                                                          "title": who["title"]})
            created = True
        except pymysql.err.IntegrityError:
            created = False
        if created and self.notifications is not None:
            await self.notifications.ping([item["owner_id"]])
        row = await self._db.fetchone("SELECT * FROM rooms WHERE unique_key = %s", (key,))
        assert row is not None
        return Room.from_row(row), created

    async def room(self, room_id: int, user_id: int) -> Room:
        """A room the user belongs to; any other room id is "unknown"."""
        row = await self._db.fetchone(
            "SELECT r.* FROM rooms r JOIN room_members m ON m.room_id = r.id AND m.user_id = %s WHERE r.id = %s",
            (user_id, room_id))
        if row is None:
            raise NotMember("chat.unknown_room")
        return Room.from_row(row)

    async def room_ids(self, user_id: int, limit: int = 500) -> list[int]:
        rows = await self._db.fetchall(
            "SELECT m.room_id FROM room_members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = %s"
            " ORDER BY r.last_message_at IS NULL, r.last_message_at DESC, r.id DESC LIMIT %s", (user_id, limit))
        return [r["room_id"] for r in rows]

    async def rooms_for(self, user_id: int) -> list[dict[str, Any]]:
        """My rooms: the assistant room first, then deal rooms by latest message, with unread counts."""
        from market.rentals.contract import chip  # (market.rentals builds on chat: imported when first used)

        await self.assistant_room(user_id)
        rows = await self._db.fetchall(
            "SELECT r.id, r.kind, r.item_id, r.owner_id, r.borrower_id, r.last_seq, r.last_message_at,"
            " m.role, m.last_read_seq, m.hidden_unread, i.title AS item_title, i.status AS item_status,"
            " (SELECT p.thumb_key FROM item_photos p WHERE p.item_id = i.id ORDER BY p.position LIMIT 1) AS thumb_key,"
            " (SELECT CONCAT(c.state, IF(c.return_declared_at IS NULL, '', '+'))"
            "  FROM contracts c WHERE c.room_id = r.id ORDER BY c.id DESC LIMIT 1) AS deal_state,"
            " other.id AS other_id, other.nickname AS other_nickname, other.profile_photo_key AS other_photo_key"
            " FROM room_members m JOIN rooms r ON r.id = m.room_id"
            " LEFT JOIN items i ON i.id = r.item_id"
            " LEFT JOIN users other ON other.id = (CASE WHEN r.kind = 'deal' AND r.owner_id = m.user_id"
            "   THEN r.borrower_id WHEN r.kind = 'deal' THEN r.owner_id END)"
            " WHERE m.user_id = %s"
            " ORDER BY r.kind = 'assistant' DESC, r.last_message_at IS NULL, r.last_message_at DESC, r.id DESC",
            (user_id,))
        last = await self._last_messages([(r["id"], r["last_seq"]) for r in rows if r["last_seq"]], user_id)
        locale = "en" if await self._db.fetchval("SELECT locale FROM users WHERE id = %s", (user_id,)) == "en" else "ko"
        out = []
        for r in rows:
            msg = last.get(r["id"])
            out.append({
                "id": r["id"], "kind": r["kind"], "role": r["role"], "last_seq": r["last_seq"],
                "unread": max(0, r["last_seq"] - r["last_read_seq"] - r["hidden_unread"]),
                "deal_state": (r["deal_state"] or "").rstrip("+") or None,
                "deal_chip": None if r["kind"] != "deal" else chip((r["deal_state"] or "").rstrip("+") or None,
                                                                   (r["deal_state"] or "").endswith("+"), locale),
                "item": None if r["item_id"] is None else {
                    "id": r["item_id"], "title": r["item_title"], "status": r["item_status"],
                    "thumbnail": media_url(r["thumb_key"])},
                "other": None if r["other_id"] is None else {
                    "id": r["other_id"], "nickname": r["other_nickname"],
                    "profile_photo": media_url(r["other_photo_key"])},
                "last_message": None if msg is None else {
                    "seq": msg.seq, "text": msg.text[:100], "ts": msg.to_wire()["ts"],
                    "sender": {"id": msg.sender_id, "kind": msg.sender_kind, "name": msg.sender_name}},
            })
        return out

    async def _last_messages(self, rooms: list[tuple[int, int]], viewer: int) -> dict[int, Message]:
        """Each room's latest message that ``viewer`` may see (a private one for the other member is passed
        over, so the room list never previews it)."""
        if not rooms:
            return {}
        rows = await self._db.fetchall(
            SELECT_MESSAGES + " WHERE " + " OR ".join(["(m.room_id = %s AND m.seq = %s)"] * len(rooms)),
            tuple(x for pair in rooms for x in pair))
        last = {r["room_id"]: message_from_row(r) for r in rows}
        for room_id in [r for r, m in last.items() if not m.visible_to(viewer)]:
            row = await self._db.fetchone(
                SELECT_MESSAGES + " WHERE m.room_id = %s AND (m.audience_id IS NULL OR m.audience_id = %s)"
                " ORDER BY m.seq DESC LIMIT 1", (room_id, viewer))
            if row is None:
                del last[room_id]
            else:
                last[room_id] = message_from_row(row)
        return last

    # -- messages ----------------------------------------------------------------------------------
    async def send(self, user_id: int, nickname: str, room_id: Any, text: Any, client_msg_id: Any = None,
                   body: dict[str, Any] | None = None, *, session_token: str | None = None) -> Sent:
        """A member's message: checked, rate-limited, stored once per ``client_msg_id``. With
        ``session_token``, the session must still be live (checked in the same Redis round trip)."""
        room = _room_id(room_id)
        clean = v.text({"text": text}, "text", max_len=MAX_TEXT, multiline=True, required=body is None,
                       default="")
        if client_msg_id is not None and (not isinstance(client_msg_id, str)
                                          or not _CLIENT_MSG_ID.match(client_msg_id)):
            raise InvalidInput("chat.bad_client_msg_id", field="client_msg_id")
        await self._rate_check(user_id, session_token)
        return await self.writer.write(Draft(room, user_id, "user", nickname, clean or "", body, client_msg_id))

    async def send_image(self, user_id: int, nickname: str, room_id: Any, data: bytes, *, caption: Any = "",
                         client_msg_id: Any = None) -> Sent:
        """An image message: checked like item photos, stored under ``chat/<room>/`` (served to members only)."""
        room = await self.room(_room_id(room_id), user_id)
        image = await asyncio.to_thread(process_image, data, max_bytes=self._max_upload_bytes,
                                        max_pixels=self._max_image_pixels)
        stem = f"chat/{room.id}/{uuid.uuid4().hex}"
        keys = (f"{stem}.jpg", f"{stem}_thumb.jpg")
        try:
            await self._store.put(keys[0], image.main, image.content_type)
            await self._store.put(keys[1], image.thumb, image.content_type)
            sent = await self.send(user_id, nickname, room.id, caption or "", client_msg_id, body={"image": {
                "url": media_url(keys[0]), "thumbnail": media_url(keys[1]), "width": image.width,
                "height": image.height}})
        except BaseException:
            await asyncio.shield(self._store.discard(*keys))
            raise
        if sent.duplicate:
            await self._store.discard(*keys)  # the first upload of this message stays
        return sent

    async def post(self, room_id: int, text: str, *, kind: str = "bot", body: dict[str, Any] | None = None,
                   client_msg_id: str | None = None, audience: int | None = None) -> Sent:
        """A bot or system message (no rate limit); with ``client_msg_id`` stored once; with ``audience``
        only that member (who must be one) sees it, the others get a placeholder."""
        name = BOT_NAME if kind == "bot" else SYSTEM_NAME
        return await self.writer.write(Draft(room_id, None, kind, name, text, body, client_msg_id, audience))

    async def _rate_check(self, user_id: int, session_token: str | None) -> None:
        count, session_user = await self._gate.check(user_id, session_token)
        if session_token is not None and session_user is None and self.sessions is not None:
            # not in the cache (Redis restarted or was flushed): the system of record answers, and refills it
            found = await self.sessions(session_token)
            session_user = None if found is None else str(found)
        if session_token is not None and session_user != str(user_id):
            raise Unauthenticated("chat.session_expired")
        if count > self._rate_limit:
            raise RateLimited("chat.too_fast", retry_after=self._rate_window_s)

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

    # -- buttons that retire ------------------------------------------------------------------------
    async def keep_live(self, room_id: int, seq: int, topic: str) -> None:
        """Remember that message ``seq`` has live buttons about ``topic`` (a later step retires them)."""
        await self._db.execute("INSERT INTO live_buttons (room_id, topic, seq) VALUES (%s, %s, %s)"
                               " ON DUPLICATE KEY UPDATE seq = VALUES(seq)", (room_id, topic[:64], seq))

    async def retire(self, room_id: int, topic: str, *, below: int | None = None
                     ) -> list[tuple[Message, list[str]]]:
        """Disable every button of the room's messages about ``topic`` (those before seq ``below``: a step never
        retires itself or a later one); returns the edited messages, for the clients to be told, with the tokens
        their buttons carried."""
        rows = await self._db.fetchall("SELECT seq FROM live_buttons WHERE room_id = %s AND topic = %s"
                                       " ORDER BY seq", (room_id, topic[:64]))
        out = []
        for seq in [int(r["seq"]) for r in rows if below is None or int(r["seq"]) < below]:
            edited = await self._edit_buttons(room_id, seq, None)
            if edited is not None:
                out.append(edited)
            await self._db.execute("DELETE FROM live_buttons WHERE room_id = %s AND topic = %s AND seq = %s",
                                   (room_id, topic[:64], seq))
        return out

    async def retire_token(self, room_id: int, seq: Any, token: str) -> Message | None:
        """Disable the one button with ``token`` in message ``seq`` (a used single-use button); None when that
        message has no such live button."""
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 < seq < 2**62:
            return None
        edited = await self._edit_buttons(room_id, seq, token)
        return None if edited is None else edited[0]

    async def _edit_buttons(self, room_id: int, seq: int, token: str | None) -> tuple[Message, list[str]] | None:
        """Disable one button (``token``) or all of a message; returns the message and the tokens it dropped.
        A live message is edited under its row lock (two edits never undo each other); an archived one (its
        segment never rewritten) through ``message_edits``."""
        archived = None
        if await self._db.fetchval("SELECT 1 FROM messages WHERE room_id = %s AND seq = %s", (room_id, seq)) is None:
            found = await self.range(room_id, seq, seq)  # (before any lock: S3 and another connection)
            if not found:
                return None
            archived = found[0]
        now = datetime.now(UTC).replace(tzinfo=None)
        for attempt in range(5):
            try:
                async with self._db.transaction() as cur:
                    if archived is None:
                        await cur.execute(
                            "SELECT room_id, seq, sender_id, sender_kind, audience_id, client_msg_id, text, body,"
                            " created_at, NULL AS sender_name FROM messages WHERE room_id = %s AND seq = %s"
                            " FOR UPDATE", (room_id, seq))
                        row = await cur.fetchone()
                        if row is None:
                            return None  # archived meanwhile: the next retire finds it there
                        msg = message_from_row(row)
                    else:
                        msg = archived
                    body = json.loads(json.dumps(msg.body or {}))
                    dropped: list[str] = []

                    def off(buttons: list[dict[str, Any]]) -> None:
                        for b in buttons:
                            if b.get("disabled") or (token is not None and b.get("token") != token):
                                continue
                            if b.get("token"):
                                dropped.append(str(b["token"]))
                            for key in ("token", "url", "form"):
                                b.pop(key, None)
                            b["disabled"] = True

                    before = json.dumps(body, ensure_ascii=False, sort_keys=True)
                    off(body.get("buttons") or [])
                    for card in body.get("cards") or []:
                        off(card.get("buttons") or [])
                    if json.dumps(body, ensure_ascii=False, sort_keys=True) == before:
                        return None
                    text = json.dumps(body, ensure_ascii=False)
                    if archived is None:
                        await cur.execute("UPDATE messages SET body = %s WHERE room_id = %s AND seq = %s",
                                          (text, room_id, seq))
                    # (kept for archived reads too: the message may move to a segment later)
                    await cur.execute(
                        "INSERT INTO message_edits (room_id, seq, body, edited_at) VALUES (%s, %s, %s, %s)"
                        " ON DUPLICATE KEY UPDATE body = VALUES(body), edited_at = VALUES(edited_at)",
                        (room_id, seq, text, now))
                name = msg.sender_name or (BOT_NAME if msg.sender_kind == "bot" else SYSTEM_NAME)
                return (Message(msg.room_id, msg.seq, msg.sender_id, msg.sender_kind, name, msg.text, body,
                                msg.created_at, msg.client_msg_id, msg.audience), dropped)
            except pymysql.err.OperationalError as e:
                if e.args[0] not in (1213, 1205) or attempt == 4:  # a deadlock or lock wait: again, a bit later
                    raise
                await asyncio.sleep(0.02 * (attempt + 1))
        return None

    async def mark_read(self, user_id: int, room_id: Any, seq: Any) -> dict[str, int]:
        """Move the user's read position forward (never back, never past the last message)."""
        room = await self.room(_room_id(room_id), user_id)
        upto = v.integer({"seq": seq}, "seq", lo=0, hi=2**62)
        assert upto is not None
        upto = min(upto, room.last_seq)
        # The messages after the new read position that are hidden from this member are counted again (few:
        # private messages are rare, and the index on (room, audience, seq) finds them).
        await self._db.execute(
            "UPDATE room_members SET last_read_seq = GREATEST(last_read_seq, %s),"
            " hidden_unread = (SELECT COUNT(*) FROM messages h WHERE h.room_id = %s AND h.audience_id IS NOT NULL"
            "   AND h.audience_id <> %s AND h.seq > GREATEST(last_read_seq, %s))"
            " WHERE room_id = %s AND user_id = %s", (upto, room.id, user_id, upto, room.id, user_id))
        row = await self._db.fetchone(
            "SELECT m.last_read_seq, m.hidden_unread, r.last_seq FROM room_members m JOIN rooms r ON r.id = m.room_id"
            " WHERE m.room_id = %s AND m.user_id = %s", (room.id, user_id))
        assert row is not None
        read, last = int(row["last_read_seq"]), int(row["last_seq"])
        return {"room": room.id, "seq": read, "unread": max(0, last - read - int(row["hidden_unread"])),
                "last_seq": last}

    async def unread_for(self, room_id: int) -> dict[int, int]:
        """Each member's unread count in a room (messages hidden from them do not count)."""
        rows = await self._db.fetchall(
            "SELECT m.user_id, CAST(r.last_seq AS SIGNED) - CAST(m.last_read_seq AS SIGNED)"
            " - CAST(m.hidden_unread AS SIGNED) AS unread"
            " FROM room_members m JOIN rooms r ON r.id = m.room_id WHERE m.room_id = %s", (room_id,))
        return {r["user_id"]: max(0, int(r["unread"])) for r in rows}


def _room_id(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise NotMember("chat.unknown_room")
    try:
        value = int(raw)
    except ValueError:
        raise NotMember("chat.unknown_room") from None
    if not 0 < value < 2**62:
        raise NotMember("chat.unknown_room")
    return value
