"""BilliPay: linked bank accounts and bank transfers, over the KFTC Open Banking client.

- **Linking** (3-legged OAuth): ``start_link`` keeps a random single-use ``state`` in Redis for a few minutes,
  bound to the person; ``finish_link`` completes it only in a request carrying that person's own session — any
  other request (no session, someone else's) is refused and leaves the ``state`` unused — then takes it back
  exactly once, exchanges the code, reads the account and stores the tokens encrypted (AES-GCM).
- **First use**: a newly linked account is not charged until its owner has confirmed it (bank, masked number,
  holder, amount) once; ``confirm_first_use`` records that in the payment's own transaction.
- **Transfers**: a row in ``transfers`` is written *before* the bank is called, with a fresh ``bank_tran_id``:
  ``pending`` → ``sending`` while our call is open (claimed by one process; nobody else touches it) → a final
  answer settles it (``done``/``failed``); anything else leaves it ``unknown``, and only a *final* answer of the
  transfer result inquiry settles it — "no such transaction", "processing" and internal errors are asked again
  with backoff, and past the horizon it goes to ``review`` (an operator), never silently to ``failed``. A
  ``sending`` row left by a crashed process becomes ``unknown`` once the bank timeout and a margin have passed.
  Nothing is retried with a new ``bank_tran_id`` while one is open, so nobody is charged or paid twice. What a settled transfer *means* (a contract paid, a payout made) is decided by the
  caller's ``on_done``/``on_failed``, which run in the same transaction that records the outcome.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pymysql
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from market.clock import Clock
from market.db import Database, Row
from market.errors import Conflict, Forbidden, InvalidInput, MarketError, NotFound, Unavailable
from market.kftc import (BANK_OK, FINAL_REFUSALS, NOT_PROCESSED, OK, TOKEN_CODES, BankAnswer, BankNotReached,
                         BankRefused, BankUnreachable, KftcClient, StatementLine, new_bank_tran_id, tran_dtime)

log = logging.getLogger("billi.billipay")
STATE_TTL_S = 10 * 60
TICKET_TTL_S = 30 * 60
SENDING_MARGIN_S = 30  # a call open longer than the bank timeout plus this has died with its process
INQUIRY_BACKOFF_S = (10, 30, 60, 300, 900, 3600)  # waits between result inquiries of an unknown transfer
REVIEW_INQUIRY_S = 6 * 3600  # a transfer in an operator's review is still asked about, slowly
PENDING_WITHDRAW_S = 120  # a payment queued but not sent by then (its process died) is not sent any more
BANK_REASONS = {"453": "pay.insufficient", "454": "pay.insufficient", "455": "pay.limit", "456": "pay.limit",
                "412": "pay.no_account", "415": "pay.closed_account"}

OnOutcome = Callable[[Any, Row], Awaitable[None]]  # (cursor, transfer row) inside the recording transaction


def _check(fintech_use_num: str) -> str:
    """A short name for one linked account, carried by a confirmation button (never the number itself)."""
    return hashlib.sha256(("billi-link:" + fintech_use_num).encode()).hexdigest()[:20]


def _differs(holder: str, person: str | None) -> bool:
    """Whether an account's holder is someone other than the person who consented (spaces ignored)."""
    return bool(person) and "".join(holder.split()) != "".join((person or "").split())


