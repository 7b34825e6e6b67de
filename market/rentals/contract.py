"""A rental contract as stored, the rules it is held to, and the state sets."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from typing import Any

from market.config import Config
from market.db import Row
from market.errors import Conflict, NotFound
from market.validation import whole_number

HOLDING = ("PAID", "IN_USE", "OVERDUE")          # booked
PENDING = ("REQUESTED", "ACCEPTED")              # held until expires_at
OPEN = (*PENDING, *HOLDING, "RETURNED", "CLAIMED", "DISPUTED")
FINAL = ("SETTLED", "DECLINED", "CANCELLED", "EXPIRED")
BUSY = (*HOLDING, "RETURNED", "CLAIMED", "DISPUTED")  # a deal room takes no new request while one is here
# The deal as people say it: every contract state (and a declared return) → its chip, in the room list and on
# top of the deal room (DESIGN §3). A deal room with no contract yet is "문의 중".
CHIPS: dict[str, tuple[str, str]] = {
    "": ("문의 중", "inquiry"),
    "REQUESTED": ("요청됨", "requested"), "ACCEPTED": ("결제 대기", "awaiting payment"),
    "PAID": ("예약됨", "booked"), "IN_USE": ("대여 중", "in use"), "OVERDUE": ("반납 지연", "overdue"),
    "RETURN_DECLARED": ("반납 확인 중", "return being checked"), "RETURNED": ("상태 확인 중", "condition check"),
    "CLAIMED": ("보증금 청구 중", "deposit claimed"), "DISPUTED": ("운영자 확인 중", "with an operator"),
    "SETTLED": ("거래 완료", "completed"), "DECLINED": ("거절됨", "declined"), "CANCELLED": ("취소됨", "cancelled"),
    "EXPIRED": ("만료됨", "expired"),
}


def chip(state: str | None, return_declared: bool = False, locale: str = "ko") -> str:
    """The chip of a deal room whose latest contract is in ``state`` (None: no contract yet)."""
    key = "RETURN_DECLARED" if return_declared and state in ("IN_USE", "OVERDUE") else (state or "")
    ko, en = CHIPS.get(key, (key, key))
    return en if locale == "en" else ko


MAX_NOTE = 500
MAX_FUTURE_DAYS = 365


@dataclass(frozen=True, slots=True)
class Rules:
    fee_percent: int = 5
    request_ttl_s: int = 24 * 3600
    payment_window_s: int = 24 * 3600
    free_cancel_s: int = 24 * 3600
    late_cancel_percent: int = 50
    claim_window_s: int = 72 * 3600
    max_days: int = 60
    max_open_requests: int = 5
    no_show_s: int = 24 * 3600
    return_confirm_s: int = 24 * 3600
    lost_after_days: int = 14

    @classmethod
    def from_config(cls, config: Config) -> Rules:
        return cls(config.rental_fee_percent, config.rental_request_ttl_h * 3600,
                   config.rental_payment_window_h * 3600, config.rental_free_cancel_h * 3600,
                   config.rental_late_cancel_percent, config.rental_claim_window_h * 3600,
                   config.rental_max_days, no_show_s=config.rental_no_show_h * 3600,
                   return_confirm_s=config.rental_return_confirm_h * 3600,
                   lost_after_days=config.rental_lost_after_days)

    def fee(self, rent: int) -> int:
        return (rent * self.fee_percent + 50) // 100


@dataclass(frozen=True, slots=True)
class Contract:
    id: int
    item_id: int
    owner_id: int
    borrower_id: int
    room_id: int
    state: str
    start_date: date
    end_date: date
    late_from: date | None
    price_per_day: int
    deposit: int
    rent: int
    fee: int
    extra_rent: int
    extra_fee: int
    late_fee: int
    claim_kind: str | None
    claim_amount: int | None
    claim_note: str | None
    resolution_note: str | None
    ext_end_date: date | None
    ext_rent: int | None
    ext_fee: int | None
    owner_handed_at: datetime | None
    borrower_got_at: datetime | None
    return_declared_at: datetime | None
    handover_objected_at: datetime | None
    expires_at: datetime | None
    returned_at: datetime | None
    settled_at: datetime | None
    reminders: str
    created_at: datetime
    appt_proposed_by: int | None = None  # 약속 잡기: a proposal waiting for the other person's answer
    appt_proposed_at: datetime | None = None  # (UTC)
    appt_proposed_place: str | None = None
    appointment_at: datetime | None = None  # the agreed hand-over (UTC)
    appointment_place: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> Contract:
        return cls(**{name: row[name] for name in _FIELDS if name in row})

    @classmethod
    def new(cls, **values: Any) -> Contract:
        """A request as its row reads right after the INSERT (the columns' defaults, ``values`` on top), so the
        request need not read it back. (``id``: 0 until the insert gives it one.)"""
        return cls(**{**_NEW, **values})

    def but(self, **changes: Any) -> Contract:
        return replace(self, **changes)  # (every field is a plain value: no deep copy needed, as asdict made)

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    @property
    def total(self) -> int:
        """What the borrower pays at first: rent + fee + deposit."""
        return self.rent + self.fee + self.deposit

    def lateness(self, day: date) -> tuple[int, int]:
        """Days late on ``day`` and the late fee so far: the daily price per day, at most the deposit. Counted
        from the end date, or from ``late_from`` when an operator waived the days spent in a dispute."""
        days = max(0, (day - max(self.end_date, self.late_from or self.end_date)).days)
        return days, min(self.deposit, days * self.price_per_day)

    def role(self, user_id: int | None) -> str | None:
        if user_id == self.owner_id:
            return "owner"
        if user_id == self.borrower_id:
            return "borrower"
        return None

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in _FIELDS:  # (asdict would deep-copy each value: plain values here, read once)
            val = getattr(self, name)
            if isinstance(val, datetime):
                val = val.isoformat(timespec="seconds") + "Z"
            elif isinstance(val, date):
                val = val.isoformat()
            out[name] = val
        out["days"] = self.days
        out["total"] = self.total
        return out


_FIELDS = tuple(f.name for f in fields(Contract))

# The columns a new request does not set, as the table's defaults leave them (migrations 0005 and later).
_NEW: dict[str, Any] = {
    "id": 0, "state": "REQUESTED", "late_from": None, "extra_rent": 0, "extra_fee": 0, "late_fee": 0,
    "claim_kind": None, "claim_amount": None, "claim_note": None, "resolution_note": None, "ext_end_date": None,
    "ext_rent": None, "ext_fee": None, "owner_handed_at": None, "borrower_got_at": None, "return_declared_at": None,
    "handover_objected_at": None, "returned_at": None, "settled_at": None, "reminders": ""}


class DatesTaken(Conflict):
    """The dates overlap another hold; ``free`` lists the nearest free ranges of the same length."""

    def __init__(self, free: list[tuple[date, date]]) -> None:
        super().__init__("rental.dates_taken")
        self.free = free


def contract_id(raw: Any, code: str = "rental.not_found") -> int:
    """A contract (or item) id from untrusted input; anything else (``2039.5`` included: never rounded to an id
    that exists) is "not found"."""
    value = whole_number(raw)
    if value is None or not 0 < value < 2**62:
        raise NotFound(code)
    return value


def marks(values: Iterable[Any]) -> str:
    return ", ".join(["%s"] * len(list(values)))
