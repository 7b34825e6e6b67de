"""Chat: rooms and members, durable messages with a per-room gap-free ``seq``, history, read positions
(``rooms.py``), and the archive of old messages in S3 (``archive.py``)."""

from market.chat.archive import ChatArchive
from market.chat.rooms import (
    BOT_NAME,
    MAX_HISTORY_PAGE,
    MAX_TEXT,
    SELECT_MESSAGES,
    SYSTEM_NAME,
    Chat,
    Draft,
    Message,
    MessageWriter,
    NotMember,
    Room,
    SendGate,
    Sent,
    message_from_row,
)

__all__ = ["BOT_NAME", "MAX_HISTORY_PAGE", "MAX_TEXT", "SELECT_MESSAGES", "SYSTEM_NAME", "Chat", "ChatArchive",
           "Draft", "Message", "MessageWriter", "NotMember", "Room", "SendGate", "Sent", "message_from_row"]
