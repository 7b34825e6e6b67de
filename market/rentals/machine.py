"""The contract machine as one table, and the one way a contract changes (``Machine.apply``).

Each ``Edge`` is a row: the action, the states it leaves, the state it enters (or stays), who may take it, the
guards it needs (SQL conditions on the locked row, with the clock's ``now``/``today`` and the rules as
parameters), the columns it sets, and its effect (``money.py``: ledger movements and payouts, or what a message
needs to say). The people's actions (``actions.py``) and the scheduler's timed edges (``jobs.py``: every SYSTEM
edge, found by the same guards) all go through ``apply``; DESIGN §5's diagram and ``docs/ARCHITECTURE.md`` show
this table (``table_markdown`` prints it).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pymysql

from market.chat.model import WithMessage
from market.errors import Conflict, Forbidden, NotFound
from market.rentals.contract import FINAL, Contract, contract_id

if TYPE_CHECKING:
    from market.chat import Chat
    from market.clock import Clock
    from market.db import Database, Tail
    from market.people.notifications import Notifications, Reader
    from market.rentals.contract import Rules

log = logging.getLogger("billi.rentals")

OWNER, BORROWER = frozenset({"owner"}), frozenset({"borrower"})
PARTIES, SYSTEM, OPERATOR = frozenset({"owner", "borrower"}), frozenset({"system"}), frozenset({"operator"})
BANK = frozenset({"bank"})  # the bank's answer to a transfer moves it (money.py)


@dataclass(frozen=True, slots=True)
class Guard:
    sql: str  # a condition on the contract row (``contracts``), with %(name)s parameters
    error: str = "rental.wrong_state"
    what: str = ""  # for the table


# The time guards and the other conditions an edge may need. Parameters: now (UTC), today / tomorrow (Seoul),
# lost_cutoff, every field of Rules, role, and the values the action brings (amount, note, end …).
GUARDS: dict[str, Guard] = {
    "unexpired": Guard("expires_at > %(now)s", "rental.expired", "before expires_at"),
    "not_started": Guard("start_date >= %(today)s", "rental.started", "start day not passed"),
    "before_handover": Guard("owner_handed_at IS NULL AND borrower_got_at IS NULL", "rental.cancel_after_handover",
                             "nobody confirmed the hand-over"),
    "in_claim_window": Guard("returned_at > %(now)s - INTERVAL %(claim_window_s)s SECOND",
                             "rental.claim_window_closed", "within claim_window of the return"),
    "no_extension_pending": Guard("ext_end_date IS NULL", "rental.extension_pending", "no extension asked"),
    "extension_pending": Guard("ext_end_date IS NOT NULL", "rental.no_extension", "an extension asked"),
    "no_return_declared": Guard("return_declared_at IS NULL", "rental.return_declared", "no return declared"),
    "return_declared": Guard("return_declared_at IS NOT NULL", "rental.nothing_to_object", "a return declared"),
    "handover_disputed": Guard("claim_kind = 'handover'", "rental.wrong_state", "a contested hand-over"),
    "claim_disputed": Guard("claim_kind IN ('damage', 'lost')", "rental.wrong_state", "a contested claim"),
    "proposed_by_other": Guard("appt_proposed_by IS NOT NULL AND appt_proposed_by <> %(actor)s"
                               " AND appt_proposed_at = %(at)s AND appt_proposed_at > %(now)s",
                               "rental.no_appointment", "the other person's very proposal, still ahead"),
    "other_side_confirmed": Guard("IF(%(role)s = 'owner', borrower_got_at, owner_handed_at) IS NOT NULL"
                                  " AND IF(%(role)s = 'owner', owner_handed_at, borrower_got_at) IS NULL",
                                  "rental.nothing_to_object", "only the other side confirmed"),
    # timed (the scheduler finds the rows by them, and apply checks them again on the locked row)
    "hold_lapsed": Guard("expires_at <= %(now)s", what="expires_at passed"),
    "past_end": Guard("end_date < %(today)s", what="end date passed"),
    "no_show_due": Guard(
        "owner_handed_at IS NULL AND borrower_got_at IS NULL AND GREATEST(TIMESTAMP(start_date) - INTERVAL 9 HOUR,"
        " COALESCE(appointment_at, '2000-01-01'),"
        " COALESCE((SELECT MAX(e.created_at) FROM contract_events e WHERE e.contract_id = contracts.id AND"
        " e.kind = 'paid'), '2000-01-01'), COALESCE(handover_objected_at, '2000-01-01'))"
        " + INTERVAL %(no_show_s)s SECOND <= %(now)s",
        what="nobody confirmed the hand-over no_show after the start day began, the agreed appointment, the "
             "payment or an operator's not yet, whichever is latest"),
    "one_sided_a_day": Guard(
        "((GREATEST(owner_handed_at, TIMESTAMP(start_date) - INTERVAL 9 HOUR) <= %(now)s - INTERVAL 1 DAY"
        " AND borrower_got_at IS NULL) OR (GREATEST(borrower_got_at, TIMESTAMP(start_date) - INTERVAL 9 HOUR)"
        " <= %(now)s - INTERVAL 1 DAY AND owner_handed_at IS NULL))",
        what="one side confirmed a day ago (from the start day), the other silent"),
    "return_unanswered": Guard("return_declared_at <= %(now)s - INTERVAL %(return_confirm_s)s SECOND",
                               what="return declared return_confirm ago, the owner silent"),
    "lost_due": Guard("GREATEST(end_date, COALESCE(late_from, end_date)) < %(lost_cutoff)s"
                      " AND return_declared_at IS NULL",
                      what="lost_after_days past the end date, no return declared"),
    "claim_unanswered": Guard(
        "(SELECT MAX(e.created_at) FROM contract_events e WHERE e.contract_id = contracts.id AND e.kind = 'claimed')"
        " <= %(now)s - INTERVAL %(claim_window_s)s SECOND", what="claim unanswered for claim_window"),
    "claim_window_over": Guard("returned_at <= %(now)s - INTERVAL %(claim_window_s)s SECOND",
                               what="claim_window since the return, no claim"),
    "starts_tomorrow": Guard("start_date = %(tomorrow)s AND FIND_IN_SET('starts_tomorrow', reminders) = 0",
                             what="the day before the start, once (given already when paid that day)"),
    "due_tomorrow": Guard("end_date = %(tomorrow)s AND FIND_IN_SET('due_tomorrow', reminders) = 0",
                          what="the day before the end, once"),
    "appointment_soon": Guard("appointment_at > %(now)s AND appointment_at <= %(now)s + INTERVAL 2 HOUR"
                              " AND FIND_IN_SET('appointment', reminders) = 0", what="2 h before the agreed time, once"),
    "due_today": Guard("end_date = %(today)s AND FIND_IN_SET('due_today', reminders) = 0", what="the end day, once"),
    "overdue_today": Guard("GREATEST(end_date, COALESCE(late_from, end_date)) < %(today)s AND return_declared_at"
                           " IS NULL AND (overdue_reminded_on IS NULL"
                           " OR overdue_reminded_on < %(today)s)", what="each overdue day, once, until declared"),
}

Pick = Callable[[Contract, str], str | None]


@dataclass(frozen=True, slots=True)
class Edge:
    action: str
    event: str | Pick  # the contract_events kind it writes (by contract and role when it depends on them)
    sources: tuple[str, ...]
    to: str | Pick | None  # the next state; None: it stays
    roles: frozenset[str]
    guards: tuple[str, ...] = ()
    sets: dict[str, str] = field(default_factory=dict)  # column → SQL expression
    effect: str | None = None  # money.py's Money.effect_<name>(cur, before, after, params)
    data: dict[str, Any] = field(default_factory=dict)  # into the event, always
    note: str = ""  # for the table

    def event_for(self, c: Contract, role: str) -> str:
        kind = self.event(c, role) if callable(self.event) else self.event
        assert kind is not None
        return kind

    def target(self, c: Contract, role: str) -> str:
        to = self.to(c, role) if callable(self.to) else self.to
        return to or c.state


def _handover_event(c: Contract, role: str) -> str:
    other = c.borrower_got_at if role == "owner" else c.owner_handed_at
    return "in_use" if other is not None else ("handed" if role == "owner" else "received")


def _handover_to(c: Contract, role: str) -> str | None:
    return "IN_USE" if _handover_event(c, role) == "in_use" else None


NOW = "%(now)s"
_REMIND = "CONCAT_WS(',', NULLIF(reminders, ''), '{}')"
EDGES: dict[str, Edge] = {e.action: e for e in (
    # -- people ------------------------------------------------------------------------------------------
    Edge("accept", "accepted", ("REQUESTED",), "ACCEPTED", OWNER, ("unexpired", "not_started"),
         {"expires_at": "%(now)s + INTERVAL %(payment_window_s)s SECOND"}, note="dates held for payment_window"),
    Edge("decline", "declined", ("REQUESTED",), "DECLINED", OWNER),
    Edge("cancel", "cancelled", ("REQUESTED", "ACCEPTED", "PAID"), "CANCELLED", PARTIES, ("before_handover",),
         effect="cancel", note="PAID: refund by the cancel rule (owner: all)"),
    Edge("pay", "paid", ("ACCEPTED",), "PAID", BORROWER, ("unexpired", "not_started"),
         note="a withdrawal; the bank's answer moves it (late: only if not started and the dates are free)"),
    Edge("payment_lands_late", "late_payment_refunded", ("ACCEPTED",), "EXPIRED", BANK,
         note="started or dates taken meanwhile: all refunded"),
    Edge("hand_over", _handover_event, ("PAID",), _handover_to, PARTIES, sets={
        "owner_handed_at": "IF(%(role)s = 'owner', %(now)s, owner_handed_at)",
        "borrower_got_at": "IF(%(role)s = 'borrower', %(now)s, borrower_got_at)"},
         note="전달 완료 / 수령 완료; both → IN_USE"),
    Edge("object_handover", "handover_objected", ("PAID",), "DISPUTED", PARTIES, ("other_side_confirmed",),
         {"claim_kind": "'handover'", "claim_amount": "0", "handover_objected_at": NOW},
         note="아직 못 받았어요 against the other's confirmation: an operator decides"),
    Edge("resolve_handed", "handover_resolved", ("DISPUTED",), "IN_USE", OPERATOR, ("handover_disputed",), {
        "owner_handed_at": "COALESCE(owner_handed_at, %(now)s)", "borrower_got_at": "COALESCE(borrower_got_at,"
        " %(now)s)", "late_from": "IF(end_date < %(today)s, %(today)s, NULL)", "claim_kind": "NULL",
        "resolution_note": "%(note)s"}, data={"handed": True},
         note="billi disputes: it was handed over (late fees only from today, not for the days in dispute)"),
    Edge("resolve_not_handed", "handover_resolved", ("DISPUTED",), "CANCELLED", OPERATOR, ("handover_disputed",),
         {"resolution_note": "%(note)s"}, effect="refund_all", data={"handed": False},
         note="billi disputes: it was not: all refunded"),
    Edge("resolve_not_yet", "handover_resolved", ("DISPUTED",), "PAID", OPERATOR, ("handover_disputed", "not_started"), {
        "owner_handed_at": "NULL", "borrower_got_at": "NULL", "handover_objected_at": NOW, "claim_kind": "NULL",
        "resolution_note": "%(note)s"}, data={"handed": None},
         note="billi disputes: not yet (before the start): both confirm again; the no-show clock restarts"),
    Edge("propose_appointment", "appointment_proposed", ("PAID",), None, PARTIES, ("before_handover",), {
        "appt_proposed_by": "%(actor)s", "appt_proposed_at": "%(at)s", "appt_proposed_place": "%(place)s"},
         note="약속 잡기: a time and place; the other agrees or proposes another"),
    Edge("agree_appointment", "appointment_agreed", ("PAID",), None, PARTIES, ("proposed_by_other",), {
        # (MariaDB assigns left to right: the proposal is copied before it is cleared)
        "appointment_at": "appt_proposed_at", "appointment_place": "appt_proposed_place",
        "appt_proposed_by": "NULL", "appt_proposed_at": "NULL", "appt_proposed_place": "NULL",
        "reminders": "TRIM(BOTH ',' FROM REPLACE(CONCAT(',', reminders, ','), ',appointment,', ','))"},
         note="reminder and no-show keyed off the agreed time"),
    Edge("request_extension", "extension_requested", ("IN_USE", "OVERDUE"), None, BORROWER,
         ("no_extension_pending", "no_return_declared"),
         {"ext_end_date": "%(end)s", "ext_rent": "%(rent)s", "ext_fee": "%(fee)s"}, effect="extension_unchanged"),
    Edge("decline_extension", "extension_declined", ("IN_USE", "OVERDUE"), None, OWNER, ("extension_pending",),
         {"ext_end_date": "NULL", "ext_rent": "NULL", "ext_fee": "NULL"}, effect="extension_unchanged"),
    Edge("approve_extension", "extended", ("IN_USE", "OVERDUE"), None, OWNER, ("extension_pending", "no_return_declared"),
         note="the extra rent withdrawn; its landing moves the end date (RETURNED too)"),
    Edge("declare_return", "return_declared", ("IN_USE", "OVERDUE"), None, BORROWER, ("no_return_declared",),
         {"return_declared_at": NOW}, effect="lateness", note="반납 완료: the owner is asked"),
    Edge("object_return", "return_objected", ("IN_USE", "OVERDUE"), None, OWNER, ("return_declared",),
         {"return_declared_at": "NULL"}, note="아직 못 받았어요: fees run on"),
    Edge("confirm_return", "returned", ("IN_USE", "OVERDUE"), "RETURNED", OWNER, (),
         {"returned_at": NOW}, effect="late_fees", note="반납 받음: late fees to the declared day"),
    Edge("confirm_ok", "settled", ("RETURNED",), "SETTLED", OWNER, (), {"settled_at": NOW}, effect="settle",
         note="정상 반납"),
    Edge("claim", "claimed", ("RETURNED",), "CLAIMED", OWNER, ("in_claim_window",),
         {"claim_kind": "'damage'", "claim_amount": "%(amount)s", "claim_note": "%(note)s"}, effect="undisputed",
         data={"claim_kind": "damage"}, note="파손 ≤ deposit − late fees; undisputed rent paid now"),
    Edge("report_lost", "claimed", ("IN_USE", "OVERDUE"), "CLAIMED", OWNER, (),
         {"claim_kind": "'lost'", "claim_note": "''", "return_declared_at": "NULL"}, effect="lost",
         data={"claim_kind": "lost", "note": ""}, note="분실: the whole deposit (no late fees apart); rent paid now"),
    Edge("accept_claim", "claim_accepted", ("CLAIMED",), "SETTLED", BORROWER, (), {"settled_at": NOW},
         effect="settle_claim"),
    Edge("dispute", "disputed", ("CLAIMED",), "DISPUTED", BORROWER),
    Edge("resolve", "resolved", ("DISPUTED",), "SETTLED", OPERATOR, ("claim_disputed",),
         {"claim_amount": "%(amount)s", "resolution_note": "%(note)s", "settled_at": NOW},
         effect="settle_decision", note="billi disputes --resolve: 0 … the claim"),
    # -- time (jobs.py runs these in this order, the money ones first) -----------------------------------
    Edge("auto_settle", "settled", ("RETURNED",), "SETTLED", SYSTEM, ("claim_window_over",),
         {"settled_at": NOW}, effect="settle", data={"automatic": True}),
    Edge("no_show", "no_show", ("PAID",), "CANCELLED", SYSTEM, ("no_show_due",), effect="refund_all"),
    Edge("claim_unanswered", "disputed", ("CLAIMED",), "DISPUTED", SYSTEM, ("claim_unanswered",),
         data={"note": "", "unanswered": True}, note="never silently accepted"),
    Edge("handover_timeout", "in_use", ("PAID",), "IN_USE", SYSTEM, ("one_sided_a_day",), {
        "owner_handed_at": "COALESCE(owner_handed_at, %(now)s)",
        "borrower_got_at": "COALESCE(borrower_got_at, %(now)s)"}),
    Edge("return_unanswered", "returned", ("IN_USE", "OVERDUE"), "RETURNED", SYSTEM, ("return_unanswered",),
         {"returned_at": NOW}, effect="late_fees", data={"automatic": True}),
    Edge("lost_overdue", "claimed", ("IN_USE", "OVERDUE"), "CLAIMED", SYSTEM, ("lost_due",),
         {"claim_kind": "'lost'", "claim_note": "''"}, effect="lost",
         data={"claim_kind": "lost", "note": "", "automatic": True}),
    Edge("expire", "expired", ("REQUESTED", "ACCEPTED"), "EXPIRED", SYSTEM, ("hold_lapsed",),
         effect="no_payment_in_flight", note="not while a payment may land"),
    Edge("overdue", "overdue", ("IN_USE",), "OVERDUE", SYSTEM, ("past_end",)),
    Edge("remind_start", "starts_tomorrow", ("PAID",), None, SYSTEM, ("starts_tomorrow",),
         {"reminders": _REMIND.format("starts_tomorrow")}),
    Edge("remind_appointment", "appointment_soon", ("PAID",), None, SYSTEM, ("appointment_soon",),
         {"reminders": _REMIND.format("appointment")}),
    Edge("remind_due_tomorrow", "due_tomorrow", ("IN_USE",), None, SYSTEM, ("due_tomorrow",),
         {"reminders": _REMIND.format("due_tomorrow")}),
    Edge("remind_due_today", "due_today", ("IN_USE",), None, SYSTEM, ("due_today",),
         {"reminders": _REMIND.format("due_today")}),
    Edge("remind_overdue", "still_overdue", ("OVERDUE",), None, SYSTEM, ("overdue_today",),
         {"overdue_reminded_on": "%(today)s"}, effect="lateness"),
)}
TIMED = [e for e in EDGES.values() if e.roles == SYSTEM]

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
    "return_declared": (("owner", "return_declared"),),
    "return_objected": (("borrower", "return_objected"),),
    "handover_objected": (("owner", "handover_disputed"), ("borrower", "handover_disputed")),
    "handover_resolved": (("owner", "dispute_resolved"), ("borrower", "dispute_resolved")),
    "resolved": (("owner", "dispute_resolved"), ("borrower", "dispute_resolved")),
}

# The hook announcing an event (the bot's). It may store the event's ``announced`` mark (``WithMessage``, present
# on a new contract's first event) with its messages.
EventHook = Callable[[dict[str, Any]], Awaitable[None]]
_ANNOUNCED = "UPDATE contract_events SET announced_at = %s WHERE id = %s AND announced_at IS NULL"


@dataclass(frozen=True, slots=True)
class Party:
    """Whom a contract's event concerns and what its notifications name: the two people, the deal room, the item
    and its title; ``readers``: how some of them take a notification, when the caller read that already."""

    owner_id: int
    borrower_id: int
    room_id: int
    item_id: int
    title: str
    readers: Mapping[int, Reader] = field(default_factory=dict)

    @classmethod
    def of(cls, c: Contract, title: str, readers: Mapping[int, Reader] | None = None) -> Party:
        return cls(c.owner_id, c.borrower_id, c.room_id, c.item_id, title, readers or {})


def table_markdown() -> str:
    """The machine as a Markdown table (docs/ARCHITECTURE.md carries it; a test keeps the two the same)."""
    rows = ["| action | from | → to | who | guards | effect | |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for e in EDGES.values():
        to = e.to if isinstance(e.to, str) else ("(stays)" if e.to is None else "IN_USE when both")
        guards = ", ".join(GUARDS[g].what or g for g in e.guards) or "-"
        rows.append(f"| `{e.action}` | {', '.join(e.sources)} | {to} | {', '.join(sorted(e.roles))} | {guards} |"
                    f" {e.effect or '-'} | {e.note} |")
    return "\n".join(rows)


@functools.lru_cache(maxsize=8)
def _values_of(rules: Any) -> dict[str, Any]:
    """The rules' values by field name, worked out once per rules object (``Rules`` is frozen; its values are
    ints, shared, never copied: callers spread them into a dict of their own)."""
    return {f.name: getattr(rules, f.name) for f in fields(rules)}


class Machine:
    """The one way a contract changes; mixed into ``Rentals``."""

    db: Database
    chat: Chat
    rules: Rules
    clock: Clock
    notifications: Notifications | None
    on_event: EventHook | None
    _told: set[int]
    if TYPE_CHECKING:
        async def send_payouts(self, cid: int) -> None: ...
        async def get(self, contract_id: Any, user_id: int | None = None) -> Contract: ...

    def params(self, cid: int = 0, role: str = "", **values: Any) -> dict[str, Any]:
        """What guards and column expressions may name: the clock, the rules, the actor's role, the values."""
        now, today = self.clock.now(), self.clock.today()
        return {"id": cid, "now": now, "today": today, "tomorrow": today + timedelta(days=1),
                "lost_cutoff": today - timedelta(days=self.rules.lost_after_days), "role": role,
                **_values_of(self.rules), **values}

    async def guard(self, cur: Any, name: str, p: dict[str, Any]) -> None:
        g = GUARDS[name]
        await cur.execute(f"SELECT 1 FROM contracts WHERE id = %(id)s AND ({g.sql})", p)
        if await cur.fetchone() is None:
            raise Conflict(g.error, hours=self.rules.claim_window_s // 3600)

    async def apply(self, action: str, contract: Any, actor_id: int | None = None, *,
                    values: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
                    check: Callable[[Contract], None] | None = None) -> Contract:
        """Take one edge of the table on one contract, in one transaction: lock the row, check the actor's role
        (a stranger is told "not found"), the state, the guards and ``check``; set the state and the edge's
        columns; run its effect; write the event. Then announce it and send what the effect queued."""
        edge = EDGES[action]
        cid = contract_id(contract)
        result: Contract | None = None
        for attempt in range(4):
            try:
                async with self.db.transaction() as cur:
                    c = await self.lock(cur, cid)
                    if actor_id is not None:
                        role = c.role(actor_id)
                        if role is None:
                            raise NotFound("rental.not_found")
                    else:
                        role = "operator" if edge.roles == OPERATOR else "system"
                    if role not in edge.roles:
                        raise Forbidden("rental.only_owner" if edge.roles == OWNER else
                                        "rental.only_borrower" if edge.roles == BORROWER else "rental.not_allowed")
                    if c.state not in edge.sources:
                        raise Conflict("rental.wrong_state", state=c.state)
                    p = self.params(cid, role, **{"actor": actor_id, **(values or {})})
                    for name in edge.guards:
                        await self.guard(cur, name, p)
                    if check:
                        check(c)
                    kind, to = edge.event_for(c, role), edge.target(c, role)
                    sets = "".join(f", {column} = {expr}" for column, expr in edge.sets.items())
                    await cur.execute(f"UPDATE contracts SET state = %(to)s{sets} WHERE id = %(id)s", {**p, "to": to})
                    after = await self.lock(cur, cid)
                    extra = await getattr(self, f"effect_{edge.effect}")(cur, c, after, p) if edge.effect else {}
                    await self.event(cur, cid, kind, role, actor_id, c.state, to,
                                     {**edge.data, **(data or {}), **extra})
                    result = await self.lock(cur, cid)
                break
            except pymysql.err.OperationalError as e:
                if e.args[0] not in (1213, 1205) or attempt == 3:  # a deadlock or lock wait: the whole edge again
                    raise
        assert result is not None
        await self.flush(cid)
        if edge.effect:
            await self.send_payouts(cid)
            return await self.get(cid)  # payouts may have written their own events meanwhile
        return result

    async def lock(self, cur: Any, cid: int) -> Contract:
        await cur.execute("SELECT * FROM contracts WHERE id = %s FOR UPDATE", (cid,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound("rental.not_found")
        return Contract.from_row(row)

    async def event(self, cur: Any, cid: int, kind: str, actor_kind: str, actor_id: int | None,
                    from_state: str | None, to_state: str, data: dict[str, Any] | None,
                    about: Party | None = None) -> dict[str, Any]:
        """The contract's history (and the notifications of the people it concerns), in the change's transaction;
        returns the event as ``flush`` announces it. ``about``: the contract's people and item, when the caller
        knows them (else they are read)."""
        at = self.clock.now()
        raw = json.dumps(data or {}, ensure_ascii=False, default=str)
        await cur.execute(
            "INSERT INTO contract_events (contract_id, kind, actor_kind, actor_id, from_state, to_state, data,"
            " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (cid, kind, actor_kind, actor_id, from_state, to_state, raw, at))
        event_id = int(cur.lastrowid)
        event = event_dict({"id": event_id, "contract_id": cid, "kind": kind, "actor_kind": actor_kind,
                            "actor_id": actor_id, "from_state": from_state, "to_state": to_state, "data": raw,
                            "created_at": at})
        if self.notifications is None:
            return event
        ends = to_state in FINAL and from_state not in FINAL and from_state != to_state
        if kind not in NOTIFY and not ends:
            return event
        if about is None:
            await cur.execute("SELECT c.owner_id, c.borrower_id, c.room_id, c.item_id, i.title FROM contracts c"
                              " JOIN items i ON i.id = c.item_id WHERE c.id = %s", (cid,))
            row = await cur.fetchone()
            about = Party(row["owner_id"], row["borrower_id"], row["room_id"], row["item_id"], row["title"])
        c = about
        for role, note in NOTIFY.get(kind, ()):
            user = c.owner_id if role == "owner" else c.borrower_id
            await self.notifications.add(cur, user, note, params={"title": c.title}, room_id=c.room_id,
                                         contract_id=cid, item_id=c.item_id, dedupe=f"ev{event_id}",
                                         reader=c.readers.get(user))
            self._told.add(user)
        if ends:  # the dates are free again: people who wished for the item hear about it (once a day)
            await cur.execute("SELECT user_id FROM wishes WHERE item_id = %s AND user_id <> %s LIMIT 1000",
                              (c.item_id, c.borrower_id))
            for w in await cur.fetchall():
                if await self.notifications.add(cur, w["user_id"], "wish_available", params={"title": c.title},
                                                item_id=c.item_id,
                                                dedupe=f"wish{c.item_id}:{self.clock.today().isoformat()}"):
                    self._told.add(w["user_id"])
        return event

    def event_later(self, tail: Tail, contract: str, kind: str, actor_kind: str, actor_id: int | None,
                    from_state: str | None, to_state: str, data: dict[str, Any] | None, about: Party,
                    room: str | None = None, told: set[int] | None = None) -> tuple[int, dict[str, Any]]:
        """``event`` as statements of the transaction's last round trip (``tail``), for a step that ends nothing:
        ``contract`` is the contract's id as a SQL expression of the tail's (a user variable an insert before it
        set), ``about`` names everyone to notify with their ``readers`` (``room``: its deal room as such an
        expression, when the tail opens it; ``told``: where the people notified are noted, for the caller to ping
        after its commit — else the machine's own set, which ``flush`` pings). Returns the place in the tail of the
        event's insert and the event's row without its ids (``event_dict({**row, "id": …, "contract_id": …})``
        once they are known)."""
        assert not (to_state in FINAL and from_state not in FINAL and from_state != to_state), to_state
        at = self.clock.now()
        raw = json.dumps(data or {}, ensure_ascii=False, default=str)
        place = tail.add("INSERT INTO contract_events (contract_id, kind, actor_kind, actor_id, from_state, to_state,"
                         f" data, created_at) VALUES ({contract}, %s, %s, %s, %s, %s, %s, %s)",
                         kind, actor_kind, actor_id, from_state, to_state, raw, at)
        row = {"kind": kind, "actor_kind": actor_kind, "actor_id": actor_id, "from_state": from_state,
               "to_state": to_state, "data": raw, "created_at": at}
        if self.notifications is None or kind not in NOTIFY:
            return place, row
        tail.add("SET @billi_event = LAST_INSERT_ID()")
        c = about
        for role, note in NOTIFY[kind]:
            user = c.owner_id if role == "owner" else c.borrower_id
            self.notifications.add_later(tail, user, note, reader=c.readers[user], params={"title": c.title},
                                         room=room or str(int(c.room_id)), contract=contract, item_id=c.item_id,
                                         dedupe="CONCAT('ev', @billi_event)")
            (self._told if told is None else told).add(user)
        return place, row

    async def flush(self, cid: int, fresh: list[dict[str, Any]] | None = None) -> int:
        """Announce the contract's events that have not been announced, oldest first (and push the unread
        notification counts of whoever was notified). ``fresh``: they are these, just written by the caller (a
        new contract's first event: it has no others), so they need not be read."""
        if self._told and self.notifications is not None:
            told, self._told = self._told, set()
            await self.notifications.ping(told)
        if self.on_event is None:
            return 0
        events = fresh if fresh is not None else [event_dict(r) for r in await self.db.fetchall(
            "SELECT * FROM contract_events WHERE contract_id = %s AND announced_at IS NULL ORDER BY id", (cid,))]
        done = 0
        for e in events:
            # A new contract's first event (``fresh``) has no step before it to retire: once its messages are
            # stored it is announced, so it is marked so in their transaction (``announced``) — if they are stored
            # there, not found stored already.
            mark = WithMessage(_ANNOUNCED, (self.clock.now(), e["id"])) if fresh is not None else None
            try:
                await self.on_event(e if mark is None else {**e, "announced": mark})
            except Exception:
                log.exception("announcing contract event %s failed; the scheduler will try again", e["id"])
                if mark is not None and mark.done:  # marked with a line that was stored while another was not
                    try:  # (the scheduler's repeat finds the stored one by its id and stores the other)
                        await self.db.execute("UPDATE contract_events SET announced_at = NULL WHERE id = %s",
                                              (e["id"],))
                    except Exception:  # noqa: BLE001 — the database failed twice over: said, for an operator
                        log.exception("contract event %s stays marked announced with a line missing", e["id"])
                break
            if mark is None or not mark.done:
                # each as soon as it is out: another node flushing the same contract skips it
                await self.db.execute(_ANNOUNCED, (self.clock.now(), e["id"]))
            done += 1
        return done


def private_to(event: dict[str, Any], role: str) -> dict[str, Any]:
    """A contract event as one of its two people may read it: the bank's reason a payment failed is the
    borrower's, and a payout (its amount, the bank's reason) is the person paid."""
    data = dict(event.get("data") or {})
    if event["kind"] in ("payment_failed", "extension_failed") and role != "borrower":
        data.pop("reason", None)
    if event["kind"] in ("paid_out", "payout_held") and data.get("to") != role:
        for key in ("amount", "reason", "bank_tran_id"):
            data.pop(key, None)
    if role != "borrower":  # what the borrower was charged or refunded, beyond the rent
        if event["kind"] in ("paid", "extended", "no_show", "handover_resolved", "late_payment_refunded"):
            data.pop("amount", None)
            data.pop("refund", None)
        if event["kind"] in ("extension_requested", "cancelled"):
            for key in ("fee", "fee_part", "refund"):
                data.pop(key, None)
    return {**event, "data": data}


def event_dict(r: Any) -> dict[str, Any]:
    at: datetime = r["created_at"]
    return {"id": r["id"], "contract_id": r["contract_id"], "kind": r["kind"], "actor_kind": r["actor_kind"],
            "actor_id": r["actor_id"], "from_state": r["from_state"], "to_state": r["to_state"],
            "data": json.loads(r["data"] or "{}"), "at": at.isoformat(timespec="seconds") + "Z"}
