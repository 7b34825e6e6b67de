"""``Rentals``: the contracts service — reading, and every action a person takes, each one edge of the machine
(``machine.EDGES``) taken through ``apply``. The money (``money.py``), the dates (``availability.py``) and the
scheduler's timed edges (``jobs.py``) are its other parts."""

from __future__ import annotations

import asyncio
from collections import Counter as CountOf
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import pymysql

from market import validation as v
from market.billipay import BilliPay
from market.chat import Chat, Room
from market.clock import Clock, seoul_day
from market.db import Database, Row, Tail
from market.errors import Conflict, InvalidInput, NotFound
from market.people.blocks import refusal
from market.people.notifications import UNREAD, Notifications, Reader, inquiry_columns
from market.rentals.availability import (
    BUSY_DATES,
    BUSY_DATES_JSON,
    PAYMENT_OPEN,
    TAKEN,
    TAKEN_UNTIL,
    Availability,
    busy_of,
)
from market.rentals.contract import BUSY, FINAL, MAX_NOTE, OPEN, Contract, DatesTaken, Rules, contract_id, marks
from market.rentals.jobs import Jobs
from market.rentals.kdates import SEOUL
from market.rentals.machine import EventHook, Party, event_dict
from market.rentals.money import PAYOUT_TRIES

# A rental request's first read: the item, whether either person blocked the other, the deal room of the two (if
# any: ``room_*``), the asker's nickname (which a new deal room's notification names), what announcing the request
# names besides (the asker's language, the owner's nickname, the item's first photo), and — as committed now, without
# a lock — the rules a refusal in a deal room already open rests on (``_REQUEST_CHECKS``' own: the asker's open
# requests, the room busy, the dates taken). %(borrower)s, %(key)s (the room's), %(item)s, and TAKEN's.
_REQUEST_ITEM = (
    "SELECT i.id, i.owner_id, i.status, i.price_per_day, i.deposit, i.available_from, i.available_until, i.title,"
    " EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = %(borrower)s AND b.blocked_id = i.owner_id) AS i_blocked,"
    " EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = i.owner_id AND b.blocked_id = %(borrower)s) AS blocked_me,"
    " me.nickname, me.locale AS my_locale, (SELECT o.nickname FROM users o WHERE o.id = i.owner_id) AS owner_nickname,"
    " (SELECT p.thumb_key FROM item_photos p WHERE p.item_id = i.id ORDER BY p.position LIMIT 1) AS thumb,"
    " r.id AS room_id, r.kind AS room_kind, r.item_id AS room_item_id, r.owner_id AS room_owner_id,"
    " r.borrower_id AS room_borrower_id, r.last_seq AS room_last_seq, mine.n, mine.here, mine.soonest,"
    f" r.id IS NOT NULL AND EXISTS (SELECT 1 FROM contracts WHERE room_id = r.id AND (state IN"
    f" ({', '.join(repr(s) for s in BUSY)}) OR {PAYMENT_OPEN})) AS busy, {TAKEN} AS taken,"
    f" {TAKEN_UNTIL} AS taken_until, IF(r.id IS NULL, NULL, {BUSY_DATES_JSON}) AS busy_dates"
    " FROM items i LEFT JOIN users me ON me.id = %(borrower)s LEFT JOIN rooms r ON r.unique_key = %(key)s"
    " JOIN (SELECT COUNT(*) AS n, COALESCE(SUM(item_id = %(item)s), 0) AS here, MIN(expires_at) AS soonest"
    " FROM contracts WHERE borrower_id = %(borrower)s AND state IN ('REQUESTED','ACCEPTED') AND expires_at > %(now)s)"
    " mine WHERE i.id = %(item)s")
# A request's locks: the borrower's row, then the item's (its status: taken off meanwhile?). %(borrower)s, %(item)s
_REQUEST_LOCKS = ("SELECT id FROM users WHERE id = %(borrower)s FOR UPDATE;"
                  " SELECT status FROM items WHERE id = %(item)s FOR UPDATE")
