"""Chat's data: rooms, messages as stored and sent, drafts waiting for the writer, reading message rows."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from market.db import Row
from market.errors import NotFound
from market.validation import whole_number

BOT_NAME = "빌리"
SYSTEM_NAME = "알림"


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
    """A stored message, whether it repeated an earlier send, and each member's unread count after it; for a
    member's send that watched a key (``Chat.send``), whether it existed (None: not known)."""

    message: Message
    duplicate: bool
    unread: dict[int, int]
    watched: bool | None = None


@dataclass(slots=True)
class WithMessage:
    """A statement committed in the same transaction as a message — only by the writer that stores it, not when it
    was found stored already (a repeated ``client_msg_id``); ``done`` once committed."""

    sql: str
    args: tuple[Any, ...]
    done: bool = False


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
    topic: str | None = None  # its buttons stay live until this topic retires (``live_buttons``, in its commit)
    also: WithMessage | None = None
    future: asyncio.Future[Sent] = field(default=None)  # type: ignore[assignment]


class NotMember(NotFound):
    """A room that does not exist and a room one is not in look the same from outside."""


def _room_id(raw: Any) -> int:
    value = whole_number(raw) if isinstance(raw, (int, str)) else None
    if value is None or not 0 < value < 2**62:
        raise NotMember("chat.unknown_room")
    return value


SELECT_MESSAGES = (
    "SELECT m.room_id, m.seq, m.sender_id, m.sender_kind, m.audience_id, m.client_msg_id, m.text, m.body, m.created_at,"
    " u.nickname AS sender_name FROM messages m LEFT JOIN users u ON u.id = m.sender_id")


def message_from_row(row: Row) -> Message:
    kind = row["sender_kind"]
    name = row["sender_name"] if kind == "user" else (BOT_NAME if kind == "bot" else SYSTEM_NAME)
    return Message(row["room_id"], row["seq"], row["sender_id"], kind, name or "", row["text"],
                   json.loads(row["body"]) if row["body"] else None, row["created_at"], row["client_msg_id"],
                   row["audience_id"])
