"""Chat: rooms and members, sending (text, images, bot and system messages), live buttons, read positions.

Messages are stored by the ``MessageWriter`` (writer.py) with a per-room gap-free ``seq``; the ``SendGate``
(gate.py) counts sends; history pages and catch-up come from ``ChatHistory`` (history.py). Nothing here knows
about sockets.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pymysql
import redis.asyncio as aioredis

from market import validation as v
from market.chat.gate import SendGate
from market.chat.history import ChatHistory
from market.chat.model import (
    BOT_NAME,
    SELECT_MESSAGES,
    SYSTEM_NAME,
    Draft,
    Message,
    NotMember,
    Room,
    Sent,
    WithMessage,
    _room_id,
    message_from_row,
)
from market.chat.writer import MessageWriter
from market.db import Database, DatabaseUnavailable, Tail
from market.errors import Conflict, InvalidInput, NotFound, RateLimited, Unauthenticated
from market.limits import Limits
from market.people.blocks import refuse_if_blocked
from market.storage import BlobStore, media_url
from market.uploads import Uploads

MAX_TEXT = 2000
_CLIENT_MSG_ID = re.compile(r"^[A-Za-z0-9_\-:.]{1,64}$")


class Chat(ChatHistory):
    """Rooms, membership, sending, history (``ChatHistory``) and read positions."""

    def __init__(self, db: Database, redis: aioredis.Redis, store: BlobStore, *, rate_limit: int,
                 rate_window_s: int, uploads: Uploads, limits: Limits, archive: Any = None) -> None:
        self._db = db
        self._redis = redis
        self._store = store
        self._uploads = uploads
        self._limits = limits
        self._rate_limit = rate_limit
        self._rate_window_s = rate_window_s
        self.writer = MessageWriter(db)
        self._gate = SendGate(redis, rate_window_s)
        self.archive = archive  # market.chat.archive.ChatArchive, set by the service
        self.notifications: Any = None  # market.people.notifications.Notifications, set by the service
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

    async def open_deal_room(self, item_id: int, borrower_id: int, *,
                             checked: Mapping[str, Any] | None = None) -> tuple[Room, bool]:
        """The deal room of (item, borrower); created on first inquiry with the owner and the borrower. Refused
        while either of the two blocked the other (``market.people.blocks``). Each person may open only so
        many new deal rooms per window (``limit.inquiry``): each one notifies an owner. Coming back to a room
        already open is never refused. ``checked``: the item's row (``owner_id``), which the caller has just read
        and checked the same way (listed, not the borrower's own, no block between the two) — not read again; if
        it carries ``room_id`` (None: no room yet), the room read with it (``room_*``), and ``title`` and
        ``nickname`` (the borrower's) for the owner's notification, those are not read again either."""
        if checked is not None:
            item = checked
        else:
            item = await self._db.fetchone("SELECT id, owner_id, status FROM items WHERE id = %s", (item_id,))
            if item is None or item["status"] in ("deleted", "hidden"):
                raise NotFound("item.not_found")
            if item["owner_id"] == borrower_id:
                raise Conflict("chat.own_item")
            await refuse_if_blocked(self._db, borrower_id, item["owner_id"], "block.cannot_inquire")
        key = f"deal:{item_id}:{borrower_id}"
        if "room_id" in item:
            if item["room_id"] is not None:
                return Room(item["room_id"], item["room_kind"], item["room_item_id"], item["room_owner_id"],
                            item["room_borrower_id"], item["room_last_seq"]), False
        else:
            row = await self._db.fetchone("SELECT * FROM rooms WHERE unique_key = %s", (key,))
            if row is not None:
                return Room.from_row(row), False
        await self.may_open_deal_room(borrower_id)
        try:
            async with self._db.transaction() as cur:
                room, told = await self.create_deal_room(cur, item_id, borrower_id, item)
        except pymysql.err.IntegrityError:  # opened by a concurrent request: that one is the room
            row = await self._db.fetchone("SELECT * FROM rooms WHERE unique_key = %s", (key,))
            assert row is not None
            return Room.from_row(row), False
        if told:
            await self.notifications.ping([item["owner_id"]])
        return room, True

    async def may_open_deal_room(self, borrower_id: int) -> None:
        """Count one new deal room of this person (``limit.inquiry``), or refuse it (``RateLimited``)."""
        await self._limits.take(self._limits.inquiry, person=borrower_id)

    async def create_deal_room(self, cur: Any, item_id: int, borrower_id: int, item: Mapping[str, Any],
                               owner: Mapping[str, Any] | None = None) -> tuple[Room, bool]:
        """A new deal room of (item, borrower) inside the caller's transaction (``cur``), its owner told of the
        inquiry; the caller has counted it (``may_open_deal_room``) and checked the item as ``open_deal_room``
        does. ``item``: its ``owner_id`` (and ``title`` and ``nickname``, the borrower's, if read); ``owner``: what
        ``Notifications.new_inquiry`` reads of the owner, if the caller read it in this transaction. Returns the
        room and whether the owner's unread count grew (the caller pings them after its commit).
        ``pymysql.err.IntegrityError``: the room exists already (a concurrent inquiry made it)."""
        await cur.execute(
            "INSERT INTO rooms (kind, unique_key, item_id, owner_id, borrower_id)"
            " VALUES ('deal', %s, %s, %s, %s)", (f"deal:{item_id}:{borrower_id}", item_id, item["owner_id"],
                                                 borrower_id))
        room_id = int(cur.lastrowid)
        await cur.execute(
            "INSERT INTO room_members (room_id, user_id, role) VALUES (%s, %s, 'owner'), (%s, %s, 'borrower')",
            (room_id, item["owner_id"], room_id, borrower_id))
        told = False
        if self.notifications is not None:
            if "title" in item and "nickname" in item:
                who: Mapping[str, Any] = item
            else:
                await cur.execute("SELECT u.nickname, i.title FROM users u JOIN items i ON i.id = %s"
                                  " WHERE u.id = %s", (item_id, borrower_id))
                who = await cur.fetchone()
            told = await self.notifications.new_inquiry(cur, item["owner_id"], room_id=room_id, item_id=item_id,
                                                        name=who["nickname"], title=who["title"],
                                                        sender=borrower_id, owner=owner)
        return Room(room_id, "deal", item_id, item["owner_id"], borrower_id, 0), told  # (as just inserted)

    def deal_room_later(self, tail: Tail, item_id: int, borrower_id: int, item: Mapping[str, Any],
                        owner: Mapping[str, Any]) -> tuple[int, int | None]:
        """``create_deal_room`` as statements of the transaction's last round trip (``tail``), which set
        ``@billi_room`` to the new room's id for the statements after them. ``item``: its ``owner_id``, ``title``
        and ``nickname`` (the borrower's); ``owner``: what ``Notifications.new_inquiry`` reads of the owner, read
        in this transaction. Returns the places in the tail of the room's insert (its inserted id: the room) and
        of the statement whose one affected row means the owner's unread count grew (None: it cannot grow).
        The room's insert fails with ``pymysql.err.IntegrityError`` if a concurrent inquiry made it already."""
        made = tail.add("INSERT INTO rooms (kind, unique_key, item_id, owner_id, borrower_id) VALUES ('deal', %s, %s,"
                        " %s, %s)", f"deal:{item_id}:{borrower_id}", item_id, item["owner_id"], borrower_id)
        tail.add("SET @billi_room = LAST_INSERT_ID()")
        tail.add("INSERT INTO room_members (room_id, user_id, role) VALUES (@billi_room, %s, 'owner'),"
                 " (@billi_room, %s, 'borrower')", item["owner_id"], borrower_id)
        told = None
        if self.notifications is not None:
            told = self.notifications.new_inquiry_later(tail, item["owner_id"], room="@billi_room", item_id=item_id,
                                                        name=item["nickname"], title=item["title"], owner=owner)
        return made, told

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
                   body: dict[str, Any] | None = None, *, session_token: str | None = None,
                   watch: Callable[[int], str] | None = None) -> Sent:
        """A member's message: checked, rate-limited, stored once per ``client_msg_id``. With
        ``session_token``, the session must still be live (checked in the same Redis round trip). In a deal room
        whose members blocked one another it is refused (checked where it is stored, see ``MessageWriter``).
        ``watch``: the Redis key (given the room) whose existence comes back as ``Sent.watched``, read in the same
        round trip before the message is stored — e.g. the bot's open question for this person in this room."""
        room = _room_id(room_id)
        clean = v.text({"text": text}, "text", max_len=MAX_TEXT, multiline=True, required=body is None,
                       default="")
        if client_msg_id is not None and (not isinstance(client_msg_id, str)
                                          or not _CLIENT_MSG_ID.match(client_msg_id)):
            raise InvalidInput("chat.bad_client_msg_id", field="client_msg_id")
        watched = await self._rate_check(user_id, session_token, watch(room) if watch is not None else None)
        sent = await self.writer.write(Draft(room, user_id, "user", nickname, clean or "", body, client_msg_id))
        return sent if watched is None else Sent(sent.message, sent.duplicate, sent.unread, watched)

    async def send_image(self, user_id: int, nickname: str, room_id: Any, data: bytes, *, caption: Any = "",
                         client_msg_id: Any = None) -> Sent:
        """An image message: checked like item photos, stored under ``chat/<room>/`` (served to members only)."""
        room = await self.room(_room_id(room_id), user_id)
        image = await self._uploads.process(data)
        stem = f"chat/{room.id}/{uuid.uuid4().hex}"
        keys = (f"{stem}.jpg", f"{stem}_thumb.jpg")
        try:
            await self._store.put(keys[0], image.main, image.content_type)
            await self._store.put(keys[1], image.thumb, image.content_type)
            sent = await self.send(user_id, nickname, room.id, caption or "", client_msg_id, body={"image": {
                "url": media_url(keys[0]), "thumbnail": media_url(keys[1]), "width": image.width,
                "height": image.height}})
        except DatabaseUnavailable as e:
            if not e.in_commit:  # broken in COMMIT it may be stored: its photos stay (an orphan at worst)
                await asyncio.shield(self._store.discard(*keys))
            raise
        except BaseException:
            await asyncio.shield(self._store.discard(*keys))
            raise
        if sent.duplicate:
            await self._store.discard(*keys)  # the first upload of this message stays
        return sent

    async def post(self, room_id: int, text: str, *, kind: str = "bot", body: dict[str, Any] | None = None,
                   client_msg_id: str | None = None, audience: int | None = None, topic: str | None = None,
                   also: WithMessage | None = None) -> Sent:
        """A bot or system message (no rate limit); with ``client_msg_id`` stored once; with ``audience``
        only that member (who must be one) sees it, the others get a placeholder. ``topic``: its buttons are
        kept live (``keep_live``) in the transaction that stores it; ``also``: a statement committed with it. Neither
        is written when the message was found stored already (``Sent.duplicate``)."""
        name = BOT_NAME if kind == "bot" else SYSTEM_NAME
        return await self.writer.write(Draft(room_id, None, kind, name, text, body, client_msg_id, audience,
                                             topic, also))

    async def _rate_check(self, user_id: int, session_token: str | None, watch: str | None = None) -> bool | None:
        count, session_user, watched = await self._gate.check(user_id, session_token, watch)
        if session_token is not None and session_user is None and self.sessions is not None:
            # not in the cache (Redis restarted or was flushed): the system of record answers, and refills it
            found = await self.sessions(session_token)
            session_user = None if found is None else str(found)
        if session_token is not None and session_user != str(user_id):
            raise Unauthenticated("chat.session_expired")
        if count > self._rate_limit:
            raise RateLimited("chat.too_fast", retry_after=self._rate_window_s)
        return watched

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
