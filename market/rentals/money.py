"""The money of a contract: the escrow ledger and its split, the effects of the machine's edges, the bank
transfers a contract makes (payment, extension charge, payouts and refunds) and what their answers do.

Integer won. The borrower pays rent + fee + deposit into ``escrow:<contract>``; the escrow is split exactly
into ``fees``, ``payable:<owner>`` and ``payable:<borrower>``, each payable amount queued as a bank deposit
transfer and moved to ``bank:<person>`` when the bank confirms it. Every movement is two ledger rows with one
movement id (unique, so a repeat is a no-op). When a claim opens, what nobody disputes leaves the escrow at once.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from market.billipay import BANK_REASONS, BilliPay, Outcome
from market.db import Row
from market.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from market.clock import day_start, seoul_day
from market.rentals.contract import HOLDING, Contract
from market.rentals.machine import Machine

if TYPE_CHECKING:
    from market.clock import Clock

log = logging.getLogger("billi.rentals")
PAYOUT_TRIES = 3  # a payout the bank refuses this often waits for an operator (billi payouts)
OPEN_TRANSFER = ("pending", "sending", "unknown", "review")


class Money(Machine):
    pay: BilliPay | None
    clock: Clock
    if TYPE_CHECKING:
        async def taken(self, cur: Any, item_id: int, start: date, end: date, exclude: int = 0) -> bool: ...

    # -- the edges' effects (machine.py names them) -----------------------------------------------------
    async def effect_cancel(self, cur: Any, before: Contract, after: Contract, p: dict[str, Any]) -> dict[str, Any]:
        await self.no_transfer_in_flight(cur, before.id, "pay")
        if before.state != "PAID":
            return {}
        terms = self.cancel_terms(before, p["role"])
        await self.split(cur, before, fees=int(terms["fee_part"]), owner=int(terms["owner_part"]),
                         borrower=int(terms["refund"]))
        return terms

    async def effect_no_payment_in_flight(self, cur: Any, before: Contract, after: Contract,
                                          p: dict[str, Any]) -> dict[str, Any]:
        await self.no_transfer_in_flight(cur, before.id, "pay")
        return {}

    async def effect_extension_unchanged(self, cur: Any, before: Contract, after: Contract,
                                         p: dict[str, Any]) -> dict[str, Any]:
        """An extension does not change while the charge for it may still land."""
        await self.no_transfer_in_flight(cur, before.id, "ext")
        return {}

    async def effect_refund_all(self, cur: Any, before: Contract, after: Contract, p: dict[str, Any]) -> dict[str, Any]:
        await self.split(cur, before, fees=0, owner=0, borrower=before.total)
        return {"refund": before.total}

    async def effect_lateness(self, cur: Any, before: Contract, after: Contract, p: dict[str, Any]) -> dict[str, Any]:
        days, fee = before.lateness(p["today"])
        return {"late_days": days, "late_fee": fee, "confirm_h": self.rules.return_confirm_s // 3600}

    async def effect_late_fees(self, cur: Any, before: Contract, after: Contract, p: dict[str, Any]) -> dict[str, Any]:
        """The return is confirmed: late fees up to the day the borrower declared it (else today). An extension
        charge still in flight that lands later moves the end date and takes back the fees it pays for."""
        day = seoul_day(before.return_declared_at) if before.return_declared_at else p["today"]
        days, fee = before.lateness(day)
        await cur.execute("UPDATE contracts SET late_fee = %s WHERE id = %s", (fee, before.id))
        return {"late_days": days, "late_fee": fee, "declared": before.return_declared_at is not None}

    async def effect_settle(self, cur: Any, before: Contract, after: Contract, p: dict[str, Any]) -> dict[str, Any]:
        await self.no_transfer_in_flight(cur, before.id, "ext")
        return await self.settle_money(cur, before, 0)

    async def effect_settle_claim(self, cur: Any, before: Contract, after: Contract,
                                  p: dict[str, Any]) -> dict[str, Any]:
        return await self.settle_money(cur, before, before.claim_amount or 0)

    async def effect_settle_decision(self, cur: Any, before: Contract, after: Contract,
                                     p: dict[str, Any]) -> dict[str, Any]:
        return await self.settle_money(cur, before, int(p["amount"]))

    async def effect_undisputed(self, cur: Any, before: Contract, after: Contract, p: dict[str, Any]) -> dict[str, Any]:
        # (an extension charge still in flight that lands now is refunded: the claim counted the late fees)
        return await self.pay_undisputed(cur, after)

    async def effect_lost(self, cur: Any, before: Contract, after: Contract, p: dict[str, Any]) -> dict[str, Any]:
        """분실: a claim for the whole deposit, and no late fees apart — they are part of what the borrower may
        dispute (an owner who said "not back yet" to a real return must not keep them undisputed)."""
        days, _ = before.lateness(p["today"])
        await cur.execute("UPDATE contracts SET late_fee = 0, claim_amount = deposit WHERE id = %s", (before.id,))
        paid = await self.pay_undisputed(cur, await self.lock(cur, before.id))
        return {**paid, "amount": before.deposit, "deposit": before.deposit, "late_days": days}

    # -- the rules of money ------------------------------------------------------------------------------
    def claim_limit(self, c: Contract) -> int:
        return c.deposit - c.late_fee

    def free_cancel(self, c: Contract) -> bool:
        return self.clock.now() <= day_start(c.start_date) - timedelta(seconds=self.rules.free_cancel_s)

    def cancel_terms(self, c: Contract, role: str) -> dict[str, int | bool]:
        """What cancelling now would mean, for the confirmation the bot shows."""
        if c.state != "PAID":
            return {"refund": 0, "owner_part": 0, "fee_part": 0, "free": True}
        free = role == "owner" or self.free_cancel(c)
        owner_part = 0 if free else c.rent * self.rules.late_cancel_percent // 100
        fee_part = 0 if free else c.fee
        return {"refund": c.total - owner_part - fee_part, "owner_part": owner_part, "fee_part": fee_part,
                "free": free}

    async def split(self, cur: Any, c: Contract, *, fees: int, owner: int, borrower: int) -> None:
        """Empty the contract's escrow: the fee to the platform, the rest owed to the owner and the borrower
        (and queued as bank deposits). The three parts must add up to exactly what the escrow holds."""
        await cur.execute("SELECT COALESCE(SUM(amount), 0) AS held FROM ledger WHERE account = %s",
                          (f"escrow:{c.id}",))
        held = int((await cur.fetchone())["held"])
        if min(fees, owner, borrower) < 0 or fees + owner + borrower != held:
            raise RuntimeError(f"contract {c.id}: split {fees}+{owner}+{borrower} != escrow {held}")
        await move(cur, f"c{c.id}:fee", c.id, f"escrow:{c.id}", "fees", fees, "fee")
        await move(cur, f"c{c.id}:owner", c.id, f"escrow:{c.id}", f"payable:{c.owner_id}", owner, "owner")
        await move(cur, f"c{c.id}:borrower", c.id, f"escrow:{c.id}", f"payable:{c.borrower_id}", borrower, "refund")
        await self.queue_payout(cur, c.id, c.owner_id, owner, "payout")
        await self.queue_payout(cur, c.id, c.borrower_id, borrower, "refund")

    async def settle_money(self, cur: Any, c: Contract, claim: int) -> dict[str, int]:
        await cur.execute("SELECT 1 FROM ledger WHERE movement = %s LIMIT 1", (f"c{c.id}:rent",))
        undisputed = await cur.fetchone() is None  # else paid when the claim opened
        owner = (c.rent + c.extra_rent + c.late_fee if undisputed else 0) + claim
        borrower = c.deposit - c.late_fee - claim
        fees = c.fee + c.extra_fee if undisputed else 0
        await self.split(cur, c, fees=fees, owner=owner, borrower=borrower)
        return {"owner": c.rent + c.extra_rent + c.late_fee + claim, "borrower": borrower,
                "fees": c.fee + c.extra_fee, "late_fee": c.late_fee, "claim": claim}

    async def pay_undisputed(self, cur: Any, c: Contract) -> dict[str, Any]:
        """When a claim opens, what nobody disputes — the rent (and extension rent and late fees) to the owner,
        the fee to the platform — leaves the escrow at once; the deposit less the late fees stays for the
        claim."""
        owner = c.rent + c.extra_rent + c.late_fee
        await move(cur, f"c{c.id}:rent", c.id, f"escrow:{c.id}", f"payable:{c.owner_id}", owner, "owner")
        await move(cur, f"c{c.id}:fee0", c.id, f"escrow:{c.id}", "fees", c.fee + c.extra_fee, "fee")
        await self.queue_payout(cur, c.id, c.owner_id, owner, "payout", tag="rent")
        return {"rent_paid": owner}

    async def queue_payout(self, cur: Any, cid: int, user_id: int, amount: int, kind: str, tag: str = "") -> None:
        """One payout (a purpose of its own: ``kind:contract:person[:tag]``) queued for sending."""
        if amount > 0:
            purpose = f"{kind}:{cid}:{user_id}" + (f":{tag}" if tag else "")
            await self.billipay().open_transfer(cur, purpose=purpose, contract_id=cid,
                                                user_id=user_id, direction="deposit", amount=amount, state="pending")

    async def no_transfer_in_flight(self, cur: Any, contract_id: int, kind: str) -> None:
        await cur.execute("SELECT state FROM transfers WHERE purpose = %s AND state IN ('pending','sending','unknown',"
                          "'review','done')", (f"{kind}:{contract_id}",))
        states = {r["state"] for r in await cur.fetchall()}
        if states & set(OPEN_TRANSFER):  # never a second payment while one may land
            raise Conflict("pay.in_progress")
        if "done" in states and kind == "pay":
            await cur.execute("SELECT state FROM contracts WHERE id = %s", (contract_id,))
            if (await cur.fetchone())["state"] == "ACCEPTED":
                raise Conflict("pay.in_progress")

    def billipay(self) -> BilliPay:
        if self.pay is None:
            raise Unavailable("pay.not_configured")
        return self.pay

    # -- the borrower pays --------------------------------------------------------------------------------
    async def pay_now(self, borrower_id: int, contract_id: Any, *, confirm: str | None = None) -> Contract:
        """Withdraw rent + fee + deposit from the borrower's linked account. A refusal leaves the contract
        ACCEPTED (raises with the bank's reason); a lost answer is settled by inquiry before anything else.
        An account never paid with before is charged only with ``confirm`` — the ``check`` of the account the
        borrower was shown (``BilliPay.first_use``) — else ``pay.confirm_link`` asks for it first."""
        pay = self.billipay()
        c = await self.get(contract_id, borrower_id)
        if c.role(borrower_id) != "borrower":
            raise Forbidden("rental.only_borrower")
        if await pay.account(borrower_id) is None:
            raise NotFound("pay.no_link")
        async with self.db.transaction() as cur:
            c = await self.lock(cur, c.id)
            if c.state in (*HOLDING, "RETURNED", "CLAIMED", "DISPUTED", "SETTLED"):
                raise Conflict("rental.already_paid")
            if c.state != "ACCEPTED":
                raise Conflict("rental.wrong_state", state=c.state)
            p = self.params(c.id, "borrower")
            for name in ("unexpired", "not_started"):  # the table's guards of "pay"
                await self.guard(cur, name, p)
            await self.no_transfer_in_flight(cur, c.id, "pay")
            await pay.confirm_first_use(cur, borrower_id, confirm)
            tid = await pay.open_transfer(cur, purpose=f"pay:{c.id}", contract_id=c.id, user_id=borrower_id,
                                          direction="withdraw", amount=c.total, state="pending")
        return await self._charge(tid, c.id)

    async def approve_extension(self, owner_id: int, contract_id: Any) -> Contract:
        """The owner approves; the extra rent (+ fee) is withdrawn from the borrower at once. The charge carries
        what it pays for (the end date, rent and fee)."""
        pay = self.billipay()
        c = await self.get(contract_id, owner_id)
        if c.role(owner_id) != "owner":
            raise Forbidden("rental.only_owner")
        async with self.db.transaction() as cur:
            await cur.execute("SELECT id FROM items WHERE id = %s FOR UPDATE", (c.item_id,))
            c = await self.lock(cur, c.id)
            if c.state not in ("IN_USE", "OVERDUE"):
                raise Conflict("rental.wrong_state", state=c.state)
            if c.ext_end_date is None or c.ext_rent is None or c.ext_fee is None:
                raise Conflict("rental.no_extension")
            if c.return_declared_at is not None:  # the item is back (says the borrower): no days to charge
                raise Conflict("rental.return_declared")
            await self.no_transfer_in_flight(cur, c.id, "ext")
            if await self.taken(cur, c.item_id, c.end_date + timedelta(days=1), c.ext_end_date, exclude=c.id):
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
        return await self._charge(tid, c.id)

    async def _charge(self, tid: int, cid: int) -> Contract:
        pay = self.billipay()
        outcome = await pay.send(tid, self.on_done, self.on_failed)
        if outcome.state == "unknown":
            outcome = await pay.inquire(tid, self.on_done, self.on_failed)
        await self.flush(cid)
        if outcome.state == "failed":
            raise Conflict(outcome.reason or "pay.declined")
        if outcome.state in ("pending", "sending", "unknown", "review"):
            raise Unavailable("pay.unknown")
        return await self.get(cid)

    # -- what the bank's final answer does (in the transaction that records it) ---------------------------
    async def on_done(self, cur: Any, t: Row) -> None:
        kind, cid = transfer_kind(t)
        if t["direction"] == "deposit":  # a payout or refund reached the person's bank
            await move(cur, f"t{t['id']}", cid, f"payable:{t['user_id']}", f"bank:{t['user_id']}", t["amount"], kind)
            c = await self.lock(cur, cid)
            await self.event(cur, cid, "paid_out", "system", None, c.state, c.state,
                             {"to": c.role(t["user_id"]), "amount": int(t["amount"]), "purpose": kind})
            return
        c = await self.lock(cur, cid)
        await move(cur, f"t{t['id']}", cid, f"bank:{c.borrower_id}", f"escrow:{cid}", t["amount"], kind)
        today = self.clock.today()
        if kind == "pay" and c.state == "ACCEPTED":
            # The payment may land long after it was made (a bank that answers late): the booking stands only
            # if the rental has not started and its dates are still free; else everything goes back.
            refused = ("rental.started" if c.start_date < today else
                       "rental.dates_taken" if await self.taken(cur, c.item_id, c.start_date, c.end_date, exclude=cid)
                       else None)
            if refused is None:
                # Paid on the day before the start (or on it): the payment's message is the news and asks them to
                # agree where to meet (starts_soon); a "starts tomorrow" reminder right after would only repeat it.
                soon = c.start_date <= today + timedelta(days=1)
                await cur.execute(
                    "UPDATE contracts SET state = 'PAID', expires_at = NULL, reminders = IF(start_date <= %s,"
                    " CONCAT_WS(',', NULLIF(reminders, ''), 'starts_tomorrow'), reminders) WHERE id = %s",
                    (today + timedelta(days=1), cid))
                await self.event(cur, cid, "paid", "borrower", c.borrower_id, "ACCEPTED", "PAID",
                                 {"amount": int(t["amount"]), **({"starts_soon": True} if soon else {})})
                return
            await cur.execute("UPDATE contracts SET state = 'EXPIRED' WHERE id = %s", (cid,))
            await self.refund_landed(cur, c, t, "EXPIRED", refused)
            return
        if kind == "ext":
            # What the charge pays for travels with it: the end date, rent and fee the owner approved.
            paid = json.loads(t.get("pays_for") or "null") or {
                "end_date": c.ext_end_date.isoformat() if c.ext_end_date else None, "rent": c.ext_rent, "fee": c.ext_fee}
            end = date.fromisoformat(paid["end_date"]) if paid.get("end_date") else None
            applies = (end is not None and c.state in ("IN_USE", "OVERDUE", "RETURNED") and end > c.end_date
                       and int(t["amount"]) == int(paid["rent"] or 0) + int(paid["fee"] or 0)
                       and not await self.taken(cur, c.item_id, c.end_date + timedelta(days=1), end, exclude=cid))
            if applies:
                assert end is not None
                late_fee = c.late_fee
                if c.state == "RETURNED":  # returned meanwhile: the late fees for the days it pays for go
                    back = c.return_declared_at or c.returned_at
                    late_fee = c.but(end_date=end).lateness(seoul_day(back) if back else today)[1]
                    to = "RETURNED"
                else:
                    to = "IN_USE" if end >= today else "OVERDUE"
                await cur.execute(
                    "UPDATE contracts SET state = %s, end_date = %s, extra_rent = extra_rent + %s, extra_fee ="
                    " extra_fee + %s, late_fee = %s, ext_end_date = NULL, ext_rent = NULL, ext_fee = NULL,"
                    " reminders = '', overdue_reminded_on = NULL WHERE id = %s",
                    (to, end, int(paid["rent"]), int(paid["fee"]), late_fee, cid))
                await self.event(cur, cid, "extended", "owner", c.owner_id, c.state, to,
                                 {"end_date": end.isoformat(), "amount": int(t["amount"]),
                                  "late_fee_removed": c.late_fee - late_fee})
                return
            if c.ext_end_date is not None and end == c.ext_end_date:
                await cur.execute("UPDATE contracts SET ext_end_date = NULL, ext_rent = NULL, ext_fee = NULL"
                                  " WHERE id = %s", (cid,))
        # the money came after the contract moved on (it expired, was cancelled, settled): give it all back
        await self.refund_landed(cur, c, t, c.state, "late")

    async def refund_landed(self, cur: Any, c: Contract, t: Row, to: str, reason: str) -> None:
        """A withdrawal that landed when it could no longer buy what it was for: all of it back to the borrower,
        as a payout of its own (its tries and an operator's retry never mix with the deposit refund)."""
        await move(cur, f"t{t['id']}:back", c.id, f"escrow:{c.id}", f"payable:{c.borrower_id}", t["amount"], "refund")
        await self.queue_payout(cur, c.id, c.borrower_id, int(t["amount"]), "refund", tag=f"t{t['id']}")
        await self.event(cur, c.id, "late_payment_refunded", "system", None, c.state, to,
                         {"amount": int(t["amount"]), "reason": reason, "kind": transfer_kind(t)[0]})

    async def on_failed(self, cur: Any, t: Row) -> None:
        kind, cid = transfer_kind(t)
        c = await self.lock(cur, cid)
        reason = reason_of(t)
        if t["direction"] == "deposit":
            await cur.execute("SELECT COUNT(*) AS n FROM transfers WHERE purpose = %s", (t["purpose"],))
            tries = (await cur.fetchone())["n"]
            if tries < PAYOUT_TRIES:  # the same payout again (same purpose), with a new bank_tran_id
                await self.billipay().open_transfer(cur, purpose=t["purpose"], contract_id=cid,
                                                    user_id=int(t["user_id"]), direction="deposit",
                                                    amount=int(t["amount"]), state="pending")
            else:
                log.warning("payout %s for contract %s failed %d times; left for an operator", kind, cid, tries)
                await self.event(cur, cid, "payout_held", "system", None, c.state, c.state,
                                 {"to": c.role(int(t["user_id"])), "amount": int(t["amount"]), "reason": reason})
            return
        if kind == "ext":
            await cur.execute("UPDATE contracts SET ext_end_date = NULL, ext_rent = NULL, ext_fee = NULL"
                              " WHERE id = %s", (cid,))
            await self.event(cur, cid, "extension_failed", "system", None, c.state, c.state, {"reason": reason})
        else:
            await self.event(cur, cid, "payment_failed", "system", None, c.state, c.state, {"reason": reason})

    # -- payouts and the operator's transfer work ---------------------------------------------------------
    async def settle_transfer(self, transfer_id: int, state: str) -> Outcome:
        """An operator's decision on a transfer the bank never answered finally (after checking with the bank):
        ``done`` or ``failed``, with the same consequences as the bank's own answer."""
        if state not in ("done", "failed"):
            raise InvalidInput("transfer.bad_state", field="state")
        outcome = await self.billipay().settle(transfer_id, state, None, self.on_done, self.on_failed,
                                               None if state == "done" else "pay.declined",
                                               only_from=("unknown", "review"))
        if outcome.state != state:
            raise Conflict("transfer.not_open")
        row = await self.db.fetchone("SELECT contract_id FROM transfers WHERE id = %s", (transfer_id,))
        if row and row["contract_id"]:
            await self.flush(int(row["contract_id"]))
        return outcome

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
            tid = await self.billipay().open_transfer(cur, purpose=t["purpose"], contract_id=t["contract_id"],
                                                      user_id=t["user_id"], direction="deposit",
                                                      amount=int(t["amount"]), state="pending")
        await self.billipay().send(tid, self.on_done, self.on_failed)
        if t["contract_id"]:
            await self.flush(int(t["contract_id"]))
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
                await self.pay.send(r["id"], self.on_done, self.on_failed)
            except Exception:
                log.exception("payout %s not sent now; the scheduler will retry", r["id"])
        if rows:
            await self.flush(cid)


async def move(cur: Any, movement: str, cid: int | None, source: str, target: str, amount: int, memo: str) -> None:
    """One double-entry movement (two rows summing to zero); a repeated movement id is a no-op."""
    if amount <= 0:
        return
    await cur.execute("INSERT IGNORE INTO ledger (movement, contract_id, account, amount, memo) VALUES"
                      " (%s, %s, %s, %s, %s), (%s, %s, %s, %s, %s)",
                      (movement, cid, source, -amount, memo, movement, cid, target, amount, memo))


def transfer_kind(t: Row) -> tuple[str, int]:
    """A rental transfer's kind (pay, ext, payout, refund) and contract."""
    kind, _, rest = str(t["purpose"]).partition(":")
    return str(t.get("kind") or kind), int(t.get("contract_id") or rest.split(":")[0])


def reason_of(t: Row) -> str:
    """The message key for a failed transfer: the bank's code, or what stopped us before the bank."""
    code = str(t.get("bank_rsp_code") or "")
    if code in BANK_REASONS:
        return BANK_REASONS[code]
    message = str(t.get("message") or "")
    return message if message.startswith("pay.") else "pay.declined"