# Every rule of a new hold, asked at once under the item's row lock: a block either way between the two (made
# since the first read), the borrower's open requests (``n``; ``here``: for this item; ``soonest``: the first of
# them to expire), another contract open in the deal room (``busy``), the dates held by someone else (``taken``;
# ``taken_until``: TAKEN_UNTIL); and how the owner is told of the request (their language; ``muted``: they turned
# such notifications off).
_REQUEST_CHECKS = (
    "SELECT mine.n, mine.here,"
    " EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = %(borrower)s AND b.blocked_id = %(owner)s) AS i_blocked,"
    " EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = %(owner)s AND b.blocked_id = %(borrower)s) AS blocked_me,"
    f" EXISTS (SELECT 1 FROM contracts WHERE room_id = %(room)s AND (state IN ({', '.join(repr(s) for s in BUSY)})"
    f" OR {PAYMENT_OPEN})) AS busy, {TAKEN} AS taken, {TAKEN_UNTIL} AS taken_until, mine.soonest,"
    " (SELECT u.locale FROM users u WHERE u.id = %(owner)s) AS locale,"
    " EXISTS (SELECT 1 FROM notification_mutes m WHERE m.user_id = %(owner)s AND m.kind = 'request_received') AS muted"
    " FROM (SELECT COUNT(*) AS n, COALESCE(SUM(item_id = %(item)s), 0) AS here, MIN(expires_at) AS soonest"
    " FROM contracts"
    " WHERE borrower_id = %(borrower)s AND state IN ('REQUESTED','ACCEPTED') AND expires_at > %(now)s) mine")
# The same when the two have no deal room yet (the request opens it in its own transaction), with what telling the
# owner of the new inquiry reads of them (``inq_*``; %(sender)s: the borrower, %(window)s: the inquiry window).
_REQUEST_CHECKS_NEW_ROOM = (_REQUEST_CHECKS.replace("SELECT mine.n,", f"SELECT {inquiry_columns('inq_')}, mine.n,", 1)
                            + " JOIN users u ON u.id = %(owner)s")


@dataclass(frozen=True, slots=True)
class Told:
    """Whom a committed request notified, and the unread counts read right after its commit (None: not read)."""

    people: set[int]
    counts: dict[int, int] | None