class TokenBox:
    """Encrypts tokens at rest: AES-256-GCM with a key derived from the configured secret."""

    def __init__(self, secret: str) -> None:
        self._aead = AESGCM(hashlib.sha256(("billi-token-key:" + secret).encode()).digest())

    def seal(self, text: str) -> str:
        nonce = os.urandom(12)
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, text.encode(), b"billi")).decode()

    def open(self, sealed: str) -> str:
        blob = base64.urlsafe_b64decode(sealed)
        return self._aead.decrypt(blob[:12], blob[12:], b"billi").decode()


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where a transfer stands: ``done``, ``failed`` (with the message key), or still open — ``pending``,
    ``sending``, ``unknown`` (settled later by the result inquiry) or ``review`` (an operator's)."""

    state: str
    transfer_id: int
    reason: str | None = None


class BilliPay:
    def __init__(self, db: Database, redis: aioredis.Redis, client: KftcClient, *, token_secret: str,
                 platform_account: str, timeout_s: float = 10.0, unknown_horizon_h: int = 24,
                 platform_fintech_use_num: str = "", platform_inquiry_token: str = "",
                 clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or Clock()
        self.platform_fintech_use_num = platform_fintech_use_num
        self.platform_inquiry_token = platform_inquiry_token
        self.timeout_s = timeout_s
        self.unknown_horizon_h = unknown_horizon_h
        self.redis = redis
        self.client = client
        self.box = TokenBox(token_secret)
        self.platform_account = platform_account
        self._platform: tuple[str, str, float] | None = None  # token, client_use_code, expiry

    # -- linking -----------------------------------------------------------------------------------
    async def start_link(self, user_id: int, redirect_uri: str, room_id: int | None = None) -> str:
        """The bank's consent page for this person; the ``state`` in it works once, for a few minutes."""
        state = secrets.token_urlsafe(24)[:32]
        await self.redis.set(f"billipay:state:{state}", json.dumps({"user": user_id, "room": room_id,
                                                                    "redirect": redirect_uri}), ex=STATE_TTL_S)
        return self.client.authorize_url(redirect_uri, state)

    async def ticket(self, user_id: int, room_id: int) -> str:
        """A single-use ticket for a chat's "계좌 연결하기" link (30 minutes): who, and the room to come back to."""
        ticket = secrets.token_urlsafe(18)
        await self.redis.set(f"billipay:ticket:{ticket}", json.dumps({"user": user_id, "room": room_id}),
                             ex=TICKET_TTL_S)
        return ticket

    async def follow_ticket(self, ticket: Any, session_user: int | None, redirect_uri: str) -> str:
        """The bank's consent page for a ticket's owner. Both people in a deal room see the button: only its owner,
        logged in, may follow it (else the other could tie their own account to this person's payouts), and a
        refused click does not use it up."""
        key = f"billipay:ticket:{ticket}"
        raw = await self.redis.get(key) if isinstance(ticket, str) and 0 < len(ticket) <= 64 else None
        if raw is None:
            raise InvalidInput("billipay.bad_state")
        who = json.loads(raw)
        if session_user is None or session_user != who["user"]:
            raise Forbidden("billipay.not_your_link")
        if not await self.redis.delete(key):
            raise InvalidInput("billipay.bad_state")
        return await self.start_link(who["user"], redirect_uri, who.get("room"))

    async def finish_link(self, state: Any, code: Any, *, session_user: int | None,
                          error: Any = None) -> dict[str, Any]:
        """The bank's redirect back: returns {user, room, account} or raises with the reason.

        Only a request carrying the session of the person who started the link completes it. Anyone else's —
        a victim's browser opening an attacker's consent link, the right person logged out or in another
        browser — is refused without using the ``state`` up, so the owner can still finish where they are
        logged in."""
        if not isinstance(state, str) or not 16 <= len(state) <= 64:
            raise InvalidInput("billipay.bad_state")
        key = f"billipay:state:{state}"
        raw = await self.redis.get(key)
        if raw is None:
            raise InvalidInput("billipay.bad_state")
        bound = json.loads(raw)
        if session_user is None or session_user != bound["user"]:
            raise Forbidden("billipay.wrong_session")
        if await self.redis.getdel(key) != raw:  # taken once: a concurrent callback of the same person gets nothing
            raise InvalidInput("billipay.bad_state")
        if error:
            raise Conflict("billipay.denied")
        if not isinstance(code, str) or not 0 < len(code) <= 200:
            raise InvalidInput("billipay.bad_code")
        try:
            tokens = await self.client.exchange_code(code, bound["redirect"])
            bank_user_name, accounts = await self.client.accounts(tokens.access_token, tokens.user_seq_no)
        except BankRefused:
            raise InvalidInput("billipay.bad_code") from None
        except BankUnreachable:
            raise Unavailable("billipay.unreachable") from None
        if not accounts:
            raise Conflict("billipay.no_account")
        acct = accounts[0]
        expires = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=max(tokens.expires_in, 60))
        # A different account than the one linked before must be confirmed again before it is charged
        # (confirmed_at is assigned first, while fintech_use_num still holds the old account).
        await self.db.execute(
            "INSERT INTO bank_links (user_id, user_seq_no, fintech_use_num, bank_name, account_masked, holder_name,"
            " bank_user_name, access_token_enc, refresh_token_enc, token_expires_at, verified_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NOW(3))"
            " ON DUPLICATE KEY UPDATE"
            " confirmed_at = IF(fintech_use_num = VALUES(fintech_use_num), confirmed_at, NULL),"
            " user_seq_no = VALUES(user_seq_no), fintech_use_num = VALUES(fintech_use_num),"
            " bank_name = VALUES(bank_name), account_masked = VALUES(account_masked),"
            " holder_name = VALUES(holder_name), bank_user_name = VALUES(bank_user_name),"
            " access_token_enc = VALUES(access_token_enc), refresh_token_enc = VALUES(refresh_token_enc),"
            " token_expires_at = VALUES(token_expires_at), verified_at = VALUES(verified_at)",
            (bound["user"], tokens.user_seq_no, acct.fintech_use_num, acct.bank_name[:40], acct.account_num_masked[:40],
             acct.holder_name[:40], (bank_user_name or "")[:40] or None, self.box.seal(tokens.access_token),
             self.box.seal(tokens.refresh_token), expires))
        return {"user": bound["user"], "room": bound["room"], "account": await self.account(bound["user"])}

    async def account(self, user_id: int) -> dict[str, Any] | None:
        """The linked account as shown to its owner (masked), or None."""
        row = await self.db.fetchone("SELECT bank_name, account_masked, holder_name, created_at FROM bank_links"
                                     " WHERE user_id = %s", (user_id,))
        if row is None:
            return None
        return {"bank_name": row["bank_name"], "account": row["account_masked"], "holder": row["holder_name"],
                "linked_at": row["created_at"].isoformat(timespec="seconds") + "Z"}

    async def first_use(self, user_id: int) -> dict[str, Any] | None:
        """What the person must confirm before the first payment with this account — bank, masked number,
        holder (and whether the holder's name differs from the name the bank gave for the person who consented),
        and the ``check`` their confirmation must carry — or None when there is no link or it is confirmed."""
        row = await self.db.fetchone("SELECT fintech_use_num, bank_name, account_masked, holder_name, bank_user_name,"
                                     " confirmed_at FROM bank_links WHERE user_id = %s", (user_id,))
        if row is None or row["confirmed_at"] is not None:
            return None
        return {"bank_name": row["bank_name"], "account": row["account_masked"], "holder": row["holder_name"],
                "holder_differs": _differs(row["holder_name"], row["bank_user_name"]),
                "person": row["bank_user_name"] or "",
                "check": _check(row["fintech_use_num"])}

    async def confirm_first_use(self, cur: Any, user_id: int, check: str | None) -> None:
        """Inside a payment's transaction: go on only with an account its owner has confirmed. An unconfirmed
        one is confirmed here when ``check`` names it (the account shown is still the one linked); without
        ``check`` the caller must ask first (``pay.confirm_link``)."""
        await cur.execute("SELECT fintech_use_num, verified_at, confirmed_at FROM bank_links WHERE user_id = %s"
                          " FOR UPDATE", (user_id,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound("pay.no_link")
        if row["verified_at"] is None:  # made before a link needed its owner's session: link again to pay
            raise Conflict("pay.relink")
        if check is not None and not secrets.compare_digest(str(check), _check(row["fintech_use_num"])):
            raise Conflict("pay.link_changed")  # the card pressed showed another account
        if row["confirmed_at"] is not None:
            return
        if check is None:
            raise Conflict("pay.confirm_link")
        await cur.execute("UPDATE bank_links SET confirmed_at = NOW(3) WHERE user_id = %s", (user_id,))

    async def confirm_account(self, user_id: int, check: str) -> None:
        """Confirm the linked account on its own (before an extension's charge, say), when ``check`` names it."""
        async with self.db.transaction() as cur:
            await self.confirm_first_use(cur, user_id, check)

    async def links(self, *, unverified: bool = False) -> list[Row]:
        """Linked accounts for an operator; with ``unverified``, only those made before a link needed its
        owner's session (``verified_at`` NULL), to review."""
        return await self.db.fetchall(
            "SELECT b.user_id, u.nickname, u.email, b.bank_name, b.account_masked, b.holder_name, b.created_at,"
            " b.verified_at, b.confirmed_at FROM bank_links b JOIN users u ON u.id = b.user_id"
            + (" WHERE b.verified_at IS NULL" if unverified else "") + " ORDER BY b.created_at, b.user_id")

    async def unlink(self, user_id: int) -> bool:
        return await self.db.execute("DELETE FROM bank_links WHERE user_id = %s", (user_id,)) > 0

    async def _user_link(self, user_id: int, *, refresh: bool = False) -> tuple[str, Row]:
        row = await self.db.fetchone("SELECT * FROM bank_links WHERE user_id = %s", (user_id,))
        if row is None:
            raise NotFound("pay.no_link")
        if row["verified_at"] is None:  # made before a link needed its owner's session: never withdrawn from
            raise Conflict("pay.relink")
        token = self.box.open(row["access_token_enc"])
        if refresh or row["token_expires_at"] <= datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5):
            try:
                fresh = await self.client.refresh(self.box.open(row["refresh_token_enc"]))
            except BankRefused:
                raise Conflict("pay.relink") from None
            token = fresh.access_token
            await self.db.execute(
                "UPDATE bank_links SET access_token_enc = %s, refresh_token_enc = %s, token_expires_at = %s"
                " WHERE user_id = %s", (self.box.seal(fresh.access_token), self.box.seal(fresh.refresh_token or
                                                                                         self.box.open(row["refresh_token_enc"])),
                                        datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=fresh.expires_in),
                                        user_id))
        return token, row

    async def _platform_token(self, *, fresh: bool = False) -> tuple[str, str]:
        if fresh or self._platform is None or self._platform[2] < time.monotonic():
            token, code, expires_in = await self.client.platform_token()
            self._platform = (token, code, time.monotonic() + max(60, expires_in - 300))
        return self._platform[0], self._platform[1]

    # -- the platform account's statement (reconciliation) ------------------------------------------
    async def statement(self, day: date) -> list[StatementLine]:
        """Every line of the platform account's transaction list on ``day`` (the bank's day, Asia/Seoul), all
        pages. Raises ``BankUnreachable`` / ``BankRefused`` when the bank does not give it."""
        _token, code = await self._platform_token()
        lines: list[StatementLine] = []
        trace: str | None = None
        for _ in range(10_000):
            page, trace = await self.client.transaction_list(
                self.platform_inquiry_token, bank_tran_id=new_bank_tran_id(code),
                fintech_use_num=self.platform_fintech_use_num, day=day.strftime("%Y%m%d"), trace=trace)
            lines += page
            if trace is None:
                break
        return lines

    async def to_suspense(self, transfer_id: int) -> bool:
        """A transfer we recorded failed that the bank did carry out (a late answer contradicting ours): the
        money moves to the ``suspense`` ledger account — into it for a withdrawal that reached the platform,
        out of it for a payout that left — and the transfer becomes ``suspense``, for an operator. Once."""
        async with self.db.transaction() as cur:
            await cur.execute("SELECT * FROM transfers WHERE id = %s FOR UPDATE", (transfer_id,))
            t = await cur.fetchone()
            if t is None or t["state"] != "failed":
                return False
            await cur.execute("UPDATE transfers SET state = 'suspense', message = %s WHERE id = %s",
                              ("the bank carried out a transfer recorded as failed", transfer_id))
            person, amount = f"bank:{t['user_id']}", int(t["amount"])
            source, target = (person, "suspense") if t["direction"] == "withdraw" else ("suspense", person)
            await cur.execute("INSERT IGNORE INTO ledger (movement, contract_id, account, amount, memo) VALUES"
                              " (%s, %s, %s, %s, 'suspense'), (%s, %s, %s, %s, 'suspense')",
                              (f"t{transfer_id}:suspense", t["contract_id"], source, -amount,
                               f"t{transfer_id}:suspense", t["contract_id"], target, amount))
        log.warning("transfer %s (%s) was recorded failed but the bank carried it out: moved to suspense",
                    transfer_id, t["purpose"])
        return True

    # -- transfers ---------------------------------------------------------------------------------
    async def open_transfer(self, cur: Any, *, purpose: str, contract_id: int | None, user_id: int,
                            direction: str, amount: int, state: str, pays_for: dict[str, Any] | None = None) -> int:
        """Write a transfer row, ``pending``, inside the caller's transaction; ``send`` sends it (the caller right
        after committing, or the scheduler). ``state`` must be ``pending``. Its ``kind`` is the purpose's first
        word (pay, ext, payout, refund); ``pays_for`` is what it pays for (an extension: end date, rent, fee)."""
        if state != "pending":
            raise ValueError("a transfer starts pending")
        if amount <= 0:
            raise InvalidInput("pay.bad_amount")
        fintech = None
        if direction == "withdraw":  # the account the person confirmed is the one charged (see _call)
            await cur.execute("SELECT fintech_use_num FROM bank_links WHERE user_id = %s", (user_id,))
            link = await cur.fetchone()
            fintech = link["fintech_use_num"] if link else None
        try:
            _token, code = await self._platform_token()
        except (BankUnreachable, BankRefused):
            raise Unavailable("pay.unreachable") from None
        for _ in range(5):
            try:
                await cur.execute(
                    "INSERT INTO transfers (bank_tran_id, purpose, kind, contract_id, user_id, fintech_use_num,"
                    " direction, amount, pays_for, state, tran_dtime, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s,"
                    " %s, %s, %s, %s, %s)",
                    (new_bank_tran_id(code), purpose, purpose.partition(":")[0], contract_id, user_id, fintech,
                     direction, amount, json.dumps(pays_for, ensure_ascii=False) if pays_for else None, state,
                     tran_dtime(), self.clock.now()))
                return int(cur.lastrowid)
            except pymysql.err.IntegrityError as e:
                if e.args[0] != 1062:
                    raise
        raise RuntimeError("could not draw a unique bank_tran_id")

    async def send(self, transfer_id: int, on_done: OnOutcome, on_failed: OnOutcome) -> Outcome:
        """Call the bank for a queued transfer — claimed here (``pending`` → ``sending``), so it is sent once —
        and record the answer: final, or ``unknown`` for the result inquiry. Everything that can fail before the
        transfer request itself (the link, the tokens) is done first: such a failure sends nothing, so it never
        makes a transfer unknown."""
        row = await self.db.fetchone("SELECT * FROM transfers WHERE id = %s", (transfer_id,))
        assert row is not None
        if row["state"] != "pending":
            return Outcome(row["state"], transfer_id)
        try:
            request = await self._prepare(row)
        except MarketError as e:  # no usable bank link
            if row["direction"] == "deposit":  # a payout waits for the person to link an account
                return Outcome("pending", transfer_id, e.code)
            return await self.settle(transfer_id, "failed", None, on_done, on_failed, e.code, only_from="pending")
        except (BankUnreachable, BankRefused):  # no token: nothing was sent; a payout waits for the next round
            if row["direction"] == "deposit":
                return Outcome("pending", transfer_id, "pay.unreachable")
            return await self.settle(transfer_id, "failed", None, on_done, on_failed, "pay.unreachable",
                                     only_from="pending")
        dtime = tran_dtime()  # the day it is sent is the day the bank knows it by (and the inquiry must name)
        claimed = await self.db.execute("UPDATE transfers SET state = 'sending', sent_at = %s, tran_dtime = %s"
                                        " WHERE id = %s AND state = 'pending'", (self.clock.now(), dtime, transfer_id))
        if not claimed:
            return Outcome(str(await self.db.fetchval("SELECT state FROM transfers WHERE id = %s", (transfer_id,))),
                           transfer_id)
        try:
            answer = await request(dtime)
        except BankNotReached as e:  # never connected: nothing was sent, so it is not unknown
            log.warning("the bank could not be reached for transfer %s (%s); nothing was sent", row["bank_tran_id"], e)
            if row["direction"] == "deposit":  # a payout goes in the next round
                await self.db.execute("UPDATE transfers SET state = 'pending', sent_at = NULL WHERE id = %s"
                                      " AND state = 'sending'", (transfer_id,))
                return Outcome("pending", transfer_id, "pay.unreachable")
            return await self.settle(transfer_id, "failed", None, on_done, on_failed, "pay.unreachable",
                                     only_from="sending")
        except (BankUnreachable, BankRefused) as e:
            log.warning("no answer for transfer %s (%s); it stays unknown until the result inquiry",
                        row["bank_tran_id"], e)
            await self._unknown(transfer_id, None, str(e))
            return Outcome("unknown", transfer_id, "pay.unknown")
        return await self._record({**row, "tran_dtime": dtime}, answer, on_done, on_failed)

    async def _unknown(self, transfer_id: int, rsp_code: str | None, message: str) -> None:
        """Our call ended without a final answer: ask the bank soon (the first inquiry is due at once)."""
        await self.db.execute(
            "UPDATE transfers SET state = 'unknown', rsp_code = COALESCE(%s, rsp_code), message = %s,"
            " next_inquiry_at = %s WHERE id = %s AND state = 'sending'",
            (rsp_code, message[:200], self.clock.now(), transfer_id))

    async def _prepare(self, row: Row) -> Callable[[str], Awaitable[BankAnswer]]:
        """The link and token a transfer needs, then the one call that sends it (given its ``tran_dtime``)."""
        nickname = str(await self.db.fetchval("SELECT nickname FROM users WHERE id = %s", (row["user_id"],)) or "")
        base = dict(bank_tran_id=row["bank_tran_id"], amount=int(row["amount"]), platform_account=self.platform_account,
                    client_num=f"U{row['user_id']}", memo="빌리마켓", client_name=nickname)
        if row["direction"] == "withdraw":
            token, link = await self._user_link(row["user_id"])
            if row["fintech_use_num"] and link["fintech_use_num"] != row["fintech_use_num"]:
                raise Conflict("pay.link_changed")  # relinked since it was confirmed: nothing is sent

            async def withdraw(dtime: str) -> BankAnswer:
                answer = await self.client.withdraw(token, fintech_use_num=link["fintech_use_num"], dtime=dtime,
                                                    **base)
                if answer.rsp_code == "O0003":  # expired before we thought: refused unprocessed, so refresh once
                    try:
                        fresh, _ = await self._user_link(row["user_id"], refresh=True)
                    except (MarketError, BankUnreachable):  # no fresh token: nothing was sent; it fails (pay.relink)
                        return answer
                    answer = await self.client.withdraw(fresh, fintech_use_num=link["fintech_use_num"],
                                                        dtime=dtime, **base)
                return answer
            return withdraw
        link = await self.db.fetchone("SELECT fintech_use_num FROM bank_links WHERE user_id = %s", (row["user_id"],))
        if link is None:
            raise NotFound("pay.no_link")
        platform, _ = await self._platform_token()

        async def deposit(dtime: str) -> BankAnswer:
            # A token the bank rejects (O0002/O0003) was refused before anything was done: fetch one anew, once.
            answer = await self.client.deposit(platform, fintech_use_num=link["fintech_use_num"], dtime=dtime, **base)
            if answer.rsp_code in TOKEN_CODES:
                fresh, _ = await self._platform_token(fresh=True)
                answer = await self.client.deposit(fresh, fintech_use_num=link["fintech_use_num"], dtime=dtime,
                                                   **base)
            return answer
        return deposit

    async def _record(self, row: Row, answer: BankAnswer, on_done: OnOutcome, on_failed: OnOutcome) -> Outcome:
        """The transfer call's answer. Done only on A0000 with 000; failed only on a definite refusal by the bank
        or a request refused before it was processed; anything else (an unknown code, an empty or odd answer,
        a duplicate id) may have moved money and is left unknown for the inquiry."""
        if answer.ok:
            return await self.settle(row["id"], "done", answer, on_done, on_failed)
        if answer.rsp_code == "A0002" and answer.bank_rsp_code in FINAL_REFUSALS:
            return await self.settle(row["id"], "failed", answer, on_done, on_failed,
                                     BANK_REASONS.get(answer.bank_rsp_code, "pay.declined"))
        if answer.rsp_code in NOT_PROCESSED:
            reason = "pay.relink" if answer.rsp_code in TOKEN_CODES else "pay.declined"
            return await self.settle(row["id"], "failed", answer, on_done, on_failed, reason)
        await self._unknown(row["id"], answer.rsp_code or None, answer.message or "odd answer")
        return Outcome("unknown", row["id"], "pay.unknown")

    async def settle(self, transfer_id: int, state: str, answer: BankAnswer | None, on_done: OnOutcome,
                     on_failed: OnOutcome, reason: str | None = None, *,
                     only_from: str | tuple[str, ...] | None = None) -> Outcome:
        """Record a transfer's final state and run its consequence, once (the row lock and ``applied`` flag);
        with ``only_from``, only if the transfer is still in that state."""
        async with self.db.transaction() as cur:
            await cur.execute("SELECT * FROM transfers WHERE id = %s FOR UPDATE", (transfer_id,))
            row = await cur.fetchone()
            allowed = (only_from,) if isinstance(only_from, str) else only_from
            if row["applied"] or (allowed is not None and row["state"] not in allowed):
                return Outcome(row["state"], transfer_id)
            await cur.execute(
                "UPDATE transfers SET state = %s, applied = 1, rsp_code = %s, bank_rsp_code = %s,"
                " bank_tran_date = %s, message = %s WHERE id = %s",
                (state, answer.rsp_code if answer else None, answer.bank_rsp_code if answer else None,
                 (answer.bank_tran_date if answer else None) or row["tran_dtime"][:8],
                 (answer.message[:200] if answer else reason), transfer_id))
            row = {**row, "state": state, "bank_rsp_code": answer.bank_rsp_code if answer else None,
                   "message": answer.message[:200] if answer else reason}
            await (on_done if state == "done" else on_failed)(cur, row)
        return Outcome(state, transfer_id, reason)

    async def inquire(self, transfer_id: int, on_done: OnOutcome, on_failed: OnOutcome) -> Outcome:
        """Ask the bank about an unknown transfer. Only a final answer settles it; otherwise the next inquiry is
        put off (backoff), and past the horizon the transfer goes to ``review`` for an operator."""
        row = await self.db.fetchone("SELECT * FROM transfers WHERE id = %s", (transfer_id,))
        assert row is not None
        if row["state"] not in ("unknown", "review"):
            return Outcome(row["state"], transfer_id)
        answer: BankAnswer | None = None
        try:
            for fresh in (False, True):  # a platform token the bank no longer honours is fetched anew once
                token, _ = await self._platform_token(fresh=fresh)
                answer = await self.client.result(token, withdraw=row["direction"] == "withdraw",
                                                  bank_tran_id=row["bank_tran_id"],
                                                  bank_tran_date=row["bank_tran_date"] or row["tran_dtime"][:8],
                                                  amount=int(row["amount"]))
                if answer.rsp_code not in TOKEN_CODES:
                    break
        except (BankUnreachable, BankRefused):
            answer = None
        if answer is not None and answer.rsp_code == OK and answer.bank_rsp_code == BANK_OK:
            return await self.settle(transfer_id, "done", answer, on_done, on_failed)
        if answer is not None and answer.rsp_code == OK and answer.bank_rsp_code in FINAL_REFUSALS:
            return await self.settle(transfer_id, "failed", answer, on_done, on_failed,
                                     BANK_REASONS.get(answer.bank_rsp_code, "pay.declined"))
        return await self._ask_later(row, answer)

    async def _ask_later(self, row: Row, answer: BankAnswer | None) -> Outcome:
        """Not settled by this inquiry ("no such transaction" yet, "processing", no answer): ask again later,
        or hand it to an operator once the horizon has passed since it was sent."""
        wait = INQUIRY_BACKOFF_S[min(int(row["inquiries"]), len(INQUIRY_BACKOFF_S) - 1)]
        note = f"{answer.rsp_code}/{answer.bank_rsp_code} {answer.message}" if answer else "no answer"
        await self.db.execute(
            "UPDATE transfers SET inquiries = inquiries + 1, message = %s,"
            " next_inquiry_at = %s + INTERVAL %s SECOND,"
            " state = IF(COALESCE(sent_at, created_at) < %s - INTERVAL %s HOUR, 'review', state)"
            " WHERE id = %s AND state IN ('unknown', 'review')",
            (note[:200], self.clock.now(), wait, self.clock.now(), self.unknown_horizon_h, row["id"]))
        state = await self.db.fetchval("SELECT state FROM transfers WHERE id = %s", (row["id"],))
        if state == "review":  # an operator has it; the bank is still asked now and then
            await self.db.execute("UPDATE transfers SET next_inquiry_at = %s + INTERVAL %s SECOND WHERE id = %s",
                                  (self.clock.now(), REVIEW_INQUIRY_S, row["id"]))
            log.error("transfer %s is still unknown after %s h: an operator must decide", row["bank_tran_id"],
                      self.unknown_horizon_h)
        return Outcome(str(state), row["id"], "pay.unknown")

    async def stale_unknown(self) -> list[int]:
        """Unknown transfers whose next inquiry is due (``sending`` ones whose call must have died first become
        unknown)."""
        now = self.clock.now()
        await self.db.execute(
            "UPDATE transfers SET state = 'unknown', next_inquiry_at = %s WHERE state = 'sending'"
            " AND sent_at < %s - INTERVAL %s SECOND", (now, now, int(self.timeout_s) + SENDING_MARGIN_S))
        rows = await self.db.fetchall(
            "SELECT id FROM transfers WHERE state IN ('unknown', 'review') AND (next_inquiry_at IS NULL OR"
            " next_inquiry_at <= %s) ORDER BY next_inquiry_at, id LIMIT 200", (now,))
        return [r["id"] for r in rows]

    async def in_review(self) -> list[Row]:
        """Transfers an operator must decide: still unknown past the horizon."""
        return await self.db.fetchall("SELECT * FROM transfers WHERE state = 'review' ORDER BY id")

    async def queued(self) -> list[int]:
        """Transfers waiting to be sent: payouts and refunds, and payments queued a moment ago (a person who
        pressed 결제 minutes ago is not charged now: see ``abandoned``)."""
        # A payout waiting for its person to link an account is passed over here (sent when they link), so
        # any number of those never holds up the others.
        rows = await self.db.fetchall(
            "SELECT t.id FROM transfers t WHERE t.state = 'pending' AND (t.direction = 'withdraw' AND t.created_at >"
            " %s - INTERVAL %s SECOND OR t.direction = 'deposit' AND EXISTS (SELECT 1 FROM bank_links b"
            " WHERE b.user_id = t.user_id)) ORDER BY t.id LIMIT 200", (self.clock.now(), PENDING_WITHDRAW_S))
        return [r["id"] for r in rows]

    async def abandoned(self) -> list[int]:
        """Payments queued but never sent (the process died between writing and sending): they fail, so the
        person can pay again — nothing was sent."""
        rows = await self.db.fetchall(
            "SELECT id FROM transfers WHERE state = 'pending' AND direction = 'withdraw' AND created_at <="
            " %s - INTERVAL %s SECOND ORDER BY id LIMIT 200", (self.clock.now(), PENDING_WITHDRAW_S))
        return [r["id"] for r in rows]
