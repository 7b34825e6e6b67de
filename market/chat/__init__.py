"""Chat: rooms and members (``rooms.py``), durable messages with a per-room gap-free ``seq`` (``model.py``,
written by ``writer.py``), the send-rate gate (``gate.py``), history and catch-up (``history.py``), and old
messages moved to S3 and read back (``archive.py``). Nothing here knows about sockets."""

from market.chat.archive import ChatArchive
from market.chat.gate import SendGate
from market.chat.history import MAX_HISTORY_PAGE
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
    message_from_row,
)
from market.chat.rooms import MAX_TEXT, Chat
from market.chat.writer import MessageWriter

__all__ = ["BOT_NAME", "MAX_HISTORY_PAGE", "MAX_TEXT", "SELECT_MESSAGES", "SYSTEM_NAME", "Chat",
           "ChatArchive", "Draft", "Message", "MessageWriter", "NotMember", "Room", "SendGate", "Sent",
           "WithMessage", "message_from_row"]
