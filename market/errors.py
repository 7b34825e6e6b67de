"""Domain errors: a stable code (also the catalogue key of its message), a kind, and parameters.

They are turned into words only at the edges (REST, chat) via ``market.messages``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class Kind(Enum):
    INVALID = "invalid"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    UNSUPPORTED = "unsupported"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"


class MarketError(Exception):
    """Base of every error a user may be told about. ``code`` is a key of the message catalogue."""

    kind: Kind = Kind.INVALID

    def __init__(self, code: str, *, field: str | None = None, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.field = field
        self.params = params

    def message(self, locale: str = "ko") -> str:
        from market.messages import render

        return render(self.code, locale, field=self.field, **self.params)


class InvalidInput(MarketError):
    kind = Kind.INVALID


class Unauthenticated(MarketError):
    kind = Kind.UNAUTHENTICATED


class Forbidden(MarketError):
    kind = Kind.FORBIDDEN


class NotFound(MarketError):
    kind = Kind.NOT_FOUND


class Conflict(MarketError):
    kind = Kind.CONFLICT
    # A refused rental request that opened its deal room all the same (the room stays, for talking): the room, and
    # its two members, for the caller to announce as it does a request's new room.
    opened_room: tuple[int, list[int]] | None = None


class TooLarge(MarketError):
    kind = Kind.TOO_LARGE


class Unsupported(MarketError):
    kind = Kind.UNSUPPORTED


class RateLimited(MarketError):
    kind = Kind.RATE_LIMITED


class Unavailable(MarketError):
    kind = Kind.UNAVAILABLE
