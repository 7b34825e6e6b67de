"""Rental contracts: the state machine of DESIGN §5, availability, the money rules and the escrow ledger.

Every change of a contract is one MariaDB transaction that locks the contract row, checks who may make the
change (owner / borrower / system / operator) and when, updates the row, writes an event row (the contract's
history) and the ledger rows and queued payouts that go with it. After the commit the new events are handed to
``on_event`` (the bot, which posts them in the deal room, once per event); an event whose announcement did not
happen (a crash, no bot in this process) is announced by the scheduler.

Dates are held from the request: an item's REQUESTED (until the owner answers or the request expires) and
ACCEPTED (until the payment window closes) contracts hold their dates, PAID / IN_USE / OVERDUE ones book them.
A new hold locks the item row first, so two overlapping holds on one item cannot both commit, whichever
gateway node they come from.

Money (integer KRW): the borrower pays rent + platform fee + deposit into the contract's escrow; at settlement
the escrow is split into the platform's fee, the owner's rent (+ late fees and claims, taken from the deposit)
and the borrower's refund, each owed amount paid out by a queued bank deposit transfer (``market.billipay``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter as CountOf
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pymysql

from market import validation as v
from market.billipay import BANK_REASONS, BilliPay, Outcome
from market.chat import Chat
from market.config import Config
from market.db import Database, Row
from market.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from market.kdates import seoul_today
from market.notifications import Notifications

log = logging.getLogger("billi.rentals")
PAYOUT_TRIES = 3  # a payout the bank refuses this often waits for an operator (billi payouts)
# An accepted contract whose payment may still land holds its dates past the payment window (else the dates
# could be given to someone else and the late payment would book them twice).
_PAYMENT_OPEN = ("(state = 'ACCEPTED' AND EXISTS (SELECT 1 FROM transfers t WHERE t.purpose = CONCAT('pay:', contracts.id)"
                 " AND t.state IN ('pending','sending','unknown','review')))")

# Which contract events notify whom (besides the deal-room message itself).
NOTIFY: dict[str, tuple[tuple[str, str], ...]] = {
    "requested": (("owner", "request_received"),),
    "accepted": (("borrower", "request_accepted"),),
    "declined": (("borrower", "request_declined"),),
    "paid": (("owner", "payment_received"),),
    "starts_tomorrow": (("owner", "starts_tomorrow"), ("borrower", "starts_tomorrow")),
    "due_today": (("borrower", "due_today"),),
    "overdue": (("borrower", "overdue"), ("owner", "overdue")),
    "still_overdue": (("borrower", "overdue"),),
    "returned": (("owner", "return_confirmed"), ("borrower", "return_confirmed")),
    "claimed": (("borrower", "claim_filed"),),
}
HOLDING = ("PAID", "IN_USE", "OVERDUE")          # booked
PENDING = ("REQUESTED", "ACCEPTED")              # held until expires_at
OPEN = (*PENDING, *HOLDING, "RETURNED", "CLAIMED", "DISPUTED")
FINAL = ("SETTLED", "DECLINED", "CANCELLED", "EXPIRED")
BUSY = (*HOLDING, "RETURNED", "CLAIMED", "DISPUTED")  # a deal room takes no new request while one is here
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

    @classmethod
    def from_row(cls, row: Row) -> Contract:
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    @property
    def total(self) -> int:
        """What the borrower pays at first: rent + fee + deposit."""
        return self.rent + self.fee + self.deposit

    def lateness(self, day: date) -> tuple[int, int]:
        """Days late on ``day`` and the late fee so far: the daily price per day, at most the deposit."""
        days = max(0, (day - self.end_date).days)
        return days, min(self.deposit, days * self.price_per_day)

    def role(self, user_id: int | None) -> str | None:
        if user_id == self.owner_id:
            return "owner"
        if user_id == self.borrower_id:
            return "borrower"
        return None

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        for k, val in out.items():
            if isinstance(val, datetime):
                out[k] = val.isoformat(timespec="seconds") + "Z"
            elif isinstance(val, date):
                out[k] = val.isoformat()
        out["days"] = self.days
        out["total"] = self.total
        return out


class DatesTaken(Conflict):
    """The dates overlap another hold; ``free`` lists the nearest free ranges of the same length."""

    def __init__(self, free: list[tuple[date, date]]) -> None:
        super().__init__("rental.dates_taken")
        self.free = free


EventHook = Callable[[dict[str, Any]], Awaitable[None]]


class Rentals:
    def __init__(self, db: Database, chat: Chat, pay: BilliPay | None, rules: Rules,
                 notifications: Notifications | None = None) -> None:
        self.db = db
        self.chat = chat
        self.pay = pay
        self.rules = rules
        self.notifications = notifications
        self.on_event: EventHook | None = None
        self._told: set[int] = set()  # people notified by transactions since the last ping
        self.job_failures: CountOf[str] = CountOf()  # scheduler rows (or whole jobs) that failed, by job

    # -- reading -----------------------------------------------------------------------------------
    async def get(self, contract_id: Any, user_id: int | None = None) -> Contract:
        """A contract; with ``user_id``, only for its parties (anyone else sees "not found")."""
        cid = _id(contract_id)
        row = await self.db.fetchone("SELECT * FROM contracts WHERE id = %s", (cid,))
        if row is None:
            raise NotFound("rental.not_found")
        c = Contract.from_row(row)
        if user_id is not None and c.role(user_id) is None:
            raise NotFound("rental.not_found")
        return c

    async def in_room(self, room_id: int, *, open_only: bool = True) -> Contract | None:
        """The room's latest (open) contract."""
        states = OPEN if open_only else (*OPEN, *FINAL)
        row = await self.db.fetchone(
            f"SELECT * FROM contracts WHERE room_id = %s AND state IN ({_marks(states)}) ORDER BY id DESC LIMIT 1",
            (room_id, *states))
        return None if row is None else Contract.from_row(row)

    async def mine(self, user_id: int, role: str = "borrower", limit: int = 50) -> list[Contract]:
        column = "borrower_id" if role == "borrower" else "owner_id"
        rows = await self.db.fetchall(f"SELECT * FROM contracts WHERE {column} = %s ORDER BY id DESC LIMIT %s",
                                      (user_id, limit))
        return [Contract.from_row(r) for r in rows]

    async def events(self, contract_id: int) -> list[dict[str, Any]]:
        rows = await self.db.fetchall("SELECT * FROM contract_events WHERE contract_id = %s ORDER BY id",
                                      (contract_id,))
        return [_event(r) for r in rows]

    async def photos(self, contract_id: int) -> list[dict[str, Any]]:
        rows = await self.db.fetchall("SELECT user_id, stage, object_key, created_at FROM contract_photos"
                                      " WHERE contract_id = %s ORDER BY id", (contract_id,))
        return [{"user_id": r["user_id"], "stage": r["stage"], "key": r["object_key"],
                 "at": r["created_at"].isoformat(timespec="seconds") + "Z"} for r in rows]

    def quote(self, price_per_day: int, deposit: int, start: date, end: date) -> dict[str, int]:
        days = (end - start).days + 1
        rent = price_per_day * days
        fee = self.rules.fee(rent)
        return {"days": days, "rent": rent, "fee": fee, "deposit": deposit, "total": rent + fee + deposit}

    # -- availability ------------------------------------------------------------------------------
    async def _taken(self, cur: Any, item_id: int, start: date, end: date, exclude: int = 0) -> bool:
        today = seoul_today()
        await cur.execute(
            "SELECT id FROM contracts WHERE item_id = %s AND id <> %s AND start_date <= %s"
            " AND (CASE WHEN state = 'OVERDUE' THEN GREATEST(end_date, %s) ELSE end_date END) >= %s"
            " AND (state IN ('PAID','IN_USE','OVERDUE') OR (state IN ('REQUESTED','ACCEPTED')"
            "      AND expires_at > NOW(3)) OR " + _PAYMENT_OPEN + ") LIMIT 1", (item_id, exclude, end, today, start))
        if await cur.fetchone() is not None:
            return True
        # an approved extension whose charge may still land holds its extra days too
        await cur.execute(
            "SELECT id FROM contracts WHERE item_id = %s AND id <> %s AND ext_end_date IS NOT NULL"
            " AND end_date < %s AND ext_end_date >= %s AND EXISTS (SELECT 1 FROM transfers t WHERE"
            " t.purpose = CONCAT('ext:', contracts.id) AND t.state IN ('pending','sending','unknown','review'))"
            " LIMIT 1", (item_id, exclude, end, start))
        return await cur.fetchone() is not None

    async def free_ranges(self, item_id: int, start: date, days: int, count: int = 3) -> list[tuple[date, date]]:
        """The free ranges of ``days`` days nearest to ``start`` (never in the past, within the item's dates)."""
        item = await self.db.fetchone("SELECT available_from, available_until FROM items WHERE id = %s", (item_id,))
        if item is None:
            return []
        today = seoul_today()
        rows = await self.db.fetchall(
            "SELECT start_date, (CASE WHEN state = 'OVERDUE' THEN GREATEST(end_date, %s) ELSE end_date END) AS e"
            " FROM contracts WHERE item_id = %s AND end_date >= %s"
            " AND (state IN ('PAID','IN_USE','OVERDUE') OR (state IN ('REQUESTED','ACCEPTED') AND expires_at > NOW(3))"
            " OR " + _PAYMENT_OPEN + ")",
            (today, item_id, today))
        busy = [(r["start_date"], r["e"]) for r in rows]
        lo = max(today, item["available_from"])
        hi = item["available_until"] or today + timedelta(days=MAX_FUTURE_DAYS)

        def free(s: date) -> bool:
            e = s + timedelta(days=days - 1)
            return s >= lo and e <= hi and not any(b0 <= e and b1 >= s for b0, b1 in busy)

        found: list[tuple[date, date]] = []
        for step in range(1, MAX_FUTURE_DAYS):
            for s in (start + timedelta(days=step), start - timedelta(days=step)):
                if free(s) and all(abs((s - f[0]).days) >= days for f in found):
                    found.append((s, s + timedelta(days=days - 1)))
            if len(found) >= count:
                break
        return sorted(found[:count])

    # -- request -----------------------------------------------------------------------------------
    async def request(self, borrower_id: int, item_id: Any, start: date, end: date) -> tuple[Contract, bool]:
        """A rental request; returns the contract and whether its deal room was just created."""
        iid = _id(item_id, "item.not_found")
        self._check_dates(start, end)
        item = await self.db.fetchone("SELECT id, owner_id, status, price_per_day, deposit, available_from,"
                                      " available_until FROM items WHERE id = %s", (iid,))
        if item is None or item["status"] in ("deleted", "hidden"):
            raise NotFound("item.not_found")
        if item["owner_id"] == borrower_id:
            raise Conflict("rental.own_item")
        if start < item["available_from"] or (item["available_until"] and end > item["available_until"]):
            until = item["available_until"]
            raise InvalidInput("rental.outside_availability", field="dates", start=item["available_from"].isoformat(),
                               end=until.isoformat() if until else "-")
        room, created = await self.chat.open_deal_room(iid, borrower_id)
        quote = self.quote(item["price_per_day"], item["deposit"], start, end)
        async with self.db.transaction() as cur:
            await cur.execute("SELECT id FROM items WHERE id = %s FOR UPDATE", (iid,))
            await cur.execute(
                "SELECT COUNT(*) AS n, SUM(item_id = %s) AS here FROM contracts WHERE borrower_id = %s"
                " AND state IN ('REQUESTED','ACCEPTED') AND expires_at > NOW(3)", (iid, borrower_id))
            mine = await cur.fetchone()
            if mine["here"]:
                raise Conflict("rental.already_requested")
            # One open contract per deal room: its photos and commands must name one contract.
            await cur.execute(f"SELECT 1 FROM contracts WHERE room_id = %s AND (state IN ({_marks(BUSY)}) OR"
                              f" {_PAYMENT_OPEN}) LIMIT 1", (room.id, *BUSY))
            if await cur.fetchone() is not None:
                raise Conflict("rental.room_busy")
            if mine["n"] >= self.rules.max_open_requests:
                raise Conflict("rental.too_many_requests", max=self.rules.max_open_requests)
            if await self._taken(cur, iid, start, end):
                taken = True
            else:
                taken = False
                await cur.execute(
                    "INSERT INTO contracts (item_id, owner_id, borrower_id, room_id, state, start_date, end_date,"
                    " price_per_day, deposit, rent, fee, expires_at) VALUES (%s, %s, %s, %s, 'REQUESTED', %s, %s, %s,"
                    " %s, %s, %s, NOW(3) + INTERVAL %s SECOND)",
                    (iid, item["owner_id"], borrower_id, room.id, start, end, item["price_per_day"], item["deposit"],
                     quote["rent"], quote["fee"], self.rules.request_ttl_s))
                cid = int(cur.lastrowid)
                await self._event(cur, cid, "requested", "borrower", borrower_id, None, "REQUESTED",
                                  {"days": quote["days"]})
                made = await self._lock(cur, cid)
        if taken:
            raise DatesTaken(await self.free_ranges(iid, start, quote["days"]))
        await self._flush(cid)
        return made, created

    def _check_dates(self, start: Any, end: Any) -> None:
        if not isinstance(start, date) or not isinstance(end, date):
            raise InvalidInput("rental.bad_dates", field="dates")
        today = seoul_today()
        if start < today:
            raise InvalidInput("rental.past_dates", field="dates")
        if end < start:
            raise InvalidInput("rental.reversed_dates", field="dates")
        if (end - start).days + 1 > self.rules.max_days:
            raise InvalidInput("rental.too_long", field="dates", max=self.rules.max_days)
        if start > today + timedelta(days=MAX_FUTURE_DAYS):
            raise InvalidInput("rental.too_far", field="dates")

    # -- the owner's answer ------------------------------------------------------------------------
    async def accept(self, owner_id: int, contract_id: Any) -> Contract:
        def check(c: Contract) -> None:
            _not_expired(c)
            _not_started(c)

        return await self._change(contract_id, owner_id, {"owner"}, ("REQUESTED",), "accepted", to="ACCEPTED",
                                  check=check,
                                  sql={"expires_at": ("NOW(3) + INTERVAL %s SECOND", self.rules.payment_window_s)})

    async def decline(self, owner_id: int, contract_id: Any) -> Contract:
        return await self._change(contract_id, owner_id, {"owner"}, ("REQUESTED",), "declined", to="DECLINED")

    # -- cancelling --------------------------------------------------------------------------------
    async def cancel(self, user_id: int, contract_id: Any) -> Contract:
        """The borrower withdraws (REQUESTED, ACCEPTED, or PAID before hand-over, by the refund rule); the owner
        cancels an accepted or paid rental (always a full refund)."""
        c = await self.get(contract_id, user_id)
        role = c.role(user_id)
        if c.state == "REQUESTED" and role == "owner":
            return await self.decline(user_id, c.id)

        def check(c: Contract) -> None:
            if c.state == "PAID" and (c.owner_handed_at or c.borrower_got_at):
                raise Conflict("rental.cancel_after_handover")

        async def money(cur: Any, before: Contract, after: Contract) -> dict[str, Any]:
            await self._no_transfer_in_flight(cur, before.id, "pay")
            if before.state != "PAID":
                return {}
            terms = self.cancel_terms(before, role or "")
            await self._split(cur, before, fees=int(terms["fee_part"]), owner=int(terms["owner_part"]),
                              borrower=int(terms["refund"]))
            return terms

        return await self._change(c.id, user_id, {"owner", "borrower"}, ("REQUESTED", "ACCEPTED", "PAID"),
                                  "cancelled", to="CANCELLED", check=check, money=money, actor_role=role)

    def _free_cancel(self, c: Contract) -> bool:
        start = datetime.combine(c.start_date, datetime.min.time()) - timedelta(hours=9)  # 00:00 in Seoul, in UTC
        return datetime.now(UTC).replace(tzinfo=None) <= start - timedelta(seconds=self.rules.free_cancel_s)

    def cancel_terms(self, c: Contract, role: str) -> dict[str, int | bool]:
        """What cancelling now would mean, for the confirmation the bot shows."""
        if c.state != "PAID":
            return {"refund": 0, "owner_part": 0, "fee_part": 0, "free": True}
        free = role == "owner" or self._free_cancel(c)
        owner_part = 0 if free else c.rent * self.rules.late_cancel_percent // 100
        fee_part = 0 if free else c.fee
        return {"refund": c.total - owner_part - fee_part, "owner_part": owner_part, "fee_part": fee_part,
                "free": free}

    # -- paying ------------------------------------------------------------------------------------
    async def pay_now(self, borrower_id: int, contract_id: Any, *, confirm: str | None = None) -> Contract:
        """Withdraw rent + fee + deposit from the borrower's linked account. A refusal leaves the contract
        ACCEPTED (raises with the bank's reason); a lost answer is settled by inquiry before anything else.
        An account never paid with before is charged only with ``confirm`` — the ``check`` of the account the
        borrower was shown (``BilliPay.first_use``) — else ``pay.confirm_link`` asks for it first."""
        pay = self._billipay()
        c = await self.get(contract_id, borrower_id)
        if c.role(borrower_id) != "borrower":
            raise Forbidden("rental.only_borrower")
        if await pay.account(borrower_id) is None:
            raise NotFound("pay.no_link")
        async with self.db.transaction() as cur:
            c = await self._lock(cur, c.id)
            if c.state in (*HOLDING, "RETURNED", "CLAIMED", "DISPUTED", "SETTLED"):
                raise Conflict("rental.already_paid")
            if c.state != "ACCEPTED":
                raise Conflict("rental.wrong_state", state=c.state)
            _not_expired(c)
            _not_started(c)
            await self._no_transfer_in_flight(cur, c.id, "pay")
            await pay.confirm_first_use(cur, borrower_id, confirm)
            tid = await pay.open_transfer(cur, purpose=f"pay:{c.id}", contract_id=c.id, user_id=borrower_id,
                                          direction="withdraw", amount=c.total, state="pending")
        outcome = await pay.send(tid, self._on_done, self._on_failed)
        if outcome.state == "unknown":
            outcome = await pay.inquire(tid, self._on_done, self._on_failed)
        await self._flush(c.id)
        self._raise_for(outcome)
        return await self.get(c.id)

    def _raise_for(self, outcome: Outcome) -> None:
        if outcome.state == "failed":
            raise Conflict(outcome.reason or "pay.declined")
        if outcome.state in ("pending", "sending", "unknown", "review"):
            raise Unavailable("pay.unknown")

    async def _no_transfer_in_flight(self, cur: Any, contract_id: int, kind: str) -> None:
        await cur.execute("SELECT state FROM transfers WHERE purpose = %s AND state IN ('pending','sending','unknown',"
                          "'review','done')", (f"{kind}:{contract_id}",))
        states = {r["state"] for r in await cur.fetchall()}
        if states & {"pending", "sending", "unknown", "review"}:  # never a second payment while one may land
            raise Conflict("pay.in_progress")
        if "done" in states and kind == "pay":
            await cur.execute("SELECT state FROM contracts WHERE id = %s", (contract_id,))
            if (await cur.fetchone())["state"] == "ACCEPTED":
                raise Conflict("pay.in_progress")

    def _billipay(self) -> BilliPay:
        if self.pay is None:
            raise Unavailable("pay.not_configured")
        return self.pay

    async def _on_done(self, cur: Any, t: Row) -> None:
        kind, cid = _transfer_kind(t)
        if t["direction"] == "deposit":  # a payout or refund reached the person's bank
            await _move(cur, f"t{t['id']}", cid, f"payable:{t['user_id']}", f"bank:{t['user_id']}", t["amount"],
                        kind)
            c = await self._lock(cur, cid)
            await self._event(cur, cid, "paid_out", "system", None, c.state, c.state,
                              {"to": c.role(t["user_id"]), "amount": int(t["amount"]), "purpose": kind})
            return
        c = await self._lock(cur, cid)
        await _move(cur, f"t{t['id']}", cid, f"bank:{c.borrower_id}", f"escrow:{cid}", t["amount"], kind)
        if kind == "pay" and c.state == "ACCEPTED":
            # The payment may land long after it was made (a bank that answers late): the booking stands only
            # if the rental has not started and its dates are still free; else everything goes back.
            refused = ("rental.started" if c.start_date < seoul_today() else
                       "rental.dates_taken" if await self._taken(cur, c.item_id, c.start_date, c.end_date, exclude=cid)
                       else None)
            if refused is None:
                await cur.execute("UPDATE contracts SET state = 'PAID', expires_at = NULL WHERE id = %s", (cid,))
                await self._event(cur, cid, "paid", "borrower", c.borrower_id, "ACCEPTED", "PAID",
                                  {"amount": int(t["amount"])})
                return
            await cur.execute("UPDATE contracts SET state = 'EXPIRED' WHERE id = %s", (cid,))
            await self._refund_landed(cur, c, t, "EXPIRED", refused)
            return
        if kind == "ext":
            # What the charge pays for travels with it: the end date, rent and fee the owner approved.
            paid = json.loads(t.get("pays_for") or "null") or {
                "end_date": c.ext_end_date.isoformat() if c.ext_end_date else None, "rent": c.ext_rent, "fee": c.ext_fee}
            end = date.fromisoformat(paid["end_date"]) if paid.get("end_date") else None
            applies = (end is not None and c.state in ("IN_USE", "OVERDUE", "RETURNED") and end > c.end_date
                       and int(t["amount"]) == int(paid["rent"] or 0) + int(paid["fee"] or 0)
                       and not await self._taken(cur, c.item_id, c.end_date + timedelta(days=1), end, exclude=cid))
            if applies:
                assert end is not None
                today = seoul_today()
                extended = Contract.from_row({**asdict(c), "end_date": end})
                late_fee = c.late_fee
                if c.state == "RETURNED":  # returned meanwhile: the late fees for the days it pays for go
                    late_fee = extended.lateness(_seoul_day(c.return_declared_at or c.returned_at))[1]
                    to = "RETURNED"
                else:
                    to = "IN_USE" if end >= today else "OVERDUE"
                await cur.execute(
                    "UPDATE contracts SET state = %s, end_date = %s, extra_rent = extra_rent + %s, extra_fee ="
                    " extra_fee + %s, late_fee = %s, ext_end_date = NULL, ext_rent = NULL, ext_fee = NULL,"
                    " reminders = '', overdue_reminded_on = NULL WHERE id = %s",
                    (to, end, int(paid["rent"]), int(paid["fee"]), late_fee, cid))
                await self._event(cur, cid, "extended", "owner", c.owner_id, c.state, to,
                                  {"end_date": end.isoformat(), "amount": int(t["amount"]),
                                   "late_fee_removed": c.late_fee - late_fee})
                return
            if c.ext_end_date is not None and end == c.ext_end_date:
                await cur.execute("UPDATE contracts SET ext_end_date = NULL, ext_rent = NULL, ext_fee = NULL"
                                  " WHERE id = %s", (cid,))
        # the money came after the contract moved on (it expired, was cancelled, settled): give it all back
        await self._refund_landed(cur, c, t, c.state, "late")

    async def _refund_landed(self, cur: Any, c: Contract, t: Row, to: str, reason: str) -> None:
        """A withdrawal that landed when it could no longer buy what it was for: all of it back to the borrower,
        as a payout of its own (its tries and an operator's retry never mix with the deposit refund)."""
        await _move(cur, f"t{t['id']}:back", c.id, f"escrow:{c.id}", f"payable:{c.borrower_id}", t["amount"],
                    "refund")
        await self._queue_payout(cur, c.id, c.borrower_id, int(t["amount"]), "refund", tag=f"t{t['id']}")
        await self._event(cur, c.id, "late_payment_refunded", "system", None, c.state, to,
                          {"amount": int(t["amount"]), "reason": reason, "kind": _transfer_kind(t)[0]})

    async def _on_failed(self, cur: Any, t: Row) -> None:
        kind, cid = _transfer_kind(t)
        c = await self._lock(cur, cid)
        reason = _reason_of(t)
        if t["direction"] == "deposit":
            await cur.execute("SELECT COUNT(*) AS n FROM transfers WHERE purpose = %s", (t["purpose"],))
            tries = (await cur.fetchone())["n"]
            if tries < PAYOUT_TRIES:  # the same payout again (same purpose), with a new bank_tran_id
                await self._billipay().open_transfer(cur, purpose=t["purpose"], contract_id=cid,
                                                     user_id=int(t["user_id"]), direction="deposit",
                                                     amount=int(t["amount"]), state="pending")
            else:
                log.warning("payout %s for contract %s failed %d times; left for an operator", kind, cid, tries)
            return
        if kind == "ext":
            await cur.execute("UPDATE contracts SET ext_end_date = NULL, ext_rent = NULL, ext_fee = NULL"
                              " WHERE id = %s", (cid,))
            await self._event(cur, cid, "extension_failed", "system", None, c.state, c.state, {"reason": reason})
        else:
            await self._event(cur, cid, "payment_failed", "system", None, c.state, c.state, {"reason": reason})

    async def _queue_payout(self, cur: Any, cid: int, user_id: int, amount: int, kind: str, tag: str = "") -> None:
        """One payout (a purpose of its own: ``kind:contract:person[:tag]``) queued for sending."""
        if amount > 0:
            purpose = f"{kind}:{cid}:{user_id}" + (f":{tag}" if tag else "")
            await self._billipay().open_transfer(cur, purpose=purpose, contract_id=cid,
                                                 user_id=user_id, direction="deposit", amount=amount, state="pending")

    async def _split(self, cur: Any, c: Contract, *, fees: int, owner: int, borrower: int) -> None:
        """Empty the contract's escrow: the fee to the platform, the rest owed to the owner and the borrower
        (and queued as bank deposits). The three parts must add up to exactly what the escrow holds."""
        await cur.execute("SELECT COALESCE(SUM(amount), 0) AS held FROM ledger WHERE account = %s",
                          (f"escrow:{c.id}",))
        held = int((await cur.fetchone())["held"])
        if min(fees, owner, borrower) < 0 or fees + owner + borrower != held:
            raise RuntimeError(f"contract {c.id}: split {fees}+{owner}+{borrower} != escrow {held}")
        await _move(cur, f"c{c.id}:fee", c.id, f"escrow:{c.id}", "fees", fees, "fee")
        await _move(cur, f"c{c.id}:owner", c.id, f"escrow:{c.id}", f"payable:{c.owner_id}", owner, "owner")
        await _move(cur, f"c{c.id}:borrower", c.id, f"escrow:{c.id}", f"payable:{c.borrower_id}", borrower, "refund")
        await self._queue_payout(cur, c.id, c.owner_id, owner, "payout")
        await self._queue_payout(cur, c.id, c.borrower_id, borrower, "refund")

    async def _settle_money(self, cur: Any, c: Contract, claim: int) -> dict[str, int]:
        await cur.execute("SELECT 1 FROM ledger WHERE movement = %s LIMIT 1", (f"c{c.id}:rent",))
        undisputed = await cur.fetchone() is None  # else paid when the claim opened
        owner = (c.rent + c.extra_rent + c.late_fee if undisputed else 0) + claim
        borrower = c.deposit - c.late_fee - claim
        fees = c.fee + c.extra_fee if undisputed else 0
        await self._split(cur, c, fees=fees, owner=owner, borrower=borrower)
        return {"owner": c.rent + c.extra_rent + c.late_fee + claim, "borrower": borrower,
                "fees": c.fee + c.extra_fee, "late_fee": c.late_fee, "claim": claim}

    # -- hand-over, return -------------------------------------------------------------------------
    async def hand_over(self, user_id: int, contract_id: Any) -> Contract:
        """The owner's "전달 완료" or the borrower's "수령 완료"; with both, the rental is IN_USE."""
        c = await self.get(contract_id, user_id)
        role = c.role(user_id)
        column = "owner_handed_at" if role == "owner" else "borrower_got_at"

        def check(c: Contract) -> None:
            if getattr(c, column) is not None:
                raise Conflict("rental.already_confirmed")

        def both(c: Contract) -> bool:
            return (c.borrower_got_at if role == "owner" else c.owner_handed_at) is not None

        return await self._change(c.id, user_id, {"owner", "borrower"}, ("PAID",),
                                  lambda c: "in_use" if both(c) else ("handed" if role == "owner" else "received"),
                                  to=lambda c: "IN_USE" if both(c) else None, check=check,
                                  sql={column: ("NOW(3)",)}, actor_role=role)

    async def object_handover(self, user_id: int, contract_id: Any) -> Contract:
        """"아직 못 받았어요": the other side's one-sided hand-over confirmation is withdrawn (so it never becomes
        both after a day), both are told, and the no-show clock counts again from now."""
        c = await self.get(contract_id, user_id)
        role = c.role(user_id)
        theirs = "owner_handed_at" if role == "borrower" else "borrower_got_at"

        def check(c: Contract) -> None:
            if getattr(c, theirs) is None or (c.borrower_got_at if role == "borrower" else c.owner_handed_at):
                raise Conflict("rental.nothing_to_object")

        return await self._change(c.id, user_id, {"owner", "borrower"}, ("PAID",), "handover_objected", check=check,
                                  sql={theirs: ("NULL",), "handover_objected_at": ("NOW(3)",)},
                                  data={"by": role}, actor_role=role)

    async def mark_returned(self, user_id: int, contract_id: Any) -> Contract:
        """"반납 완료" from the borrower declares the return (the owner is asked); "반납 받음" from the owner
        confirms it: the item is back."""
        c = await self.get(contract_id, user_id)
        if c.role(user_id) == "owner":
            return await self.confirm_return(user_id, c.id)
        return await self.declare_return(user_id, c.id)

    async def declare_return(self, borrower_id: int, contract_id: Any) -> Contract:
        """The borrower says the item is back: the time is kept (late fees stop there once the owner confirms)
        and the owner is asked. Nothing else changes until the owner confirms, objects, or stays silent for
        ``return_confirm_s``."""
        def check(c: Contract) -> None:
            if c.return_declared_at is not None:
                raise Conflict("rental.return_declared")

        c = await self.get(contract_id, borrower_id)
        late_days, late = c.lateness(seoul_today())
        return await self._change(c.id, borrower_id, {"borrower"}, ("IN_USE", "OVERDUE"), "return_declared",
                                  check=check, sql={"return_declared_at": ("NOW(3)",)},
                                  data={"late_days": late_days, "late_fee": late,
                                        "confirm_h": self.rules.return_confirm_s // 3600})

    async def confirm_return(self, owner_id: int | None, contract_id: Any, *, automatic: bool = False) -> Contract:
        """The owner's "반납 받음" (or, ``automatic``, their silence after a declared return): RETURNED, with the
        late fees counted to the day the borrower declared the return (else today); the inspection window
        starts now."""
        async def money(cur: Any, before: Contract, after: Contract) -> dict[str, Any]:
            # (an extension charge still in flight that lands later moves the end date and takes back the late
            # fees for the days it pays for; settling waits for it)
            days, late = before.lateness(_seoul_day(before.return_declared_at))
            await cur.execute("UPDATE contracts SET late_fee = %s WHERE id = %s", (late, before.id))
            return {"late_days": days, "late_fee": late, "declared": before.return_declared_at is not None}

        extra: dict[str, Any] = {"automatic": True} if automatic else {}
        return await self._change(contract_id, owner_id, {"system"} if automatic else {"owner"},
                                  ("IN_USE", "OVERDUE"), "returned", to="RETURNED", money=money,
                                  sql={"returned_at": ("NOW(3)",)}, data=extra,
                                  actor_role="system" if automatic else None,
                                  guard_sql=("return_declared_at <= NOW(3) - INTERVAL %s SECOND" if automatic else None),
                                  guard_args=(self.rules.return_confirm_s,) if automatic else ())

    async def object_return(self, owner_id: int, contract_id: Any) -> Contract:
        """The owner's "아직 못 받았어요": the declared return is withdrawn, the rental runs on (late fees too)
        and the borrower is told."""
        def check(c: Contract) -> None:
            if c.return_declared_at is None:
                raise Conflict("rental.nothing_to_object")

        return await self._change(contract_id, owner_id, {"owner"}, ("IN_USE", "OVERDUE"), "return_objected",
                                  check=check, sql={"return_declared_at": ("NULL",)})

    async def confirm_ok(self, owner_id: int, contract_id: Any) -> Contract:
        """The owner's "정상 반납": settle now, deposit back minus late fees."""
        async def money(cur: Any, before: Contract, after: Contract) -> dict[str, Any]:
            await self._no_transfer_in_flight(cur, before.id, "ext")
            return await self._settle_money(cur, before, 0)

        return await self._change(contract_id, owner_id, {"owner"}, ("RETURNED",), "settled", to="SETTLED",
                                  money=money, sql={"settled_at": ("NOW(3)",)})

    def claim_limit(self, c: Contract) -> int:
        return c.deposit - c.late_fee

    async def claim(self, owner_id: int, contract_id: Any, amount: Any, note: Any) -> Contract:
        """The owner's damage claim: 1 won to (deposit − late fees), within the inspection window. The rent (and
        late fees) nobody disputes go to the owner now."""
        c = await self.get(contract_id, owner_id)
        limit = self.claim_limit(c)
        if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= max(limit, 1):
            raise InvalidInput("rental.bad_claim", field="amount", max=limit)
        text = v.text({"note": note}, "note", max_len=MAX_NOTE, multiline=True, required=False, default="") or ""
        window = self.rules.claim_window_s

        def check(c: Contract) -> None:
            if c.returned_at and datetime.now(UTC).replace(tzinfo=None) > c.returned_at + timedelta(seconds=window):
                raise Conflict("rental.claim_window_closed", hours=self.rules.claim_window_s // 3600)
            if amount > self.claim_limit(c):
                raise InvalidInput("rental.bad_claim", field="amount", max=self.claim_limit(c))

        async def money(cur: Any, before: Contract, after: Contract) -> dict[str, Any]:
            await self._no_transfer_in_flight(cur, before.id, "ext")
            return await self._pay_undisputed(cur, after)

        await self.db.execute("UPDATE contract_photos SET stage = 'claim' WHERE contract_id = %s AND user_id = %s"
                              " AND stage = 'return'", (c.id, owner_id))
        return await self._change(c.id, owner_id, {"owner"}, ("RETURNED",), "claimed", to="CLAIMED", check=check,
                                  money=money, sql={"claim_kind": ("'damage'",), "claim_amount": ("%s", amount),
                                                    "claim_note": ("%s", text)},
                                  data={"amount": amount, "note": text, "claim_kind": "damage"})

    async def report_lost(self, owner_id: int | None, contract_id: Any, *, automatic: bool = False) -> Contract:
        """The owner's "분실" (or, ``automatic``, a rental overdue ``lost_after_days`` with no return declared): a
        claim for the whole deposit (late fees so far included), which the borrower accepts or disputes like a
        damage claim. The rent nobody disputes goes to the owner now."""
        today = seoul_today()

        async def money(cur: Any, before: Contract, after: Contract) -> dict[str, Any]:
            await self._no_transfer_in_flight(cur, before.id, "ext")
            days, late = before.lateness(today)
            await cur.execute("UPDATE contracts SET late_fee = %s, claim_amount = deposit - %s WHERE id = %s",
                              (late, late, before.id))
            paid = await self._pay_undisputed(cur, await self._lock(cur, before.id))
            return {**paid, "amount": before.deposit - late, "deposit": before.deposit, "late_days": days,
                    "late_fee": late}

        cutoff = today - timedelta(days=self.rules.lost_after_days)
        return await self._change(
            contract_id, owner_id, {"system"} if automatic else {"owner"}, ("IN_USE", "OVERDUE"), "claimed",
            to="CLAIMED", money=money, actor_role="system" if automatic else None,
            sql={"claim_kind": ("'lost'",), "claim_note": ("''",), "return_declared_at": ("NULL",)},
            data={"claim_kind": "lost", "note": "", **({"automatic": True} if automatic else {})},
            guard_sql="end_date < %s AND return_declared_at IS NULL" if automatic else None,
            guard_args=(cutoff,) if automatic else ())

    async def _pay_undisputed(self, cur: Any, c: Contract) -> dict[str, Any]:
        """When a claim opens, what nobody disputes — the rent (and extension rent and late fees) to the owner,
        the fee to the platform — leaves the escrow at once; the deposit less the late fees stays for the
        claim."""
        owner = c.rent + c.extra_rent + c.late_fee
        await _move(cur, f"c{c.id}:rent", c.id, f"escrow:{c.id}", f"payable:{c.owner_id}", owner, "owner")
        await _move(cur, f"c{c.id}:fee0", c.id, f"escrow:{c.id}", "fees", c.fee + c.extra_fee, "fee")
        await self._queue_payout(cur, c.id, c.owner_id, owner, "payout", tag="rent")
        return {"rent_paid": owner}

    async def accept_claim(self, borrower_id: int, contract_id: Any) -> Contract:
        async def money(cur: Any, before: Contract, after: Contract) -> dict[str, Any]:
            return await self._settle_money(cur, before, before.claim_amount or 0)

        return await self._change(contract_id, borrower_id, {"borrower"}, ("CLAIMED",), "claim_accepted",
                                  to="SETTLED", money=money, sql={"settled_at": ("NOW(3)",)})

    async def dispute(self, borrower_id: int, contract_id: Any, note: Any = "") -> Contract:
        text = v.text({"note": note}, "note", max_len=MAX_NOTE, multiline=True, required=False, default="") or ""
        return await self._change(contract_id, borrower_id, {"borrower"}, ("CLAIMED",), "disputed", to="DISPUTED",
                                  data={"note": text})

    async def resolve(self, contract_id: Any, amount: Any, note: Any = "") -> Contract:
        """An operator's decision on a disputed claim: the owner gets ``amount`` (0 … the claim) of the deposit."""
        c = await self.get(contract_id)
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= (c.claim_amount or 0):
            raise InvalidInput("rental.bad_resolution", field="amount", max=c.claim_amount or 0)
        text = v.text({"note": note}, "note", max_len=MAX_NOTE, multiline=True, required=False, default="") or ""

        async def money(cur: Any, before: Contract, after: Contract) -> dict[str, Any]:
            return await self._settle_money(cur, before, amount)

        return await self._change(c.id, None, {"operator"}, ("DISPUTED",), "resolved", to="SETTLED", money=money,
                                  sql={"claim_amount": ("%s", amount), "resolution_note": ("%s", text),
                                       "settled_at": ("NOW(3)",)},
                                  data={"amount": amount, "note": text}, actor_role="operator")

    async def disputes(self) -> list[Contract]:
        rows = await self.db.fetchall("SELECT * FROM contracts WHERE state = 'DISPUTED' ORDER BY updated_at")
        return [Contract.from_row(r) for r in rows]

    # -- extensions --------------------------------------------------------------------------------
    async def request_extension(self, borrower_id: int, contract_id: Any, new_end: Any) -> Contract:
        c = await self.get(contract_id, borrower_id)
        if not isinstance(new_end, date):
            raise InvalidInput("rental.bad_dates", field="dates")
        if new_end <= c.end_date or new_end < seoul_today():
            raise InvalidInput("rental.extension_not_later", field="dates")
        if (new_end - c.start_date).days + 1 > self.rules.max_days:
            raise InvalidInput("rental.too_long", field="dates", max=self.rules.max_days)
        extra_days = (new_end - c.end_date).days
        rent = extra_days * c.price_per_day
        fee = self.rules.fee(rent)

        def check(c: Contract) -> None:
            if c.ext_end_date is not None:
                raise Conflict("rental.extension_pending")
            if c.return_declared_at is not None:
                raise Conflict("rental.return_declared")

        async with self.db.transaction() as cur:
            await cur.execute("SELECT id FROM items WHERE id = %s FOR UPDATE", (c.item_id,))
            if await self._taken(cur, c.item_id, c.end_date + timedelta(days=1), new_end, exclude=c.id):
                raise Conflict("rental.extension_taken")
        return await self._change(c.id, borrower_id, {"borrower"}, ("IN_USE", "OVERDUE"), "extension_requested",
                                  check=check, money=self._no_ext_in_flight,
                                  sql={"ext_end_date": ("%s", new_end), "ext_rent": ("%s", rent),
                                                    "ext_fee": ("%s", fee)},
                                  data={"end_date": new_end.isoformat(), "days": extra_days, "rent": rent, "fee": fee})

    async def decline_extension(self, owner_id: int, contract_id: Any) -> Contract:
        def check(c: Contract) -> None:
            if c.ext_end_date is None:
                raise Conflict("rental.no_extension")

        return await self._change(contract_id, owner_id, {"owner"}, ("IN_USE", "OVERDUE"), "extension_declined",
                                  check=check, money=self._no_ext_in_flight,
                                  sql={"ext_end_date": ("NULL",), "ext_rent": ("NULL",), "ext_fee": ("NULL",)})

    async def _no_ext_in_flight(self, cur: Any, before: Contract, after: Contract) -> dict[str, Any]:
        """An extension does not change while the charge for it may still land (its amounts must stay those
        the charge pays for)."""
        await self._no_transfer_in_flight(cur, before.id, "ext")
        return {}

    async def approve_extension(self, owner_id: int, contract_id: Any) -> Contract:
        """The owner approves; the extra rent (+ fee) is withdrawn from the borrower at once."""
        pay = self._billipay()
        c = await self.get(contract_id, owner_id)
        if c.role(owner_id) != "owner":
            raise Forbidden("rental.only_owner")
        async with self.db.transaction() as cur:
            await cur.execute("SELECT id FROM items WHERE id = %s FOR UPDATE", (c.item_id,))
            c = await self._lock(cur, c.id)
            if c.state not in ("IN_USE", "OVERDUE"):
                raise Conflict("rental.wrong_state", state=c.state)
            if c.ext_end_date is None or c.ext_rent is None or c.ext_fee is None:
                raise Conflict("rental.no_extension")
            await self._no_transfer_in_flight(cur, c.id, "ext")
            if await self._taken(cur, c.item_id, c.end_date + timedelta(days=1), c.ext_end_date, exclude=c.id):
                raise Conflict("rental.extension_taken")
            try:  # a newly linked account is confirmed by its owner before it is charged (the link row is locked)
                await pay.confirm_first_use(cur, c.borrower_id, None)
            except (NotFound, Conflict) as e:
                if e.code == "pay.confirm_link":
                    raise
                # no usable link: the transfer fails with that reason, told to both, as any refusal
            tid = await pay.open_transfer(cur, purpose=f"ext:{c.id}", contract_id=c.id, user_id=c.borrower_id,
                                          direction="withdraw", amount=c.ext_rent + c.ext_fee, state="pending",
                                          pays_for={"end_date": c.ext_end_date.isoformat(), "rent": c.ext_rent,
                                                    "fee": c.ext_fee})
        outcome = await pay.send(tid, self._on_done, self._on_failed)
        if outcome.state == "unknown":
            outcome = await pay.inquire(tid, self._on_done, self._on_failed)
        await self._flush(c.id)
        self._raise_for(outcome)
        return await self.get(c.id)

    # -- evidence ----------------------------------------------------------------------------------
    async def add_photo(self, room_id: int, user_id: int, key: str) -> Contract | None:
        """A party's photo in the deal room while the item changes hands (or comes back) is kept as evidence."""
        c = await self.in_room(room_id)
        if c is None or c.role(user_id) is None or c.state not in ("PAID", "IN_USE", "OVERDUE", "RETURNED"):
            return None
        stage = {"PAID": "handover", "RETURNED": "return"}.get(c.state, "in_use")
        await self.db.execute("INSERT IGNORE INTO contract_photos (contract_id, user_id, stage, object_key)"
                              " VALUES (%s, %s, %s, %s)", (c.id, user_id, stage, key[:255]))
        return c

    # -- the scheduler's work ----------------------------------------------------------------------
    async def tick(self) -> dict[str, int]:
        """One round of time-driven work; safe to run on several nodes at once (every change is guarded).

        Each job runs on its own, the money jobs first, and within a job each row on its own: a row that fails
        unexpectedly is logged with its traceback, counted (``job_failures``, shown in /metrics) and passed
        over, so one bad contract never holds up anyone else's settlement, refund or reminder."""
        today = seoul_today()
        jobs: list[tuple[str, Callable[[date], Awaitable[int]]]] = [
            ("settle", self._job_settle), ("transfers", self._job_transfers), ("no_show", self._job_no_show),
            ("claim_unanswered", self._job_claim_unanswered), ("handover", self._job_handover),
            ("return_unanswered", self._job_return_unanswered), ("lost", self._job_lost),
            ("expire", self._job_expire), ("overdue", self._job_overdue), ("remind", self._job_remind),
            ("announce", self._job_announce)]
        done: dict[str, int] = {}
        for name, job in jobs:
            try:
                done[name] = await job(today)
            except Exception:  # noqa: BLE001 — the job's own query failed: the next job still runs
                log.exception("scheduler job %s failed; the other jobs go on", name)
                self.job_failures[name] += 1
                done[name] = 0
        return {"settled": done["settle"], "transfers": done["transfers"], "expired": done["expire"],
                "overdue": done["overdue"], "reminded": done["remind"], "announced": done["announce"]}

    async def _job_settle(self, today: date) -> int:
        rows = await self.db.fetchall(
            "SELECT id FROM contracts WHERE state = 'RETURNED' AND returned_at <= NOW(3) - INTERVAL %s SECOND"
            " ORDER BY id LIMIT 500", (self.rules.claim_window_s,))
        return sum([await self._row("settle", r["id"], self._auto_settle(r["id"])) for r in rows])

    async def _job_no_show(self, today: date) -> int:
        """A paid rental that neither side handed over N hours after its start day began (00:00 Seoul) or after
        it was paid, whichever is later: cancelled, and everything (rent, fee, deposit) refunded — an owner's
        no-show costs the borrower nothing."""
        due = ("state = 'PAID' AND owner_handed_at IS NULL AND borrower_got_at IS NULL AND GREATEST("
               "TIMESTAMP(start_date) - INTERVAL 9 HOUR, (SELECT MAX(e.created_at) FROM contract_events e WHERE"
               " e.contract_id = contracts.id AND e.kind = 'paid'), COALESCE(handover_objected_at, '2000-01-01'))"
               " + INTERVAL %s SECOND <= NOW(3)")

        async def refund_all(cur: Any, before: Contract, after: Contract) -> dict[str, Any]:
            await self._split(cur, before, fees=0, owner=0, borrower=before.total)
            return {"refund": before.total}

        rows = await self.db.fetchall(f"SELECT id FROM contracts WHERE {due} ORDER BY id LIMIT 500",
                                      (self.rules.no_show_s,))
        return sum([await self._row("no_show", r["id"], self._change(
            r["id"], None, {"system"}, ("PAID",), "no_show", to="CANCELLED", actor_role="system", money=refund_all,
            guard_sql=due, guard_args=(self.rules.no_show_s,))) for r in rows])

    async def _job_handover(self, today: date) -> int:
        """One side confirmed the hand-over a day ago (counted from the start day at the earliest) and the other
        said nothing: it counts as both."""
        start = "TIMESTAMP(start_date) - INTERVAL 9 HOUR"  # the start day's 00:00 in Seoul, in UTC
        due = (f"state = 'PAID' AND ((GREATEST(owner_handed_at, {start}) <= NOW(3) - INTERVAL 1 DAY"
               f" AND borrower_got_at IS NULL) OR (GREATEST(borrower_got_at, {start}) <= NOW(3) - INTERVAL 1 DAY"
               " AND owner_handed_at IS NULL))")
        rows = await self.db.fetchall(f"SELECT id FROM contracts WHERE {due} ORDER BY id LIMIT 500")
        return sum([await self._row("handover", r["id"], self._change(
            r["id"], None, {"system"}, ("PAID",), "in_use", to="IN_USE", actor_role="system", guard_sql=due,
            sql={"owner_handed_at": ("COALESCE(owner_handed_at, NOW(3))",),
                 "borrower_got_at": ("COALESCE(borrower_got_at, NOW(3))",)})) for r in rows])

    async def _job_return_unanswered(self, today: date) -> int:
        """A return the borrower declared that the owner neither confirmed nor objected to: confirmed."""
        rows = await self.db.fetchall(
            "SELECT id FROM contracts WHERE state IN ('IN_USE','OVERDUE') AND return_declared_at <= NOW(3) -"
            " INTERVAL %s SECOND ORDER BY id LIMIT 500", (self.rules.return_confirm_s,))
        return sum([await self._row("return_unanswered", r["id"], self.confirm_return(None, r["id"], automatic=True))
                    for r in rows])

    async def _job_lost(self, today: date) -> int:
        """Overdue ``lost_after_days`` days and no return declared: a 분실 claim for the deposit."""
        rows = await self.db.fetchall(
            "SELECT id FROM contracts WHERE state IN ('IN_USE','OVERDUE') AND end_date < %s AND return_declared_at IS"
            " NULL ORDER BY id LIMIT 500", (today - timedelta(days=self.rules.lost_after_days),))
        return sum([await self._row("lost", r["id"], self.report_lost(None, r["id"], automatic=True)) for r in rows])

    async def _job_claim_unanswered(self, today: date) -> int:
        """A claim the borrower neither accepted nor disputed within the window goes to an operator (never
        silently accepted)."""
        due = ("state = 'CLAIMED' AND (SELECT MAX(e.created_at) FROM contract_events e WHERE e.contract_id ="
               " contracts.id AND e.kind = 'claimed') <= NOW(3) - INTERVAL %s SECOND")
        rows = await self.db.fetchall(f"SELECT id FROM contracts WHERE {due} ORDER BY id LIMIT 500",
                                      (self.rules.claim_window_s,))
        return sum([await self._row("claim_unanswered", r["id"], self._change(
            r["id"], None, {"system"}, ("CLAIMED",), "disputed", to="DISPUTED", actor_role="system",
            guard_sql=due, guard_args=(self.rules.claim_window_s,), data={"note": "", "unanswered": True}))
            for r in rows])

    async def _job_transfers(self, today: date) -> int:
        return await self.process_transfers() if self.pay is not None else 0

    async def _job_expire(self, today: date) -> int:
        rows = await self.db.fetchall("SELECT id FROM contracts WHERE state IN ('REQUESTED','ACCEPTED')"
                                      " AND expires_at <= NOW(3) ORDER BY id LIMIT 500")
        return sum([await self._row("expire", r["id"], self._expire(r["id"])) for r in rows])

    async def _job_overdue(self, today: date) -> int:
        rows = await self.db.fetchall("SELECT id FROM contracts WHERE state = 'IN_USE' AND end_date < %s"
                                      " ORDER BY id LIMIT 500", (today,))
        return sum([await self._row("overdue", r["id"], self._change(
            r["id"], None, {"system"}, ("IN_USE",), "overdue", to="OVERDUE", actor_role="system",
            guard_sql="end_date < %s", guard_args=(today,))) for r in rows])

    async def _job_remind(self, today: date) -> int:
        n = 0
        once = [("PAID", "start_date = %s", today + timedelta(days=1), "starts_tomorrow"),
                ("IN_USE", "end_date = %s", today + timedelta(days=1), "due_tomorrow"),
                ("IN_USE", "end_date = %s", today, "due_today")]
        for state, cond, day, kind in once:  # each at most once per contract (a mark in contracts.reminders)
            for r in await self.db.fetchall(f"SELECT id FROM contracts WHERE state = %s AND {cond}"
                                            " AND FIND_IN_SET(%s, reminders) = 0 ORDER BY id LIMIT 500",
                                            (state, day, kind)):
                n += await self._row("remind", r["id"], self._remind(
                    r["id"], state, kind, today, sql={"reminders": ("CONCAT_WS(',', NULLIF(reminders, ''), %s)", kind)},
                    guard_sql="FIND_IN_SET(%s, reminders) = 0", guard_args=(kind,)))
        # every day while overdue: only the last day it was sent is kept, so nothing grows
        for r in await self.db.fetchall("SELECT id FROM contracts WHERE state = 'OVERDUE' AND end_date < %s AND"
                                        " return_declared_at IS NULL AND"
                                        " (overdue_reminded_on IS NULL OR overdue_reminded_on < %s) ORDER BY id"
                                        " LIMIT 500", (today, today)):
            n += await self._row("remind", r["id"], self._remind(
                r["id"], "OVERDUE", "still_overdue", today, sql={"overdue_reminded_on": ("%s", today)},
                guard_sql="(overdue_reminded_on IS NULL OR overdue_reminded_on < %s)", guard_args=(today,)))
        return n

    async def _job_announce(self, today: date) -> int:
        rows = await self.db.fetchall("SELECT DISTINCT contract_id FROM contract_events WHERE announced_at IS NULL"
                                      " AND created_at <= NOW(3) - INTERVAL 2 SECOND LIMIT 500")
        return sum([await self._row("announce", r["contract_id"], self._flush(r["contract_id"])) for r in rows])

    async def process_transfers(self) -> int:
        """Settle unknown transfers whose next inquiry is due and send queued ones; a transfer that fails
        unexpectedly is logged, counted and passed over."""
        assert self.pay is not None
        pay = self.pay
        n = 0

        async def inquire(tid: int) -> bool:
            return (await pay.inquire(tid, self._on_done, self._on_failed)).state != "unknown"

        async def send(tid: int) -> bool:
            return (await pay.send(tid, self._on_done, self._on_failed)).state in ("done", "failed")

        async def abandon(tid: int) -> bool:
            return (await pay.settle(tid, "failed", None, self._on_done, self._on_failed, "pay.unreachable",
                                     only_from="pending")).state == "failed"

        for tid in await pay.stale_unknown():
            n += await self._row("transfers", tid, inquire(tid), counts=True)
        for tid in await pay.abandoned():
            n += await self._row("transfers", tid, abandon(tid), counts=True)
        for tid in await pay.queued():
            n += await self._row("transfers", tid, send(tid), counts=True)
        for r in await self.db.fetchall("SELECT DISTINCT contract_id FROM contract_events WHERE announced_at IS NULL"
                                        " AND contract_id IS NOT NULL LIMIT 500"):
            await self._row("announce", r["contract_id"], self._flush(r["contract_id"]))
        return n

    async def settle_transfer(self, transfer_id: int, state: str) -> Outcome:
        """An operator's decision on a transfer the bank never answered finally (after checking with the bank):
        ``done`` or ``failed``, with the same consequences as the bank's own answer."""
        if state not in ("done", "failed"):
            raise InvalidInput("transfer.bad_state", field="state")
        outcome = await self._billipay().settle(transfer_id, state, None, self._on_done, self._on_failed,
                                                None if state == "done" else "pay.declined",
                                                only_from=("unknown", "review"))
        if outcome.state != state:
            raise Conflict("transfer.not_open")
        row = await self.db.fetchone("SELECT contract_id FROM transfers WHERE id = %s", (transfer_id,))
        if row and row["contract_id"]:
            await self._flush(int(row["contract_id"]))
        return outcome

    async def _row(self, job: str, row_id: int, work: Awaitable[Any], *, counts: bool = False) -> int:
        """One row of a job: 1 when it did something. Someone having got there first (a guarded change that
        no longer applies) is 0; anything else is logged with its traceback, counted and passed over."""
        try:
            result = await work
        except (Conflict, NotFound, InvalidInput):
            return 0
        except Exception:  # noqa: BLE001 — one bad row must not stop the round for everyone
            log.exception("scheduler job %s: row %s failed; passed over this round", job, row_id)
            self.job_failures[job] += 1
            return 0
        if counts:
            return int(bool(result))
        return int(result) if isinstance(result, int) and not isinstance(result, bool) else 1

    async def _expire(self, cid: int) -> None:
        async def money(cur: Any, before: Contract, after: Contract) -> dict[str, Any]:
            await self._no_transfer_in_flight(cur, cid, "pay")
            return {}

        await self._change(cid, None, {"system"}, ("REQUESTED", "ACCEPTED"), "expired", to="EXPIRED",
                           actor_role="system", guard_sql="expires_at <= NOW(3)", money=money)

    async def _remind(self, cid: int, state: str, kind: str, today: date, *, sql: dict[str, Any], guard_sql: str,
                      guard_args: tuple[Any, ...]) -> None:
        late_days, late = (await self.get(cid)).lateness(today)
        await self._change(cid, None, {"system"}, (state,), kind, actor_role="system", sql=sql, guard_sql=guard_sql,
                           guard_args=guard_args, data={"late_days": late_days, "late_fee": late})

    async def _auto_settle(self, cid: int) -> None:
        async def money(cur: Any, before: Contract, after: Contract) -> dict[str, Any]:
            await self._no_transfer_in_flight(cur, cid, "ext")
            return await self._settle_money(cur, before, 0)

        await self._change(cid, None, {"system"}, ("RETURNED",), "settled", to="SETTLED", money=money,
                           actor_role="system", sql={"settled_at": ("NOW(3)",)},
                           guard_sql="returned_at <= NOW(3) - INTERVAL %s SECOND",
                           guard_args=(self.rules.claim_window_s,), data={"automatic": True})

    # -- the one way a contract changes ------------------------------------------------------------
    async def _lock(self, cur: Any, cid: int) -> Contract:
        await cur.execute("SELECT * FROM contracts WHERE id = %s FOR UPDATE", (cid,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound("rental.not_found")
        return Contract.from_row(row)

    async def _change(self, contract_id: Any, actor_id: int | None, roles: set[str], from_states: Iterable[str],
                      kind: str | Callable[[Contract], str], *,
                      to: str | Callable[[Contract], str | None] | None = None, check: Callable[[Contract], None] | None = None,
                      sql: dict[str, tuple[Any, ...]] | None = None, data: dict[str, Any] | None = None,
                      money: Callable[[Any, Contract, Contract], Awaitable[dict[str, Any]]] | None = None,
                      actor_role: str | None = None, guard_sql: str | None = None,
                      guard_args: tuple[Any, ...] = ()) -> Contract:
        cid = _id(contract_id)
        for attempt in range(4):
            try:
                async with self.db.transaction() as cur:
                    c = await self._lock(cur, cid)
                    role = actor_role or c.role(actor_id)
                    if actor_id is not None and c.role(actor_id) is None:
                        raise NotFound("rental.not_found")
                    if role not in roles:
                        raise Forbidden("rental.only_owner" if "owner" in roles and len(roles) == 1 else
                                        "rental.only_borrower" if roles == {"borrower"} else "rental.not_allowed")
                    if c.state not in from_states:
                        raise Conflict("rental.already_paid" if kind == "paid" else "rental.wrong_state",
                                       state=c.state)
                    if guard_sql:
                        await cur.execute(f"SELECT 1 AS ok FROM contracts WHERE id = %s AND {guard_sql}",
                                          (cid, *guard_args))
                        if await cur.fetchone() is None:
                            raise Conflict("rental.wrong_state", state=c.state)
                    if check:
                        check(c)
                    if callable(kind):
                        kind = kind(c)
                    if callable(to):
                        to = to(c)
                    sets, args = ["state = %s"], [to or c.state]
                    for column, (expr, *values) in (sql or {}).items():
                        sets.append(f"{column} = {expr}")
                        args += values
                    await cur.execute(f"UPDATE contracts SET {', '.join(sets)} WHERE id = %s", (*args, cid))
                    after = await self._lock(cur, cid)
                    extra = await money(cur, c, after) if money else {}
                    await self._event(cur, cid, kind, role or "system", actor_id, c.state, after.state,
                                      {**(data or {}), **extra})
                    result = after
                break
            except pymysql.err.OperationalError as e:
                if e.args[0] not in (1213, 1205) or attempt == 3:
                    raise
        await self._flush(cid)
        if money is not None:
            await self.send_payouts(cid)
            return await self.get(cid)  # payouts may have written their own events meanwhile
        return result

    async def stuck_payouts(self) -> list[Row]:
        """Payouts and refunds the bank refused three times: the money is still owed (payable), and waits for
        an operator (``retry_payout``). One row per payout: its last refused transfer."""
        return await self.db.fetchall(
            "SELECT t.* FROM transfers t WHERE t.direction = 'deposit' AND t.state = 'failed'"
            " AND t.id = (SELECT MAX(x.id) FROM transfers x WHERE x.purpose = t.purpose)"
            " AND (SELECT COUNT(*) FROM transfers y WHERE y.purpose = t.purpose) >= %s ORDER BY t.id",
            (PAYOUT_TRIES,))

    async def retry_payout(self, transfer_id: int) -> int:
        """An operator sends a refused payout again (after the person fixed their account): a new transfer for
        the same purpose and amount, sent now; returns its id."""
        async with self.db.transaction() as cur:
            await cur.execute("SELECT purpose FROM transfers WHERE id = %s", (transfer_id,))
            found = await cur.fetchone()
            if found is None:
                raise Conflict("transfer.not_retryable")
            # The whole payout (every transfer of its purpose) is locked, so two retries at once send one.
            await cur.execute("SELECT * FROM transfers WHERE purpose = %s ORDER BY id FOR UPDATE", (found["purpose"],))
            chain = await cur.fetchall()
            t = chain[-1]
            if (t["id"] != transfer_id or t["direction"] != "deposit"
                    or any(x["state"] != "failed" for x in chain)):
                raise Conflict("transfer.not_retryable")  # not the last try, or already sent again (or paid)
            tid = await self._billipay().open_transfer(cur, purpose=t["purpose"], contract_id=t["contract_id"],
                                                       user_id=t["user_id"], direction="deposit",
                                                       amount=int(t["amount"]), state="pending")
        await self._billipay().send(tid, self._on_done, self._on_failed)
        if t["contract_id"]:
            await self._flush(int(t["contract_id"]))
        return tid

    async def payouts_for(self, user_id: int) -> None:
        """Send what waited for this person's bank account."""
        rows = await self.db.fetchall("SELECT DISTINCT contract_id FROM transfers WHERE user_id = %s"
                                      " AND state = 'pending' AND contract_id IS NOT NULL", (user_id,))
        for r in rows:
            await self.send_payouts(r["contract_id"])

    async def send_payouts(self, cid: int) -> None:
        """Send a contract's queued payouts and refunds now (what fails stays queued for the scheduler)."""
        if self.pay is None:
            return
        rows = await self.db.fetchall("SELECT id FROM transfers WHERE contract_id = %s AND state = 'pending'"
                                      " ORDER BY id", (cid,))
        for r in rows:
            try:
                await self.pay.send(r["id"], self._on_done, self._on_failed)
            except Exception:
                log.exception("payout %s not sent now; the scheduler will retry", r["id"])
        if rows:
            await self._flush(cid)

    async def _event(self, cur: Any, cid: int, kind: str, actor_kind: str, actor_id: int | None,
                     from_state: str | None, to_state: str, data: dict[str, Any] | None) -> None:
        await cur.execute(
            "INSERT INTO contract_events (contract_id, kind, actor_kind, actor_id, from_state, to_state, data)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (cid, kind, actor_kind, actor_id, from_state, to_state,
             json.dumps(data or {}, ensure_ascii=False, default=str)))
        event_id = int(cur.lastrowid)
        if self.notifications is None:
            return
        ends = to_state in FINAL and from_state not in FINAL and from_state != to_state
        if kind not in NOTIFY and not ends:
            return
        await cur.execute("SELECT c.owner_id, c.borrower_id, c.room_id, c.item_id, i.title FROM contracts c"
                          " JOIN items i ON i.id = c.item_id WHERE c.id = %s", (cid,))
        c = await cur.fetchone()
        for role, note in NOTIFY.get(kind, ()):
            user = c["owner_id"] if role == "owner" else c["borrower_id"]
            await self.notifications.add(cur, user, note, params={"title": c["title"]}, room_id=c["room_id"],
                                         contract_id=cid, item_id=c["item_id"], dedupe=f"ev{event_id}")
            self._told.add(user)
        if ends:  # the dates are free again: people who wished for the item hear about it (once a day)
            await cur.execute("SELECT user_id FROM wishes WHERE item_id = %s AND user_id <> %s LIMIT 1000",
                              (c["item_id"], c["borrower_id"]))
            for w in await cur.fetchall():
                if await self.notifications.add(cur, w["user_id"], "wish_available", params={"title": c["title"]},
                                                item_id=c["item_id"],
                                                dedupe=f"wish{c['item_id']}:{seoul_today().isoformat()}"):
                    self._told.add(w["user_id"])

    async def _flush(self, cid: int) -> int:
        """Announce the contract's events that have not been announced, oldest first (and push the unread
        notification counts of whoever was notified)."""
        if self._told and self.notifications is not None:
            told, self._told = self._told, set()
            await self.notifications.ping(told)
        if self.on_event is None:
            return 0
        rows = await self.db.fetchall("SELECT * FROM contract_events WHERE contract_id = %s AND announced_at IS NULL"
                                      " ORDER BY id", (cid,))
        done: list[int] = []
        for r in rows:
            try:
                await self.on_event(_event(r))
            except Exception:
                log.exception("announcing contract event %s failed; the scheduler will try again", r["id"])
                break
            done.append(r["id"])
        if done:
            await self.db.execute(f"UPDATE contract_events SET announced_at = NOW(3) WHERE id IN ({_marks(done)})",
                                  tuple(done))
        return len(done)


async def _move(cur: Any, movement: str, cid: int | None, source: str, target: str, amount: int, memo: str) -> None:
    """One double-entry movement (two rows summing to zero); a repeated movement id is a no-op."""
    if amount <= 0:
        return
    await cur.execute("INSERT IGNORE INTO ledger (movement, contract_id, account, amount, memo) VALUES"
                      " (%s, %s, %s, %s, %s), (%s, %s, %s, %s, %s)",
                      (movement, cid, source, -amount, memo, movement, cid, target, amount, memo))


def _transfer_kind(t: Row) -> tuple[str, int]:
    """A rental transfer's kind (pay, ext, payout, refund) and contract."""
    kind, _, rest = str(t["purpose"]).partition(":")
    return str(t.get("kind") or kind), int(t.get("contract_id") or rest.split(":")[0])


def _seoul_day(at: datetime | None) -> date:
    """The Seoul date of a stored (UTC) time; today when there is none."""
    return seoul_today(at.replace(tzinfo=UTC)) if at is not None else seoul_today()


def _not_started(c: Contract) -> None:
    """Accepting and paying end once the rental's start day has passed (Seoul)."""
    if c.start_date < seoul_today():
        raise Conflict("rental.started")


def _not_expired(c: Contract) -> None:
    if c.expires_at is not None and c.expires_at <= datetime.now(UTC).replace(tzinfo=None):
        raise Conflict("rental.expired")


def _reason_of(t: Row) -> str:
    """The message key for a failed transfer: the bank's code, or what stopped us before the bank."""
    code = str(t.get("bank_rsp_code") or "")
    if code in BANK_REASONS:
        return BANK_REASONS[code]
    message = str(t.get("message") or "")
    return message if message.startswith("pay.") else "pay.declined"


def _event(r: Row) -> dict[str, Any]:
    return {"id": r["id"], "contract_id": r["contract_id"], "kind": r["kind"], "actor_kind": r["actor_kind"],
            "actor_id": r["actor_id"], "from_state": r["from_state"], "to_state": r["to_state"],
            "data": json.loads(r["data"] or "{}"), "at": r["created_at"].isoformat(timespec="seconds") + "Z"}


def _id(raw: Any, code: str = "rental.not_found") -> int:
    if isinstance(raw, bool):
        raise NotFound(code)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise NotFound(code) from None
    if not 0 < value < 2**62:
        raise NotFound(code)
    return value


def _marks(values: Iterable[Any]) -> str:
    return ", ".join(["%s"] * len(list(values)))
