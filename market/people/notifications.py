"""Notifications: a row per person per happening (in their language), a per-person unread count, muted kinds.

Rows are written in the same transaction as what they tell about (a contract's step, a new inquiry, a review),
so nobody is told about something that did not happen; the deal-room message for the step is the delivery in
the conversation, and the unread count is pushed to the person's open clients (``room_update``) by ``on_new``.
Someone offline finds both on the next connect: the messages are stored, the count is a query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from market.db import Database, Tail
from market.errors import InvalidInput
from market.messages import fill
from market.validation import whole_number

KINDS: dict[str, tuple[str, str]] = {
    "new_inquiry": ("{name}님이 {title}에 대해 문의했어요.", "{name} asked about {title}."),
    "request_received": ("{title} 대여 요청이 왔어요.", "A rental request for {title}."),
    "request_accepted": ("{title} 대여 요청이 수락됐어요. 결제해 주세요.", "Your request for {title} was accepted."),
    "request_declined": ("{title} 대여 요청이 거절됐어요.", "Your request for {title} was declined."),
    "payment_received": ("{title} 대여료와 보증금이 결제됐어요.", "{title} has been paid for."),
    "starts_tomorrow": ("내일 {title} 대여가 시작돼요.", "The rental of {title} starts tomorrow."),
    "due_today": ("오늘 {title|을} 반납하는 날이에요.", "{title} is due back today."),
    "overdue": ("{title} 반납일이 지났어요.", "{title} is overdue."),
    "return_confirmed": ("{title} 반납이 확인됐어요.", "The return of {title} is recorded."),
    "claim_filed": ("{title} 보증금 청구가 접수됐어요. 수락하거나 이의를 제기해 주세요.",
                    "A claim on the deposit for {title} was filed; accept or dispute it."),
    "return_declared": ("{title|을} 돌려줬다고 해요. 받았는지 확인해 주세요.",
                        "The borrower says {title} is back; please confirm."),
    "return_objected": ("주인이 아직 {title|을} 받지 못했다고 해요.", "The owner says {title} is not back yet."),
    "handover_disputed": ("{title} 전달 여부를 운영자가 확인하고 있어요 · 보통 2일 안에",
                          "An operator is checking the hand-over of {title} (usually within 2 days)."),
    "dispute_resolved": ("{title}에 대한 운영자의 결정이 나왔어요.", "An operator decided about {title}."),
    "review_received": ("새 리뷰가 도착했어요. 내 리뷰를 쓰면 바로 볼 수 있어요.",
                        "You received a review; write yours to see it."),
    "wish_available": ("찜한 {title|을} 다시 빌릴 수 있어요.", "{title}, on your wish list, is free again."),
}
# A burst of new inquiries an owner has not read yet: one notification, its count kept up to date
INQUIRIES = ("새 문의 {count}건이 왔어요. 가장 최근: {name}님, {title}",
             "{count} new inquiries; the latest from {name} about {title}.")
MAX_PAGE = 100
# Kinds with no conversation of their own: also said by the bot in the person's assistant room.
TO_ASSISTANT = frozenset({"review_received", "wish_available"})

OnNew = Callable[[list[int], Mapping[int, int]], Awaitable[None]]  # people; the unread counts known already
OnPost = Callable[[list[tuple[int, str]]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Reader:
    """How one person takes a notification, as the caller read it in its own transaction (so ``add`` need not):
    their language, and whether they refuse it (muted the kind, or blocked its sender)."""

    locale: str
    refused: bool = False


def inquiry_columns(prefix: str = "") -> str:
    """What telling an owner of a new inquiry reads of them (``u``: their users row; %(sender)s: who asked,
    %(window)s: the inquiry window in seconds): whether they blocked the sender or muted inquiries, their language,
    and their unread inquiry notification of the window (``id``, ``coalesced``) that a new one joins. A caller that
    reads the owner in its own transaction anyway adds these columns to that read (each name after ``prefix``) and
    hands them to ``Notifications.new_inquiry(owner=…)`` (without it)."""
    return (f"u.locale AS {prefix}locale,"
            f" EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = u.id AND b.blocked_id = %(sender)s) AS {prefix}blocked,"
            " EXISTS (SELECT 1 FROM notification_mutes m WHERE m.user_id = u.id AND m.kind = 'new_inquiry')"
            f" AS {prefix}muted, " + ", ".join(
                f"(SELECT x.{c} FROM notifications x WHERE x.user_id = u.id AND x.kind = 'new_inquiry'"
                " AND x.read_at IS NULL AND x.created_at > NOW(3) - INTERVAL %(window)s SECOND ORDER BY x.id DESC"
                f" LIMIT 1) AS {prefix}{c}" for c in ("id", "coalesced")))


INQUIRY_READ = "SELECT " + inquiry_columns()
# A person's unread count (%s: the person), as their badge shows it.
UNREAD = "SELECT COUNT(*) AS n FROM notifications WHERE user_id = %s AND read_at IS NULL"


class Notifications:
    def __init__(self, db: Database, *, inquiry_window_s: int) -> None:
        self.db = db
        self.inquiry_window_s = inquiry_window_s
        self.on_new: OnNew | None = None  # the gateway pushes the new unread counts
        self.on_post: OnPost | None = None  # the bot says TO_ASSISTANT kinds in the assistant room
        self._to_post: list[tuple[int, str]] = []  # (user, dedupe) written by transactions not yet pinged

    async def add(self, cur: Any, user_id: int, kind: str, *, params: dict[str, Any] | None = None,
                  room_id: int | None = None, contract_id: int | None = None, item_id: int | None = None,
                  dedupe: str | None = None, sender: int | None = None, reader: Reader | None = None) -> bool:
        """Record one inside the caller's transaction (``cur``), unless the person muted this kind or blocked its
        ``sender`` (the person whose act it tells of); a repeated ``dedupe`` key is recorded once. ``reader``: the
        person's language and refusal, when the caller read them in this transaction already."""
        if reader is None:
            await cur.execute("SELECT u.locale, m.kind AS muted, b.blocked_id AS blocked FROM users u"
                              " LEFT JOIN notification_mutes m ON m.user_id = u.id AND m.kind = %s"
                              " LEFT JOIN blocks b ON b.blocker_id = u.id AND b.blocked_id = %s WHERE u.id = %s",
                              (kind, sender, user_id))
            row = await cur.fetchone()
            if row is None:
                return False
            reader = Reader(row["locale"], bool(row["muted"] or row["blocked"]))
        if reader.refused:
            return False
        ko, en = KINDS[kind]
        text = fill(en if reader.locale == "en" else ko, reader.locale, params or {})[:300]
        await cur.execute("INSERT INTO notifications (user_id, kind, room_id, contract_id, item_id, dedupe, text)"
                          " VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE id = id",
                          (user_id, kind, room_id, contract_id, item_id, dedupe, text))
        added = cur.rowcount == 1  # 0: told already (the same dedupe key)
        if added and kind in TO_ASSISTANT and dedupe:
            self._to_post.append((user_id, dedupe))
        return added

    def add_later(self, tail: Tail, user_id: int, kind: str, *, reader: Reader, params: dict[str, Any] | None = None,
                  room: str = "NULL", contract: str = "NULL", item_id: int | None = None, dedupe: str = "NULL",
                  unless: str | None = None) -> int | None:
        """``add`` as a statement of the transaction's last round trip (``tail``), for a person the caller has read
        (``reader``): ``room``, ``contract`` and ``dedupe`` are SQL expressions of the tail's (a user variable an
        insert before it set); ``unless``: a condition under which it is not written. Returns the statement's place
        in the tail (affected rows 1: the person was told), or None when they refuse it. (Not for kinds the bot
        also says in the assistant room.)"""
        if reader.refused:
            return None
        assert kind not in TO_ASSISTANT, kind
        ko, en = KINDS[kind]
        text = fill(en if reader.locale == "en" else ko, reader.locale, params or {})[:300]
        return tail.add("INSERT INTO notifications (user_id, kind, room_id, contract_id, item_id, dedupe, text)"
                        f" SELECT %s, %s, {room}, {contract}, %s, {dedupe}, %s FROM DUAL"
                        + ("" if unless is None else f" WHERE NOT ({unless})") + " ON DUPLICATE KEY UPDATE id = id",
                        user_id, kind, item_id, text)

    def new_inquiry_later(self, tail: Tail, owner_id: int, *, room: str, item_id: int, name: str, title: str,
                          owner: Mapping[str, Any]) -> int | None:
        """``new_inquiry`` as statements of the transaction's last round trip (``tail``; ``room``: the new deal
        room's id as a SQL expression of the tail's), from what the caller read of the owner (``INQUIRY_READ``'s
        columns). Returns the place of the statement whose one affected row means the owner's unread count grew,
        or None when it cannot grow."""
        if owner["blocked"]:
            return None
        unless = None
        if owner["id"] is not None:
            ko, en = INQUIRIES
            text = fill(en if owner["locale"] == "en" else ko, owner["locale"],
                        {"count": owner["coalesced"] + 1, "name": name, "title": title})[:300]
            # (read meanwhile, or counted by a concurrent inquiry: then this one is told on its own)
            tail.add(f"UPDATE notifications SET text = %s, coalesced = coalesced + 1, room_id = {room},"
                     " item_id = %s WHERE id = %s AND read_at IS NULL AND coalesced = %s",
                     text, item_id, owner["id"], owner["coalesced"])
            tail.add("SET @billi_coalesced = ROW_COUNT()")
            unless = "@billi_coalesced = 1"
        return self.add_later(tail, owner_id, "new_inquiry", reader=Reader(owner["locale"], bool(owner["muted"])),
                              params={"name": name, "title": title}, room=room, item_id=item_id, unless=unless)

    async def new_inquiry(self, cur: Any, owner_id: int, *, room_id: int, item_id: int, name: str,
                          title: str, sender: int | None = None, owner: Mapping[str, Any] | None = None) -> bool:
        """Tell an owner of a new deal room inside the caller's transaction (``cur``, which created the room).
        While their last inquiry notification is unread and younger than the inquiry window, it becomes "새 문의
        N건" instead of a new one, so a burst of inquiries (from one person or many) is one notification and not a
        buzz per room; it then leads to the latest room. True when the person's unread count grew.

        (Inquiries racing each other may still make two: nothing is locked for this, and a lost race is told
        on its own rather than miscounted.) Nothing, if the owner blocked ``sender``. ``owner``: what this reads
        of the owner (``INQUIRY_READ``), when the caller read it in this transaction already."""
        if owner is None:
            # (what the owner blocked and muted, their language and their unread burst: one read)
            await cur.execute(INQUIRY_READ + " FROM users u WHERE u.id = %(owner)s",
                              {"sender": sender, "window": self.inquiry_window_s, "owner": owner_id})
            owner = await cur.fetchone()
        if owner is None or owner["blocked"]:
            return False
        if owner["id"] is not None:
            ko, en = INQUIRIES
            text = fill(en if owner["locale"] == "en" else ko, owner["locale"],
                        {"count": owner["coalesced"] + 1, "name": name, "title": title})[:300]
            # (read meanwhile, or counted by a concurrent inquiry: then this one is told on its own)
            await cur.execute("UPDATE notifications SET text = %s, coalesced = coalesced + 1, room_id = %s,"
                              " item_id = %s WHERE id = %s AND read_at IS NULL AND coalesced = %s",
                              (text, room_id, item_id, owner["id"], owner["coalesced"]))
            if cur.rowcount == 1:
                return False
        return await self.add(cur, owner_id, "new_inquiry", room_id=room_id, item_id=item_id,
                              params={"name": name, "title": title}, sender=sender,
                              reader=Reader(owner["locale"], bool(owner["muted"])))

    async def rename_sender(self, cur: Any, user_id: int, name: str) -> None:
        """In the caller's transaction (an account deletion), write the inquiry notifications others were sent
        about this person's deal rooms anew with ``name`` in place of their nickname (the only notifications that
        name whoever caused them)."""
        await cur.execute("SELECT n.id, n.coalesced, u.locale, i.title FROM notifications n"
                          " JOIN room_members rm ON rm.room_id = n.room_id AND rm.user_id = %s AND rm.role = 'borrower'"
                          " JOIN users u ON u.id = n.user_id LEFT JOIN items i ON i.id = n.item_id"
                          " WHERE n.kind = 'new_inquiry'", (user_id,))
        for row in await cur.fetchall():
            ko, en = INQUIRIES if row["coalesced"] > 1 else KINDS["new_inquiry"]  # (it counts its inquiries)
            text = fill(en if row["locale"] == "en" else ko, row["locale"],
                        {"count": row["coalesced"], "name": name, "title": row["title"] or ""})[:300]
            await cur.execute("UPDATE notifications SET text = %s WHERE id = %s", (text, row["id"]))

    async def ping(self, user_ids: Iterable[int], counts: Mapping[int, int] | None = None) -> None:
        """After a commit: let the people's open clients know their unread count (``counts``: some of them, read
        after that commit — ``UNREAD`` — so they need not be read again)."""
        if self.on_new is not None:
            ids = sorted(set(user_ids))
            if ids:
                await self.on_new(ids, counts or {})
        if self._to_post:
            wanted, self._to_post = self._to_post, []
            if self.on_post is None:
                return
            # only what really committed (a transaction that rolled back left no row)
            rows = await self.db.fetchall(
                "SELECT user_id, text FROM notifications WHERE " + " OR ".join(["(user_id = %s AND dedupe = %s)"]
                                                                           * len(wanted)),
                tuple(x for pair in wanted for x in pair))
            if rows:
                await self.on_post([(r["user_id"], r["text"]) for r in rows])

    async def unread(self, user_id: int) -> int:
        return int(await self.db.fetchval(UNREAD, (user_id,)))

    async def page(self, user_id: int, before: Any = None, limit: Any = 30) -> dict[str, Any]:
        n = _int(limit, 1, MAX_PAGE, "limit") if limit is not None else 30
        cursor = _int(before, 1, 2**62, "before") if before is not None else 2**62
        rows = await self.db.fetchall(
            "SELECT id, kind, room_id, contract_id, item_id, text, created_at, read_at FROM notifications"
            " WHERE user_id = %s AND id < %s ORDER BY id DESC LIMIT %s", (user_id, cursor, n))
        return {"notifications": [{
            "id": r["id"], "kind": r["kind"], "room": r["room_id"], "contract_id": r["contract_id"],
            "item_id": r["item_id"], "text": r["text"], "at": r["created_at"].isoformat(timespec="seconds") + "Z",
            "read": r["read_at"] is not None} for r in rows], "unread": await self.unread(user_id),
            "next_before": rows[-1]["id"] if len(rows) == n else None}

    async def mark_read(self, user_id: int, upto: Any = None) -> int:
        """Mark as read everything up to ``upto`` (an id), or everything."""
        limit = _int(upto, 1, 2**62, "upto") if upto is not None else 2**62
        await self.db.execute("UPDATE notifications SET read_at = NOW(3) WHERE user_id = %s AND id <= %s"
                              " AND read_at IS NULL", (user_id, limit))
        return await self.unread(user_id)

    async def prefs(self, user_id: int) -> dict[str, bool]:
        """Each kind: True when it is delivered, False when muted."""
        muted = {r["kind"] for r in await self.db.fetchall("SELECT kind FROM notification_mutes WHERE user_id = %s",
                                                           (user_id,))}
        return {kind: kind not in muted for kind in KINDS}

    async def set_prefs(self, user_id: int, data: Any) -> dict[str, bool]:
        if not isinstance(data, dict) or not data:
            raise InvalidInput("notify.bad_prefs", field="body")
        for kind, on in data.items():
            if kind not in KINDS or not isinstance(on, bool):
                raise InvalidInput("notify.bad_prefs", field="body")
        async with self.db.transaction() as cur:
            for kind, on in data.items():
                if on:
                    await cur.execute("DELETE FROM notification_mutes WHERE user_id = %s AND kind = %s",
                                      (user_id, kind))
                else:
                    await cur.execute("INSERT IGNORE INTO notification_mutes (user_id, kind) VALUES (%s, %s)",
                                      (user_id, kind))
        return await self.prefs(user_id)


def _int(raw: Any, lo: int, hi: int, field: str) -> int:
    value = whole_number(raw)  # "upto": 1.5 is refused, not read as 1
    if value is None:
        raise InvalidInput("input.not_integer", field=field)
    if not lo <= value <= hi:
        raise InvalidInput("input.number_range", field=field, min=lo, max=hi)
    return value
