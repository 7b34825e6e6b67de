"""Accounts: sign-up, log-in and sessions, profile photos.

Passwords are hashed with argon2id (off the event loop); session tokens are random and only their
SHA-256 is stored, in Redis with a TTL. Nothing here knows about cookies or HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pymysql
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from market import validation as v
from market.config import Config
from market.db import Database, Row
from market.errors import Conflict, InvalidInput, NotFound, RateLimited, Unauthenticated
from market.storage import BlobStore, media_url
from market.uploads import Uploads

log = logging.getLogger("billi.accounts")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
_NICKNAME = re.compile(r"^[0-9A-Za-z_가-힣]{2,20}$")
_SESSION_PREFIX = "billi:session:"
_CACHE_S = 300  # how long Redis may answer for a session before MariaDB is asked again
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)
_NEGATIVE_S = 300  # an unknown or revoked token's cached "no"
_REFUSED = "-"
_LOGIN_FAIL_PREFIX = "billi:login-fail:"

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0")


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str | None
    nickname: str
    locale: str
    profile_photo_key: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> User:
        return cls(row["id"], row["email"], row["nickname"], row["locale"], row["profile_photo_key"],
                   row["created_at"])

    def public(self) -> dict[str, Any]:
        """What anyone may see of this user."""
        return {"id": self.id, "nickname": self.nickname, "profile_photo": media_url(self.profile_photo_key)}

    def private(self) -> dict[str, Any]:
        """What the user sees of themself."""
        return {**self.public(), "email": self.email, "locale": self.locale,
                "created_at": self.created_at.isoformat()}


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    user: User


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_key(token: str) -> str:
    """The Redis key caching a session token (only its hash is stored)."""
    return _SESSION_PREFIX + token_hash(token)


class Accounts:
    """Sign-up, log-in, sessions and profiles."""

    def __init__(self, db: Database, redis: aioredis.Redis, store: BlobStore, config: Config,
                 uploads: Uploads) -> None:
        self._db = db
        self._redis = redis
        self._store = store
        self._config = config
        self._uploads = uploads

    # -- sign-up / log-in --------------------------------------------------------------------------
    async def sign_up(self, data: dict[str, Any]) -> Session:
        v.only_fields(data, {"email", "nickname", "password", "locale"})
        email = self._email(data)
        nickname = v.text(data, "nickname", min_len=2, max_len=20)
        assert nickname is not None
        if not _NICKNAME.match(nickname):
            raise InvalidInput("account.bad_nickname", field="nickname")
        password = data.get("password")
        if not isinstance(password, str) or not password:
            raise InvalidInput("input.required", field="password")
        if (len(password) < 8 or len(password) > 128 or not re.search(r"[A-Za-z]", password)
                or not re.search(r"\d", password)):
            raise InvalidInput("account.weak_password", field="password")
        locale = v.choice(data, "locale", ("ko", "en"), required=False, default="ko")
        password_hash = await asyncio.to_thread(_hasher.hash, password)
        try:
            user_id = await self._insert_user(email, nickname, password_hash, locale or "ko")
        except pymysql.err.IntegrityError as e:
            if "uq_users_email" in str(e):
                raise Conflict("account.email_taken", field="email") from None
            if "uq_users_nickname" in str(e):
                raise Conflict("account.nickname_taken", field="nickname") from None
            raise
        user = await self.get(user_id)
        return Session(await self._new_session(user.id), user)

    async def _insert_user(self, email: str, nickname: str, password_hash: str, locale: str) -> int:
        async with self._db.transaction() as cur:
            await cur.execute(
                "INSERT INTO users (email, nickname, password_hash, locale) VALUES (%s, %s, %s, %s)",
                (email, nickname, password_hash, locale),
            )
            return int(cur.lastrowid)

    async def log_in(self, data: dict[str, Any]) -> Session:
        v.only_fields(data, {"email", "password"})
        email = self._email(data)
        password = data.get("password")
        if not isinstance(password, str) or not password:
            raise InvalidInput("input.required", field="password")
        fail_key = _LOGIN_FAIL_PREFIX + hashlib.sha256(email.encode()).hexdigest()
        failures = int(await self._redis.get(fail_key) or 0)
        if failures >= self._config.login_max_failures:
            ttl = max(await self._redis.ttl(fail_key), 60)
            raise RateLimited("account.login_locked", minutes=(ttl + 59) // 60)
        row = await self._db.fetchone("SELECT * FROM users WHERE email = %s", (email,))
        stored = row["password_hash"] if row and row["password_hash"] else _DUMMY_HASH
        if not await asyncio.to_thread(_verify, stored, password) or row is None or not row["password_hash"]:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(fail_key)
                pipe.expire(fail_key, self._config.login_failure_window_s, nx=True)
                await pipe.execute()
            raise Unauthenticated("account.bad_login")
        await self._redis.delete(fail_key)
        if _hasher.check_needs_rehash(stored):
            new_hash = await asyncio.to_thread(_hasher.hash, password)
            await self._db.execute("UPDATE users SET password_hash = %s WHERE id = %s", (new_hash, row["id"]))
        user = User.from_row(row)
        return Session(await self._new_session(user.id), user)

    async def session_for(self, user_id: int) -> Session:
        """A new session for someone whose identity was proven another way (Naver login)."""
        user = await self.get(user_id)
        return Session(await self._new_session(user.id), user)

    async def log_out(self, token: str) -> None:
        """Revoke the session: in MariaDB first (so it stays refused whatever Redis holds), then its cache."""
        if not token or len(token) > 200:
            return
        await self._db.execute("UPDATE sessions SET revoked_at = %s WHERE token_hash = %s AND revoked_at IS NULL",
                               (_now(), token_hash(token)))
        try:
            await self._redis.set(session_key(token), _REFUSED, ex=_NEGATIVE_S)
        except RedisError as e:  # Redis away: a cache it kept (AOF) may say "yes" until its entry expires (≤ 5 min)
            log.warning("a log-out could not reach the session cache: %s", e)

    async def live_sessions(self, tokens: list[str]) -> set[str]:
        """Of these tokens, the ones whose session is still live (MariaDB's answer, for sockets held open)."""
        by_hash = {token_hash(t): t for t in tokens if _TOKEN.match(t)}
        live: set[str] = set()
        hashes = list(by_hash)
        for at in range(0, len(hashes), 500):
            chunk = hashes[at:at + 500]
            rows = await self._db.fetchall(
                "SELECT token_hash FROM sessions WHERE token_hash IN (" + ", ".join(["%s"] * len(chunk)) + ")"
                " AND revoked_at IS NULL AND expires_at > %s", (*chunk, _now()))
            live.update(by_hash[r["token_hash"]] for r in rows)
        return live

    async def session_user(self, token: str | None) -> User | None:
        """The user a session token belongs to, or None for a missing, unknown, expired or revoked token."""
        user_id = await self.session_user_id(token)
        if user_id is None:
            return None
        try:
            return await self.get(user_id)
        except NotFound:
            return None

    async def session_user_id(self, token: str | None) -> int | None:
        """The user id of a live session: the Redis cache (one read, for checks on every socket event), and on a
        miss — a restarted or flushed Redis — MariaDB, which then fills the cache again."""
        if not token or not _TOKEN.match(token):
            return None
        try:
            raw = await self._redis.get(session_key(token))
        except RedisError:  # Redis away: the system of record answers every check until it is back
            raw = None
        if raw is not None:
            return None if raw == _REFUSED else int(raw)
        return await self.session_from_db(token)

    async def session_from_db(self, token: str) -> int | None:
        """The system of record's answer for a token (and the cache filled with it)."""
        if not _TOKEN.match(token):
            return None
        now = _now()
        row = await self._db.fetchone("SELECT user_id, expires_at FROM sessions WHERE token_hash = %s"
                                      " AND revoked_at IS NULL AND expires_at > %s", (token_hash(token), now))
        if row is None:
            await self.refill(token, None, 0)
            return None
        await self.refill(token, int(row["user_id"]), int((row["expires_at"] - now).total_seconds()))
        return int(row["user_id"])

    async def refill(self, token: str, user_id: int | None, left_s: int) -> None:
        """Put MariaDB's answer back in the cache. It never overwrites: a logout that wrote its "no" after the
        answer was read still wins (NX). With Redis away there is no cache to fill."""
        with contextlib.suppress(RedisError):
            if user_id is None:
                await self._redis.set(session_key(token), _REFUSED, ex=_NEGATIVE_S, nx=True)
            else:
                await self._redis.set(session_key(token), str(user_id), ex=max(1, min(left_s, _CACHE_S)), nx=True)

    async def _new_session(self, user_id: int) -> str:
        token = secrets.token_urlsafe(32)
        now = _now()
        await self._db.execute(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (%s, %s, %s, %s)",
            (token_hash(token), user_id, now, now + timedelta(seconds=self._config.session_ttl_s)))
        await self._redis.set(session_key(token), str(user_id), ex=min(self._config.session_ttl_s, _CACHE_S))
        return token

    # -- profile -----------------------------------------------------------------------------------
    async def get(self, user_id: int) -> User:
        row = await self._db.fetchone("SELECT * FROM users WHERE id = %s", (user_id,))
        if row is None:
            raise NotFound("account.not_found")
        return User.from_row(row)

    async def update_profile(self, user: User, data: dict[str, Any]) -> User:
        v.only_fields(data, {"nickname", "locale"})
        if not data:
            raise InvalidInput("input.nothing_to_change")
        nickname = v.text(data, "nickname", min_len=2, max_len=20, required=False)
        if nickname is not None and not _NICKNAME.match(nickname):
            raise InvalidInput("account.bad_nickname", field="nickname")
        locale = v.choice(data, "locale", ("ko", "en"), required=False)
        try:
            await self._db.execute(
                "UPDATE users SET nickname = COALESCE(%s, nickname), locale = COALESCE(%s, locale) WHERE id = %s",
                (nickname, locale, user.id),
            )
        except pymysql.err.IntegrityError:
            raise Conflict("account.nickname_taken", field="nickname") from None
        return await self.get(user.id)

    async def set_profile_photo(self, user: User, data: bytes) -> User:
        image = await self._uploads.process(data)
        key = f"profiles/{user.id}/{uuid.uuid4().hex}.jpg"
        await self._store.put(key, image.thumb, image.content_type)
        old = user.profile_photo_key
        await self._db.execute("UPDATE users SET profile_photo_key = %s WHERE id = %s", (key, user.id))
        if old:
            await self._store.discard(old)
        return await self.get(user.id)

    @staticmethod
    def _email(data: dict[str, Any]) -> str:
        email = v.text(data, "email", max_len=254)
        assert email is not None
        email = email.lower()
        if not _EMAIL.match(email):
            raise InvalidInput("account.bad_email", field="email")
        return email


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
