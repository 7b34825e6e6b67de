"""Forgotten passwords: a single-use link, valid 30 minutes, mailed to the account's address.

Asking answers the same whether or not the address has an account — nobody learns who is signed up — and is
limited per address, known or not. Only the link's SHA-256 is stored. Using it sets the password, ends every
session of the person and spends every other link they were sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from market import validation as v
from market.config import Config
from market.db import Database
from market.errors import InvalidInput, RateLimited, Unavailable
from market.limits import Limits
from market.messages import render
from market.people.accounts import Accounts, Session, account_email, new_password, token_hash
from market.people.mail import Mail, Mailer

log = logging.getLogger("billi.accounts")
LINK_VALID = timedelta(minutes=30)
_ASKED_PREFIX = "billi:reset-asked:"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


class PasswordResets:
    """Reset links: ``request`` mails one, ``confirm`` spends it."""

    def __init__(self, db: Database, redis: aioredis.Redis, accounts: Accounts, mailer: Mailer,
                 config: Config, limits: Limits | None = None) -> None:
        self._limits = limits
        self._db = db
        self._redis = redis
        self._accounts = accounts
        self._mailer = mailer
        self._config = config
        self._sending: set[asyncio.Task[None]] = set()

    async def request(self, data: dict[str, Any], *, source: str | None = None) -> None:
        """Mail a reset link if the address has an account. The mail goes out after the answer, so the time
        taken does not tell either. ``source``, the client's address, may ask only so many links per window
        whatever e-mail addresses it names (``limit.password_reset``; None: our own tools, not counted)."""
        v.only_fields(data, {"email"})
        email = account_email(data)
        if source is not None and self._limits is not None:
            await self._limits.take(self._limits.password_reset, address=source)
        await self._count(email)
        person = await self._db.fetchone("SELECT id, nickname, locale FROM users WHERE email = %s"
                                         " AND deleted_at IS NULL", (email,))
        if person is None:
            return
        token = secrets.token_urlsafe(32)
        now = _now()
        await self._db.execute("INSERT INTO password_resets (token_hash, user_id, created_at, expires_at)"
                               " VALUES (%s, %s, %s, %s)", (token_hash(token), person["id"], now, now + LINK_VALID))
        link = self._config.url().rstrip("/") + "/password/reset#" + token
        self._send_later(_reset_mail(email, person["nickname"], link))

    async def confirm(self, data: dict[str, Any]) -> tuple[Session, list[str]]:
        """Set the new password with a link's token: every session of the person ends (returned as token
        hashes) and a new one begins here."""
        v.only_fields(data, {"token", "password"})
        token = data.get("token")
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise InvalidInput("account.reset_invalid", field="token")
        now = _now()
        # The link is looked at before any hashing: a made-up token costs a lookup, never argon2 work.
        person = await self._db.fetchone(
            "SELECT u.email, u.nickname FROM password_resets r JOIN users u ON u.id = r.user_id"
            " WHERE r.token_hash = %s AND r.used_at IS NULL AND r.expires_at > %s AND u.deleted_at IS NULL",
            (token_hash(token), now))
        if person is None:
            raise InvalidInput("account.reset_invalid", field="token")
        # a weak one (or the person's own name) is refused without spending the link
        password = new_password(data, "password", email=person["email"], nickname=person["nickname"])
        password_hash = await self._accounts.hash_password(password)
        async with self._db.transaction() as cur:
            await cur.execute("SELECT r.user_id FROM password_resets r JOIN users u ON u.id = r.user_id"
                              " WHERE r.token_hash = %s AND r.used_at IS NULL AND r.expires_at > %s"
                              " AND u.deleted_at IS NULL FOR UPDATE", (token_hash(token), now))
            found = await cur.fetchone()
            if found is None:
                raise InvalidInput("account.reset_invalid", field="token")
            user_id = int(found["user_id"])
            await cur.execute("UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user_id))
            await cur.execute("UPDATE password_resets SET used_at = %s WHERE user_id = %s AND used_at IS NULL",
                              (now, user_id))
            ended = await self._accounts.revoke_sessions(cur, user_id)
            await self._accounts.unlink_other_sessions_links(cur, user_id)
        await self._accounts.uncache(ended)
        return await self._accounts.session_for(user_id, known_device=True), ended

    async def drain(self) -> None:
        """Wait for the mails still going out (at shutdown)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def _count(self, email: str) -> None:
        """One more request for this address in the window; past the limit, refused (known address or not)."""
        key = _ASKED_PREFIX + hashlib.sha256(email.encode()).hexdigest()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self._config.password_reset_window_s, nx=True)
                pipe.ttl(key)
                asked, _, ttl = await pipe.execute()
        except RedisError as e:  # uncounted, an address could be flooded with mails: none is sent meanwhile
            log.warning("password-reset counters unreachable: %s", e)
            raise Unavailable("service.unavailable", retry_after=5) from None
        if int(asked) > self._config.password_reset_max_requests:
            raise RateLimited("account.reset_too_many", minutes=(max(int(ttl), 60) + 59) // 60)

    def _send_later(self, mail: Mail) -> None:
        task = asyncio.create_task(self._send(mail))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, mail: Mail) -> None:
        try:
            await self._mailer.send(mail)
        except Exception:  # noqa: BLE001 — the person can ask again; nothing else waits on it
            log.exception("a password-reset mail could not be sent")


def _reset_mail(email: str, nickname: str, link: str) -> Mail:
    """The reset mail: Korean first, then English."""
    params = {"nickname": nickname, "link": link}
    return Mail(email, f'{render("mail.reset_subject", "ko")} / {render("mail.reset_subject", "en")}',
                f'{render("mail.reset_body", "ko", **params)}\n\n---\n\n{render("mail.reset_body", "en", **params)}\n')


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