class Rentals(Jobs, Availability):
    def __init__(self, db: Database, chat: Chat, pay: BilliPay | None, rules: Rules,
                 notifications: Notifications | None = None, clock: Clock | None = None) -> None:
        self.db = db
        self.chat = chat
        self.pay = pay
        self.rules = rules
        self.notifications = notifications
        self.clock = clock or Clock()
        self.on_event: EventHook | None = None
        self._told: set[int] = set()  # people notified by transactions since the last ping
        self.job_failures: CountOf[str] = CountOf()  # scheduler rows (or whole jobs) that failed, by job

    # -- reading -----------------------------------------------------------------------------------------
    async def get(self, contract_id_: Any, user_id: int | None = None) -> Contract:
        """A contract; with ``user_id``, only for its parties (anyone else sees "not found")."""
        cid = contract_id(contract_id_)
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
            f"SELECT * FROM contracts WHERE room_id = %s AND state IN ({marks(states)}) ORDER BY id DESC LIMIT 1",
            (room_id, *states))
        return None if row is None else Contract.from_row(row)

    async def mine(self, user_id: int, role: str = "borrower", limit: int = 50) -> list[Contract]:
        column = "borrower_id" if role == "borrower" else "owner_id"
        rows = await self.db.fetchall(f"SELECT * FROM contracts WHERE {column} = %s ORDER BY id DESC LIMIT %s",
                                      (user_id, limit))
        return [Contract.from_row(r) for r in rows]

    async def events(self, contract_id_: int) -> list[dict[str, Any]]:
        rows = await self.db.fetchall("SELECT * FROM contract_events WHERE contract_id = %s ORDER BY id",
                                      (contract_id_,))
        return [event_dict(r) for r in rows]

    async def photos(self, contract_id_: int) -> list[dict[str, Any]]:
        rows = await self.db.fetchall("SELECT user_id, stage, object_key, created_at FROM contract_photos"
                                      " WHERE contract_id = %s ORDER BY id", (contract_id_,))
        return [{"user_id": r["user_id"], "stage": r["stage"], "key": r["object_key"],
                 "at": r["created_at"].isoformat(timespec="seconds") + "Z"} for r in rows]

    async def waiting_on_operator(self, ids: list[int]) -> set[int]:
        """Of these contracts, those whose money or claim waits for an operator: a dispute (a claim or a
        contested hand-over), a transfer the bank never answered finally (review) or contradicted (suspense),
        a payout refused three times."""
        if not ids:
            return set()
        rows = await self.db.fetchall(
            f"SELECT id FROM contracts WHERE id IN ({marks(ids)}) AND (state = 'DISPUTED' OR EXISTS (SELECT 1 FROM"
            " transfers t WHERE t.contract_id = contracts.id AND (t.state IN ('review', 'suspense') OR"
            " (t.direction = 'deposit' AND t.state = 'failed' AND t.id = (SELECT MAX(x.id) FROM transfers x WHERE"
            " x.purpose = t.purpose) AND (SELECT COUNT(*) FROM transfers y WHERE y.purpose = t.purpose) >= %s))))",
            (*ids, PAYOUT_TRIES))
        return {int(r["id"]) for r in rows}

    async def disputes(self) -> list[Contract]:
        rows = await self.db.fetchall("SELECT * FROM contracts WHERE state = 'DISPUTED' ORDER BY updated_at")
        return [Contract.from_row(r) for r in rows]

    def quote(self, price_per_day: int, deposit: int, start: date, end: date) -> dict[str, int]:
        days = (end - start).days + 1
        rent = price_per_day * days
        fee = self.rules.fee(rent)
        return {"days": days, "rent": rent, "fee": fee, "deposit": deposit, "total": rent + fee + deposit}

    # -- request -----------------------------------------------------------------------------------------
    async def request(self, borrower_id: int, item_id: Any, start: date, end: date) -> tuple[Contract, bool]:
        """A rental request; returns the contract and whether its deal room was just created. Refused while the
        borrower and the owner blocked one another (``market.people.blocks``).

        Every request on every node pays for this, so each thing is read once: the item, the blocks between the
        two and the deal room in one query; then, under the item's row lock, every rule of a new hold in one
        more (``_REQUEST_CHECKS``); the deal room if there is none yet, the contract, its event and the owner's
        notifications written from what those two said (nothing read back), all in one transaction."""
        iid = contract_id(item_id, "item.not_found")
        self.check_dates(start, end)
        first = self.params(item=iid, exclude=0, start=start, end=end, borrower=borrower_id,
                            key=f"deal:{iid}:{borrower_id}")
        item = await self.db.fetchone(_REQUEST_ITEM, first)
        if item is None or item["status"] in ("deleted", "hidden"):
            raise NotFound("item.not_found")
        if item["owner_id"] == borrower_id:
            raise Conflict("rental.own_item")
        error = refusal({who for who, blocked in ((borrower_id, item["i_blocked"]), (item["owner_id"],
                                                                                   item["blocked_me"])) if blocked},
                        borrower_id, "block.cannot_request")
        if error is not None:
            raise error
        if start < item["available_from"] or (item["available_until"] and end > item["available_until"]):
            until = item["available_until"]
            raise InvalidInput("rental.outside_availability", field="dates", start=item["available_from"].isoformat(),
                               end=until.isoformat() if until else "-")
        room: Room | None = None
        quote = self.quote(item["price_per_day"], item["deposit"], start, end)
        if item["room_id"] is not None:
            room = Room(item["room_id"], item["room_kind"], item["room_item_id"], item["room_owner_id"],
                        item["room_borrower_id"], item["room_last_seq"])
            await self._refused_as_read(iid, item, start, quote["days"], first["now"])
        else:
            await self.chat.may_open_deal_room(borrower_id)  # (counted before anything is locked)
        try:
            room, created, made, event, busy, told = await self._hold_again(borrower_id, iid, item, room, start, end,
                                                                            quote)
        except pymysql.err.IntegrityError as e:  # a concurrent inquiry opened the deal room meanwhile: that one is it
            if e.args[0] != 1062 or room is not None:  # (anything else is no such race: it is not answered by one)
                raise
            room, created = await self.chat.open_deal_room(iid, borrower_id)
            try:
                room, _, made, event, busy, told = await self._hold_again(borrower_id, iid, item, room, start, end,
                                                                          quote)
            except Conflict as refused:
                if created:
                    refused.opened_room = (room.id, [item["owner_id"], borrower_id])
                raise
        await self.ping(told)
        if made is None:
            await self.flush_told()  # (the owner of a deal room opened all the same)
            taken = DatesTaken(await self.free_ranges(iid, start, quote["days"], item=item, busy_rows=busy))
            if created:
                taken.opened_room = (room.id, [item["owner_id"], borrower_id])
            raise taken
        await self.flush(made.id, fresh=[{**event, "contract": made}])  # (announced from what was just written)
        return made, created

    async def _refused_as_read(self, iid: int, item: Row, start: date, days: int, now: datetime) -> None:
        """A request in a deal room already open that the rules refuse as committed when it was read is refused
        without a transaction — it writes nothing, so it locks nothing — when what refused it outlives any wait
        for the locks: ``_hold`` would refuse it too, with the clock after them, unless another transaction freed
        it meanwhile (and a refusal read just before that is one the request could have met a moment earlier).
        Everything else is asked again under the locks. In ``_hold``'s order: already asked, the room busy, too
        many open requests, the dates taken."""
        deadline = self.db.deadline_s
        if deadline is None:  # (a lock may be waited for without end: only what lasts for good outlives it)
            horizon = datetime(9998, 1, 1)
        else:  # (the two locks, each waited for until its statement is cut off, and some)
            horizon = now + timedelta(seconds=3 * deadline)
        live = item["soonest"] is not None and item["soonest"] > horizon  # (every open request of the asker)
        # A rule that applies but cannot be decided without the locks stops here: no later rule answers first.
        if item["here"]:
            if live:
                raise Conflict("rental.already_requested")
            return
        if item["busy"]:
            raise Conflict("rental.room_busy")
        if item["n"] >= self.rules.max_open_requests:
            if live:
                raise Conflict("rental.too_many_requests", max=self.rules.max_open_requests)
            return
        if item["taken"] and item["taken_until"] is not None and item["taken_until"] > horizon:
            # (the free ones as of the same read: its ``busy_dates``, read with it when the deal room is open)
            raise DatesTaken(await self.free_ranges(iid, start, days, item=item, busy_rows=busy_of(item["busy_dates"])))

    async def _hold_again(self, *args: Any
                          ) -> tuple[Room, bool, Contract | None, dict[str, Any], list[Row] | None, Told]:
        """``_hold``, sent through again when MariaDB picked it to end a deadlock or its lock wait ran out (the
        transaction rolled back whole: nothing of it stayed). Two neighbours asking for each other's things at once
        deadlock: each holds its borrower's row, and each insert checks the other's (foreign keys)."""
        for attempt in range(4):
            try:
                return await self._hold(*args)
            except pymysql.err.OperationalError as e:
                if e.args[0] not in (1213, 1205) or attempt == 3:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _hold(self, borrower_id: int, iid: int, item: Row, room: Room | None, start: date, end: date,
                    quote: dict[str, int]
                    ) -> tuple[Room, bool, Contract | None, dict[str, Any], list[Row] | None, Told]:
        """A request's transaction: the locks, every rule of a new hold, the deal room if the two have none yet
        (``room`` None: it is opened here, told to the owner), and the contract with its event. Returns the room,
        whether it was opened, and the contract and its event — None when the dates are taken (the deal room
        opened all the same; then also what ``BUSY_DATES`` says of the item, read before the commit). A refusal raises; the person's open-requests limit only after the deal room is
        committed, as a room once asked for stays.

        Two round trips: BEGIN with the locks and the rules; then everything written, with COMMIT (``Tail``)."""
        refused: Conflict | None = None
        told_here: set[int] = set()  # (the owner, when told: pinged with the count read after the commit)
        created = room is None
        event: dict[str, Any] = {}
        made: Contract | None = None
        owner_id = item["owner_id"]
        checks_sql = _REQUEST_CHECKS if room is not None else _REQUEST_CHECKS_NEW_ROOM

        def params() -> dict[str, Any]:
            return self.params(item=iid, exclude=0, start=start, end=end, borrower=borrower_id,
                               room=room.id if room is not None else 0, owner=owner_id, sender=borrower_id,
                               window=self.notifications.inquiry_window_s if self.notifications else 0)

        p = params()
        # The borrower's row first, then the item's (always in that order): their open requests on other items are
        # counted under it, so racing requests for several items cannot pass the limit together. The rules are
        # asked in the same round trip, so under both locks.
        async with self.db.transaction(first=(_REQUEST_LOCKS + "; " + checks_sql, p)) as cur:
            await cur.fetchall()  # (the borrower's row)
            status = await cur.next_rows()
            found = await cur.next_rows()
            if not status or status[0]["status"] in ("deleted", "hidden"):  # taken off meanwhile (its owner left)
                raise NotFound("item.not_found")
            if not found:  # (the owner's account is gone: so is the item)
                raise NotFound("item.not_found")
            checks = found[0]
            # The rules that hang on the clock were asked with its time from before the locks. A later time only
            # frees dates and open requests (on the same day in Seoul): what they allowed stands. What they refused
            # stands too while what refused it is still live (``soonest``: the first of the borrower's open
            # requests to expire, ``taken_until``: the last hold over the dates that expires); else it is asked
            # again with the time after the locks — a hold that expired while this waited is free.
            now = self.clock.now()
            if p["today"] != seoul_day(now) or (
                    (checks["here"] or checks["n"] >= self.rules.max_open_requests) and checks["soonest"] is not None
                    and checks["soonest"] <= now
            ) or (checks["taken"] and not (checks["taken_until"] and checks["taken_until"] > now)):
                p = params()
                await cur.execute(checks_sql, p)
                checks = await cur.fetchone()
                if checks is None:
                    raise NotFound("item.not_found")
                now = p["now"]
            error = refusal({who for who, blocked in ((borrower_id, checks["i_blocked"]),
                                                      (owner_id, checks["blocked_me"])) if blocked},
                            borrower_id, "block.cannot_request")
            if error is not None:  # a block made since the first read
                raise error
            if checks["here"]:
                raise Conflict("rental.already_requested")
            # One open contract per deal room: its photos and commands must name one contract.
            if checks["busy"]:
                raise Conflict("rental.room_busy")
            tail = Tail()
            opened = told = made_at = event_at = None
            room_sql = None if room is None else str(int(room.id))
            if room is None:
                opened, told = self.chat.deal_room_later(
                    tail, iid, borrower_id, item, owner={k[4:]: v for k, v in checks.items() if k.startswith("inq_")})
                room_sql = "@billi_room"
            if checks["n"] >= self.rules.max_open_requests:
                refused = Conflict("rental.too_many_requests", max=self.rules.max_open_requests)
            elif not checks["taken"]:
                made = Contract.new(item_id=iid, owner_id=owner_id, borrower_id=borrower_id,
                                    room_id=room.id if room is not None else 0, start_date=start, end_date=end,
                                    price_per_day=item["price_per_day"], deposit=item["deposit"], rent=quote["rent"],
                                    fee=quote["fee"], expires_at=now + timedelta(seconds=self.rules.request_ttl_s),
                                    created_at=now)
                made_at = tail.add(
                    "INSERT INTO contracts (item_id, owner_id, borrower_id, room_id, state, start_date, end_date,"
                    f" price_per_day, deposit, rent, fee, expires_at, created_at) VALUES (%s, %s, %s, {room_sql},"
                    " 'REQUESTED', %s, %s, %s, %s, %s, %s, %s, %s)",
                    iid, owner_id, borrower_id, start, end, made.price_per_day, made.deposit, made.rent, made.fee,
                    made.expires_at, now)
                tail.add("SET @billi_contract = LAST_INSERT_ID()")
                event_at, event = self.event_later(
                    tail, "@billi_contract", "requested", "borrower", borrower_id, None, "REQUESTED",
                    {"days": quote["days"]}, room=room_sql,
                    about=Party.of(made, item["title"], {owner_id: Reader(checks["locale"], bool(checks["muted"]))}),
                    told=told_here)
            busy_at = None
            if refused is None and made is None:  # (the dates are taken: the free ones are told, as of now)
                at = self.params(item=iid)
                busy_at = tail.add(cur.mogrify(BUSY_DATES, {k: at[k] for k in ("item", "today", "now")}))
            # The owner's unread count, should they be told, read right after the COMMIT (in its round trip).
            count_at = None if told is None and not told_here or self.notifications is None else tail.read_after(
                UNREAD, owner_id)
            if tail.statements:
                done, reads = await tail.commit(cur)
        if opened is not None:
            room = Room(done[opened][1], "deal", iid, owner_id, borrower_id, 0)  # (as just inserted)
            if told is not None and done[told][0] == 1:
                told_here.add(owner_id)
        unread = reads[count_at] if count_at is not None else None
        told_now = Told(told_here, {owner_id: int(unread[0]["n"])} if unread else None)
        assert room is not None
        if made is not None and made_at is not None and event_at is not None:
            made = made.but(id=done[made_at][1], room_id=room.id)
            # (with what announcing it names, as read: the two people and the item)
            event = {**event_dict({**event, "id": done[event_at][1], "contract_id": made.id}), "people": {
                "o_nickname": item["owner_nickname"], "o_locale": checks["locale"], "b_nickname": item["nickname"],
                "b_locale": item["my_locale"], "title": item["title"], "thumb": item["thumb"]}}
        if refused is not None:
            await self.ping(told_now)
            await self.flush_told()
            if created:
                refused.opened_room = (room.id, [owner_id, borrower_id])
            raise refused
        return room, created, made, event, None if busy_at is None else done[busy_at][2], told_now

    async def ping(self, told: Told) -> None:
        """Push the unread counts of the people a committed request told."""
        if told.people and self.notifications is not None:
            await self.notifications.ping(told.people, told.counts)

    async def flush_told(self) -> None:
        """Push the unread counts of whoever committed transactions notified (``flush`` does it first too)."""
        if self._told and self.notifications is not None:
            told, self._told = self._told, set()
            await self.notifications.ping(told)

    # -- the owner's answer, cancelling ------------------------------------------------------------------
    async def accept(self, owner_id: int, contract_id_: Any) -> Contract:
        return await self.apply("accept", contract_id_, owner_id)

    async def decline(self, owner_id: int, contract_id_: Any) -> Contract:
        return await self.apply("decline", contract_id_, owner_id)

    async def cancel(self, user_id: int, contract_id_: Any) -> Contract:
        """The borrower withdraws (REQUESTED, ACCEPTED, or PAID before hand-over, by the refund rule); the owner
        cancels an accepted or paid rental (always a full refund); the owner's "cancel" of a request declines it."""
        c = await self.get(contract_id_, user_id)
        if c.state == "REQUESTED" and c.role(user_id) == "owner":
            return await self.decline(user_id, c.id)
        return await self.apply("cancel", c.id, user_id)

    # -- hand-over ---------------------------------------------------------------------------------------
    async def hand_over(self, user_id: int, contract_id_: Any) -> Contract:
        """The owner's "전달 완료" or the borrower's "수령 완료"; with both, the rental is IN_USE."""
        def check(c: Contract) -> None:
            if (c.owner_handed_at if c.role(user_id) == "owner" else c.borrower_got_at) is not None:
                raise Conflict("rental.already_confirmed")

        return await self.apply("hand_over", contract_id_, user_id, check=check)

    async def object_handover(self, user_id: int, contract_id_: Any) -> Contract:
        """"아직 못 받았어요" against the other side's one-sided hand-over confirmation: it never becomes both by
        itself, and nobody's word alone ends it (no refund to a borrower who has the item, no rent to an owner
        who kept it): the contract goes to an operator (DISPUTED), and both are told."""
        c = await self.get(contract_id_, user_id)
        return await self.apply("object_handover", c.id, user_id, data={"by": c.role(user_id)})

    async def resolve_handover(self, contract_id_: Any, handed: bool | None, note: Any = "") -> Contract:
        """An operator's decision on a contested hand-over: it happened (the rental runs, IN_USE, due no earlier
        than today), it did not (cancelled, everything refunded), or — ``None`` — not yet (a confirmation
        pressed early: back to PAID, both confirm again when they meet)."""
        text = v.text({"note": note}, "note", max_len=MAX_NOTE, multiline=True, required=False, default="") or ""
        action = {True: "resolve_handed", False: "resolve_not_handed", None: "resolve_not_yet"}[handed]
        return await self.apply(action, contract_id_, values={"note": text}, data={"note": text})

    # -- the return --------------------------------------------------------------------------------------
    async def mark_returned(self, user_id: int, contract_id_: Any) -> Contract:
        """"반납 완료" from the borrower declares the return (the owner is asked); "반납 받음" from the owner
        confirms it: the item is back."""
        c = await self.get(contract_id_, user_id)
        if c.role(user_id) == "owner":
            return await self.confirm_return(user_id, c.id)
        return await self.declare_return(user_id, c.id)

    async def declare_return(self, borrower_id: int, contract_id_: Any) -> Contract:
        """The borrower says the item is back: the time is kept (late fees stop there once the owner confirms)
        and the owner is asked; nothing else changes until the owner confirms, objects, or stays silent."""
        return await self.apply("declare_return", contract_id_, borrower_id)

    async def confirm_return(self, owner_id: int, contract_id_: Any) -> Contract:
        """The owner's "반납 받음": RETURNED, late fees counted to the declared day; the inspection window starts."""
        return await self.apply("confirm_return", contract_id_, owner_id)

    async def object_return(self, owner_id: int, contract_id_: Any) -> Contract:
        """The owner's "아직 못 받았어요": the declared return is withdrawn; the rental (and its late fees) runs on."""
        return await self.apply("object_return", contract_id_, owner_id)

    async def confirm_ok(self, owner_id: int, contract_id_: Any) -> Contract:
        """The owner's "정상 반납": settle now, deposit back minus late fees."""
        return await self.apply("confirm_ok", contract_id_, owner_id)

    # -- claims ------------------------------------------------------------------------------------------
    async def claim(self, owner_id: int, contract_id_: Any, amount: Any, note: Any) -> Contract:
        """The owner's damage claim: 1 won to (deposit − late fees), within the inspection window. The rent (and
        late fees) nobody disputes go to the owner now."""
        c = await self.get(contract_id_, owner_id)
        limit = self.claim_limit(c)
        if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= max(limit, 1):
            raise InvalidInput("rental.bad_claim", field="amount", max=limit)
        text = v.text({"note": note}, "note", max_len=MAX_NOTE, multiline=True, required=False, default="") or ""

        def check(c: Contract) -> None:
            if amount > self.claim_limit(c):
                raise InvalidInput("rental.bad_claim", field="amount", max=self.claim_limit(c))

        if c.role(owner_id) == "owner" and c.state == "RETURNED":
            await self.db.execute("UPDATE contract_photos SET stage = 'claim' WHERE contract_id = %s AND user_id = %s"
                                  " AND stage = 'return'", (c.id, owner_id))
        return await self.apply("claim", c.id, owner_id, values={"amount": amount, "note": text}, check=check,
                                data={"amount": amount, "note": text})

    async def report_lost(self, owner_id: int, contract_id_: Any) -> Contract:
        """The owner's "분실": a claim for the whole deposit (late fees so far included), which the borrower
        accepts or disputes like a damage claim. The rent nobody disputes goes to the owner now."""
        return await self.apply("report_lost", contract_id_, owner_id)

    async def accept_claim(self, borrower_id: int, contract_id_: Any) -> Contract:
        return await self.apply("accept_claim", contract_id_, borrower_id)

    async def dispute(self, borrower_id: int, contract_id_: Any, note: Any = "") -> Contract:
        text = v.text({"note": note}, "note", max_len=MAX_NOTE, multiline=True, required=False, default="") or ""
        return await self.apply("dispute", contract_id_, borrower_id, data={"note": text})

    async def resolve(self, contract_id_: Any, amount: Any, note: Any = "") -> Contract:
        """An operator's decision on a disputed claim: the owner gets ``amount`` (0 … the claim) of the deposit."""
        c = await self.get(contract_id_)
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= (c.claim_amount or 0):
            raise InvalidInput("rental.bad_resolution", field="amount", max=c.claim_amount or 0)
        text = v.text({"note": note}, "note", max_len=MAX_NOTE, multiline=True, required=False, default="") or ""
        return await self.apply("resolve", c.id, values={"amount": amount, "note": text},
                                data={"amount": amount, "note": text})

    # -- extensions --------------------------------------------------------------------------------------
    async def propose_appointment(self, user_id: int, contract_id_: Any, at: Any, place: Any) -> Contract:
        """약속 잡기: a hand-over time (Seoul, "2026-12-05T14:00") and place, proposed to the other person."""
        c = await self.get(contract_id_, user_id)
        try:
            local = datetime.fromisoformat(str(at))
            if local.tzinfo is not None:
                local = local.astimezone(SEOUL).replace(tzinfo=None)
            when = local.replace(second=0, microsecond=0) - timedelta(hours=9)  # stored in UTC
        except (ValueError, OverflowError):
            raise InvalidInput("rental.bad_appointment_time", field="at", end=c.end_date.isoformat()) from None
        if not self.clock.now() < when < datetime.combine(c.end_date, time()) + timedelta(hours=15):
            raise InvalidInput("rental.bad_appointment_time", field="at", end=c.end_date.isoformat())
        try:
            where = v.text({"place": place}, "place", max_len=100)
        except InvalidInput:
            where = None
        if not where:
            raise InvalidInput("rental.bad_place", field="place")
        return await self.apply("propose_appointment", c.id, user_id, values={"at": when, "place": where},
                                data={"at": when.isoformat(), "place": where})

    async def agree_appointment(self, user_id: int, contract_id_: Any, at: Any) -> Contract:
        """Agree to the other person's proposal — the one proposed for ``at`` (a later one needs its own yes)."""
        try:
            when = datetime.fromisoformat(str(at))
        except (ValueError, OverflowError):
            raise Conflict("rental.no_appointment") from None
        return await self.apply("agree_appointment", contract_id_, user_id, values={"at": when})

    async def request_extension(self, borrower_id: int, contract_id_: Any, new_end: Any) -> Contract:
        c = await self.get(contract_id_, borrower_id)
        if not isinstance(new_end, date):
            raise InvalidInput("rental.bad_dates", field="dates")
        if new_end <= c.end_date or new_end < self.clock.today():
            raise InvalidInput("rental.extension_not_later", field="dates")
        if (new_end - c.start_date).days + 1 > self.rules.max_days:
            raise InvalidInput("rental.too_long", field="dates", max=self.rules.max_days)
        extra_days = (new_end - c.end_date).days
        rent = extra_days * c.price_per_day
        fee = self.rules.fee(rent)
        async with self.db.transaction() as cur:
            await cur.execute("SELECT id FROM items WHERE id = %s FOR UPDATE", (c.item_id,))
            if await self.taken(cur, c.item_id, c.end_date + timedelta(days=1), new_end, exclude=c.id):
                raise Conflict("rental.extension_taken")
        return await self.apply("request_extension", c.id, borrower_id,
                                values={"end": new_end, "rent": rent, "fee": fee},
                                data={"end_date": new_end.isoformat(), "days": extra_days, "rent": rent, "fee": fee})

    async def decline_extension(self, owner_id: int, contract_id_: Any) -> Contract:
        return await self.apply("decline_extension", contract_id_, owner_id)

    # -- evidence ----------------------------------------------------------------------------------------
    async def add_photo(self, room_id: int, user_id: int, key: str) -> Contract | None:
        """A party's photo in the deal room while the item changes hands (or comes back) is kept as evidence."""
        c = await self.in_room(room_id)
        if c is None or c.role(user_id) is None or c.state not in ("PAID", "IN_USE", "OVERDUE", "RETURNED",
                                                                   "CLAIMED", "DISPUTED"):
            return None
        stage = {"PAID": "handover", "RETURNED": "return", "CLAIMED": "claim", "DISPUTED": "dispute"}.get(
            c.state, "in_use")
        await self.db.execute("INSERT IGNORE INTO contract_photos (contract_id, user_id, stage, object_key, created_at)"
                              " VALUES (%s, %s, %s, %s, %s)", (c.id, user_id, stage, key[:255], self.clock.now()))
        return c
