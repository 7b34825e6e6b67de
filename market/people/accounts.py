"""Accounts: sign-up, log-in and sessions (one, or all of a person's at once), password changes, profile photos.

Passwords are hashed with argon2id (bounded, off the event loop); log-ins are throttled per address and account;
session tokens are random and only their SHA-256 is stored, in MariaDB, cached in Redis. Nothing here knows about
cookies, sockets or HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pymysql
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from market import validation as v
from market.config import Config
from market.db import Database, Row
from market.errors import Conflict, InvalidInput, NotFound, RateLimited, Unauthenticated, Unavailable
from market.limits import Limits
from market.people import locale as locale_copy
from market.people.known_devices import KnownDevices
from market.people.login_throttle import Attempt, LoginThrottle
from market.people.nicknames import read_nickname
from market.people.password_hashing import DUMMY_HASH, PasswordWork
from market.people.passwords import check_password
from market.storage import BlobStore, media_url
from market.uploads import Uploads

log = logging.getLogger("billi.accounts")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
_SESSION_PREFIX = "billi:session:"
_CACHE_S = 300  # how long Redis may answer for a session before MariaDB is asked again
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)
_NEGATIVE_S = 300  # an unknown or revoked token's cached "no"
_REFUSED = "-"
_PERSON_PREFIX = "billi:person:"  # a copy of the profile a session's requests carry (``User``)
_PERSON_GEN_PREFIX = "billi:person-gen:"  # counts the changes of a person's profile (see ``profile_changed``)
_PERSON_GEN_S = 24 * 3600
_PASSWORD_FAIL_PREFIX = "billi:password-fail:"  # wrong passwords typed in a live session (change, deletion)
_AWAY_RETRY_S = 5  # Retry-After when the counters that guard passwords cannot be reached

# KEYS: a person's wrong-password counter. ARGV: allowance, window (s). Returns the counter's seconds left (≥ 1) if
# it is full (nothing counted), else 0 and the try counted (reserved before the password is checked).
_RESERVE_PASSWORD_TRY = """
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then
  local left = redis.call('TTL', KEYS[1])
  if left < 1 then left = 1 end
  return left
end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# KEYS: as above. A reserved try given back (never judged) — unless its window has passed meanwhile: a DECR then
# would make a counter of -1 that never expires (a free try, kept for good).
_GIVE_BACK_PASSWORD_TRY = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 0
"""

# The person behind a session, in one round trip: KEYS: the session's key. ARGV: the profile copies' key prefix, their
# generations' prefix, the refused mark. Returns {the session's value} — none, or refused — or {the person's id,
# their profile copy (none), its generation ('' for none)}. (Their keys are named from the session's value: one
# Redis server, not a cluster.)
_SESSION_PERSON = """
local s = redis.call('GET', KEYS[1])
if not s or s == ARGV[3] then return {s} end
return {s, redis.call('GET', ARGV[1] .. s), redis.call('GET', ARGV[2] .. s) or ''}
"""
# KEYS: a profile copy, its generation. ARGV: the copy, the generation read before the record was, seconds to keep
# it. Kept only if no change of the profile was noted since that generation was read (and no copy is there).
_KEEP_PERSON = """
if (redis.call('GET', KEYS[2]) or '') == ARGV[2] then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3], 'NX') end
return 0
"""
# A new session's cache, and the copy of the profile its sign-up or log-in just read, so the first request finds
# it. KEYS: the session, the profile copy, its generation. ARGV: the user id, seconds to keep the session's cache,
# the copy, seconds to keep it. The session's never over what is there: a new token's key is there only if a
# revocation that committed since its INSERT wrote its "no" (``uncache``), which must win. The copy only if no
# change of the profile was noted within _PERSON_GEN_S (one since the record was read would be: the log-in's read
# is seconds old at most) and none is there.
_NEW_SESSION = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX')
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4], 'NX') end
return 0
"""


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

    def copy(self) -> str:
        """The profile as its Redis copy holds it (``from_copy`` reads it back)."""
        return orjson.dumps([self.id, self.email, self.nickname, self.locale, self.profile_photo_key,
                             self.created_at.isoformat()]).decode()

    @classmethod
    def from_copy(cls, raw: str) -> User:
        uid, email, nickname, locale, photo, created = orjson.loads(raw)
        return cls(uid, email, nickname, locale, photo, datetime.fromisoformat(created))

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
    device: str | None = None  # a known-device token for the browser that logged in (see known_devices)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_key(token: str) -> str:
    """The Redis key caching a session token (only its hash is stored)."""
    return _SESSION_PREFIX + token_hash(token)


class Accounts:
    """Sign-up, log-in, sessions and profiles."""

    def __init__(self, db: Database, redis: aioredis.Redis, store: BlobStore, config: Config,
                 uploads: Uploads, limits: Limits) -> None:
        self._db = db
        self._redis = redis
        self._store = store
        self._config = config
        self._uploads = uploads
        self._limits = limits
        self._passwords = PasswordWork(config.password_hash_concurrency)
        self._throttle = LoginThrottle(redis, config)
        self._devices = KnownDevices(config.token_key)
        self._reserve_password_try = redis.register_script(_RESERVE_PASSWORD_TRY)
        self._give_back_password_try = redis.register_script(_GIVE_BACK_PASSWORD_TRY)
        self._session_person = redis.register_script(_SESSION_PERSON)
        self._keep_person = redis.register_script(_KEEP_PERSON)
        self._session_made = redis.register_script(_NEW_SESSION)

    def close(self) -> None:
        """Stop the password workers."""
        self._passwords.close()

    # -- sign-up / log-in --------------------------------------------------------------------------
    async def sign_up(self, data: dict[str, Any], *, source: str | None = None) -> Session:
        """A new account and its first session. ``source`` is the client's address: one address may make only so
        many accounts per window (``limit.sign_up``), counted once the form is valid and before any password work
        is spent. None: made by our own tools (demo data, benchmarks, tests), not through the network, so not
        counted — the gateway always passes the address.

        A taken e-mail address is said (``account.email_taken``): any follow-up would tell it anyway, and the
        per-address limit bounds how many addresses one client can ask about."""
        v.only_fields(data, {"email", "nickname", "password", "locale"})
        email = account_email(data)
        nickname = read_nickname(data)
        assert nickname is not None
        password = new_password(data, "password", email=email, nickname=nickname)
        locale = v.choice(data, "locale", ("ko", "en"), required=False, default="ko")
        if source is not None:
            await self._limits.take(self._limits.sign_up, address=source)
        password_hash = await self._passwords.hash(password)
        try:
            user_id = await self._insert_user(email, nickname, password_hash, locale or "ko")
        except pymysql.err.IntegrityError as e:
            if "uq_users_email" in str(e):
                raise Conflict("account.email_taken", field="email") from None
            if "uq_users_nickname" in str(e):
                raise Conflict("account.nickname_taken", field="nickname") from None
            raise
        user = await self.get(user_id)
        return Session(await self._new_session(user), user, self._devices.issue(user.id, 0))  # (a new epoch)

    async def _insert_user(self, email: str, nickname: str, password_hash: str, locale: str) -> int:
        async with self._db.transaction() as cur:
            await cur.execute(
                "INSERT INTO users (email, nickname, password_hash, locale) VALUES (%s, %s, %s, %s)",
                (email, nickname, password_hash, locale),
            )
            return int(cur.lastrowid)

    async def log_in(self, data: dict[str, Any], *, source: str, device: str | None = None) -> Session:
        """A session for the right e-mail and password. ``source`` is the client's address: an address that
        has been failing waits before it may try again (``account.login_throttled``); ``device`` is the browser's
        known-device token, if it has one: a browser known to the account is judged by its own failures, not by
        the account's. The try is counted before any password work is spent, and given back if the password was
        right. The session comes with a device token for this browser."""
        v.only_fields(data, {"email", "password"})
        email = account_email(data)
        password = data.get("password")
        if not isinstance(password, str) or not password:
            raise InvalidInput("input.required", field="password")
        row = await self._db.fetchone("SELECT * FROM users WHERE email = %s", (email,))
        known = self._devices.device_of(device, int(row["id"]), int(row["auth_epoch"])) if row is not None else None
        attempt = self._throttle.attempt(email, source, known)
        if wait_s := await self._guarded(self._throttle.reserve(attempt)):
            raise RateLimited("account.login_throttled", retry_after=wait_s, wait=timedelta(seconds=wait_s))
        stored = row["password_hash"] if row and row["password_hash"] else DUMMY_HASH
        try:
            right = await self._passwords.verify(stored, password)
        except BaseException:  # hashing busy (or the request gone): the try was never judged
            await self._give_back(attempt, succeeded=False)
            raise
        if not right or row is None or not row["password_hash"]:
            raise Unauthenticated("account.bad_login")  # the reserved try stays counted as a failure
        await self._give_back(attempt, succeeded=True)
        if self._passwords.needs_rehash(stored):
            await self._rehash(row["id"], password)
        user = User.from_row(row)
        return Session(await self._new_session(user, epoch=int(row["auth_epoch"])), user,
                       self._devices.issue(user.id, int(row["auth_epoch"]), known))

    async def _guarded(self, call: Any) -> Any:
        """A call to the counters that guard passwords; with Redis away no password is checked unthrottled:
        ``service.unavailable`` (503) with Retry-After."""
        try:
            return await call
        except RedisError as e:
            log.warning("password-guessing counters unreachable: %s", e)
            raise Unavailable("service.unavailable", retry_after=_AWAY_RETRY_S) from None

    async def _give_back(self, attempt: Attempt, *, succeeded: bool) -> None:
        try:
            await self._throttle.release(attempt, succeeded=succeeded)
        except RedisError as e:  # the try stays counted (as a failure) until its window passes
            log.warning("a log-in try could not be given back: %s", e)

    async def _rehash(self, user_id: int, password: str) -> None:
        """Store the password hashed with today's parameters — unless hashing is busy: the old hash still works
        and is renewed at a later log-in."""
        try:
            new_hash = await self._passwords.hash(password)
        except Unavailable:
            return
        await self._db.execute("UPDATE users SET password_hash = %s WHERE id = %s", (new_hash, user_id))

    async def session_for(self, user_id: int, *, known_device: bool = False) -> Session:
        """A new session for someone whose identity was proven another way (Naver login, a reset link); with
        ``known_device``, the browser is known to the account from now on (see ``device_token``)."""
        user = await self.get(user_id)
        return Session(await self._new_session(user), user,
                       await self.device_token(user.id) if known_device else None)

    async def device_token(self, user_id: int) -> str:
        """A new known-device token for the browser of someone who has just proven the password here (a new one
        after a password change or reset, which void every token the account had)."""
        epoch = await self._db.fetchval("SELECT auth_epoch FROM users WHERE id = %s", (user_id,))
        if epoch is None:
            raise NotFound("account.not_found")
        return self._devices.issue(user_id, int(epoch))

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

    async def log_out_everywhere(self, user_id: int) -> list[str]:
        """End every session of this person; returns their token hashes (whose sockets are to be hung up)."""
        async with self._db.transaction() as cur:
            ended = await self.revoke_sessions(cur, user_id)
        await self.uncache(ended)
        return ended

    async def revoke_sessions(self, cur: Any, user_id: int, *, keep: str | None = None) -> list[str]:
        """In the caller's transaction, revoke every session of this person but ``keep`` (a token); returns the
        revoked token hashes. Call ``uncache`` with them once the transaction has committed."""
        now = _now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as DATETIME(3) keeps it, to find them again
        # a log-in that checked the password before this commits can no longer make a session (_new_session)
        await cur.execute("UPDATE users SET auth_epoch = auth_epoch + 1 WHERE id = %s", (user_id,))
        await cur.execute("UPDATE sessions SET revoked_at = %s WHERE user_id = %s AND revoked_at IS NULL"
                          " AND token_hash <> %s", (now, user_id, token_hash(keep) if keep else ""))
        await cur.execute("SELECT token_hash FROM sessions WHERE user_id = %s AND revoked_at = %s", (user_id, now))
        return [r["token_hash"] for r in await cur.fetchall()]

    async def uncache(self, token_hashes: list[str]) -> None:
        """Make the cache say "no" for these revoked sessions (MariaDB already does)."""
        if not token_hashes:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for digest in token_hashes:
                    pipe.set(_SESSION_PREFIX + digest, _REFUSED, ex=_NEGATIVE_S)
                await pipe.execute()
        except RedisError as e:  # as in log_out: a cache kept through the outage may say "yes" for ≤ 5 min
            log.warning("ended sessions could not reach the session cache: %s", e)

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
        """The user a session token belongs to, or None for a missing, unknown, expired or revoked token.

        Every request with a session asks this, so the session's cache and a copy of the person's profile are read
        in one Redis round trip. Whether the session is live is the session cache's answer alone, as in
        ``session_user_id``. The copy of the profile is kept ``_CACHE_S`` at most; a change of the profile
        (``profile_changed``, after its commit) drops it and counts a generation, and a copy read from the record
        is kept only if no change was counted since before that read — so a copy never outlives a committed
        change, even one that races the read."""
        if not token or not _TOKEN.match(token):
            return None
        try:
            found = await self._session_person(keys=[session_key(token)],
                                               args=[_PERSON_PREFIX, _PERSON_GEN_PREFIX, _REFUSED])
        except RedisError:  # Redis away: the system of record answers
            user_id = await self.session_from_db(token, refill=False)
            return None if user_id is None else await self._person(user_id)
        raw = found[0] if found else None
        if raw == _REFUSED:
            return None
        if raw is None:  # not cached (a restarted or flushed Redis): MariaDB, which refills the session's cache
            user_id = await self.session_from_db(token)
            return None if user_id is None else await self._person(user_id)
        user_id = int(raw)
        if found[1] is not None:
            user = User.from_copy(found[1])
            if user.id == user_id:
                return user
        user = await self._person(user_id)
        if user is not None:
            with contextlib.suppress(RedisError):  # (not kept: the next request reads the record again)
                await self._keep_person(keys=[_PERSON_PREFIX + str(user_id), _PERSON_GEN_PREFIX + str(user_id)],
                                        args=[user.copy(), found[2], _CACHE_S])
        return user

    async def _person(self, user_id: int) -> User | None:
        try:
            return await self.get(user_id)
        except NotFound:
            return None

    async def profile_changed(self, user_id: int) -> None:
        """After a committed change of what ``User`` holds (nickname, language, photo, an account's deletion): the
        profile's copy goes, and a copy read before the change can no longer be kept (``session_user``). With Redis
        away the copy it kept may show the old profile until it expires (≤ ``_CACHE_S``); a session's validity never
        rests on it."""
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(_PERSON_GEN_PREFIX + str(user_id))
                pipe.expire(_PERSON_GEN_PREFIX + str(user_id), _PERSON_GEN_S)
                pipe.delete(_PERSON_PREFIX + str(user_id))
                await pipe.execute()
        except RedisError as e:
            log.warning("a changed profile could not reach its copy in Redis: %s", e)

    async def session_user_id(self, token: str | None) -> int | None:
        """The user id of a live session: the Redis cache (one read, for checks on every socket event), and on a
        miss — a restarted or flushed Redis — MariaDB, which then fills the cache again."""
        if not token or not _TOKEN.match(token):
            return None
        try:
            raw = await self._redis.get(session_key(token))
        except RedisError:  # Redis away: the system of record answers every check until it is back
            return await self.session_from_db(token, refill=False)
        if raw is not None:
            return None if raw == _REFUSED else int(raw)
        return await self.session_from_db(token)

    async def session_from_db(self, token: str, *, refill: bool = True) -> int | None:
        """The system of record's answer for a token (and the cache filled with it, unless Redis just failed)."""
        if not _TOKEN.match(token):
            return None
        now = _now()
        row = await self._db.fetchone("SELECT user_id, expires_at FROM sessions WHERE token_hash = %s"
                                      " AND revoked_at IS NULL AND expires_at > %s", (token_hash(token), now))
        user_id = None if row is None else int(row["user_id"])
        if refill:
            await self.refill(token, user_id, 0 if row is None else int((row["expires_at"] - now).total_seconds()))
        return user_id

    async def refill(self, token: str, user_id: int | None, left_s: int) -> None:
        """Put MariaDB's answer back in the cache. It never overwrites: a logout that wrote its "no" after the
        answer was read still wins (NX). With Redis away there is no cache to fill."""
        with contextlib.suppress(RedisError):
            if user_id is None:
                await self._redis.set(session_key(token), _REFUSED, ex=_NEGATIVE_S, nx=True)
            else:
                await self._redis.set(session_key(token), str(user_id), ex=max(1, min(left_s, _CACHE_S)), nx=True)

    async def _new_session(self, user: User, *, epoch: int | None = None) -> str:
        """A new session for a living account (``user``: as just read); with ``epoch`` (read with the password it
        checked) only if no revocation happened since — else ``account.bad_login``, as if the password had been
        wrong. Its cache and a copy of the profile go to Redis in one call (``_NEW_SESSION``)."""
        user_id = user.id
        token = secrets.token_urlsafe(32)
        now = _now()
        made = await self._db.execute(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) SELECT %s, id, %s, %s FROM users"
            " WHERE id = %s AND deleted_at IS NULL AND (%s IS NULL OR auth_epoch = %s)",
            (token_hash(token), now, now + timedelta(seconds=self._config.session_ttl_s), user_id, epoch, epoch))
        if not made:
            raise Unauthenticated("account.bad_login")
        with contextlib.suppress(RedisError):  # (Redis away: the session is MariaDB's; the cache fills later)
            await self._session_made(keys=[session_key(token), _PERSON_PREFIX + str(user_id),
                                           _PERSON_GEN_PREFIX + str(user_id)],
                                     args=[str(user_id), min(self._config.session_ttl_s, _CACHE_S), user.copy(),
                                           _CACHE_S])
        return token

    # -- passwords ---------------------------------------------------------------------------------
    async def change_password(self, user_id: int, token: str, data: dict[str, Any]) -> list[str]:
        """Set a new password (the current one proven first): every other session of the person ends, this one
        (``token``) stays. Returns the ended sessions' token hashes."""
        v.only_fields(data, {"current", "new"})
        current = data.get("current")
        if not isinstance(current, str) or not current:
            raise InvalidInput("input.required", field="current")
        person = await self.get(user_id)
        new = new_password(data, "new", email=person.email, nickname=person.nickname)
        await self.check_password(user_id, current, field="current")
        new_hash = await self._passwords.hash(new)
        async with self._db.transaction() as cur:
            await cur.execute("UPDATE users SET password_hash = %s WHERE id = %s", (new_hash, user_id))
            await cur.execute("UPDATE password_resets SET used_at = %s WHERE user_id = %s AND used_at IS NULL",
                              (_now(), user_id))  # a reset link mailed before the change no longer works
            ended = await self.revoke_sessions(cur, user_id, keep=token)
            await self.unlink_other_sessions_links(cur, user_id, keep=token)
        await self.uncache(ended)
        return ended

    @staticmethod
    async def unlink_other_sessions_links(cur: Any, user_id: int, *, keep: str | None = None) -> None:
        """In the caller's transaction (a password change or reset), unlink every login link (Naver) that was added
        from a session other than ``keep`` — any session at all, without it. Whoever added one with a stolen
        session cannot log in with it once the owner has set a new password; links the account was made with
        (none made from a session) stay, and the owner re-links her own with one click. A link added before
        sessions were recorded (``'legacy'``, migration 0033) counts as added from another session."""
        await cur.execute("DELETE FROM login_links WHERE user_id = %s AND linked_in_session IS NOT NULL"
                          " AND linked_in_session <> %s", (user_id, token_hash(keep) if keep else ""))

    async def check_password(self, user_id: int, password: Any, *, field: str) -> None:
        """Prove that the person at this session knows the account's password (before changing it or leaving).
        Wrong guesses are counted per person and cut off like log-ins, so a stolen session cannot try
        passwords without end."""
        if not isinstance(password, str) or not password:
            raise InvalidInput("input.required", field=field)
        stored = await self._db.fetchval("SELECT password_hash FROM users WHERE id = %s", (user_id,))
        if not stored:
            raise Conflict("account.no_password", field=field)
        fail_key = f"{_PASSWORD_FAIL_PREFIX}{user_id}"
        # counted before the password is checked (atomically), so parallel guesses cannot all be judged first
        left_s = int(await self._guarded(self._reserve_password_try(
            keys=[fail_key], args=[self._config.login_max_failures, self._config.login_failure_window_s])))
        if left_s:
            raise RateLimited("account.password_locked", minutes=max(1, math.ceil(left_s / 60)),
                              retry_after=left_s)
        try:
            right = await self._passwords.verify(stored, password)
        except BaseException:  # hashing busy: not a wrong guess
            with contextlib.suppress(RedisError):
                await self._give_back_password_try(keys=[fail_key])
            raise
        if not right:
            raise InvalidInput("account.wrong_password", field=field)  # the reserved try stays counted
        with contextlib.suppress(RedisError):
            await self._redis.delete(fail_key)

    async def hash_password(self, password: str) -> str:
        """argon2id within the process's bound (``account.busy`` beyond it)."""
        return await self._passwords.hash(password)

    async def has_password(self, user_id: int) -> bool:
        return bool(await self._db.fetchval("SELECT password_hash IS NOT NULL FROM users WHERE id = %s", (user_id,)))

    # -- profile -----------------------------------------------------------------------------------
    async def get(self, user_id: int) -> User:
        # (the columns a User has, not the password hash and the rest: every request with a session asks this)
        row = await self._db.fetchone("SELECT id, email, nickname, locale, profile_photo_key, created_at FROM users"
                                      " WHERE id = %s", (user_id,))
        if row is None:
            raise NotFound("account.not_found")
        return User.from_row(row)

    async def update_profile(self, user: User, data: dict[str, Any]) -> User:
        v.only_fields(data, {"nickname", "locale"})
        if not data:
            raise InvalidInput("input.nothing_to_change")
        nickname = read_nickname(data, required=False)
        locale = v.choice(data, "locale", ("ko", "en"), required=False)
        try:
            await self._db.execute(
                "UPDATE users SET nickname = COALESCE(%s, nickname), locale = COALESCE(%s, locale) WHERE id = %s",
                (nickname, locale, user.id),
            )
        except pymysql.err.IntegrityError:
            raise Conflict("account.nickname_taken", field="nickname") from None
        await self.profile_changed(user.id)
        if locale is not None:  # the bot's copy of it (market.people.locale)
            await locale_copy.changed(self._redis, user.id, locale)
        fresh = await self.get(user.id)
        if locale is not None and fresh.locale != locale:
            # Another change of language committed after this one and wrote its copy before this one did: the
            # copy this wrote is stale; the next reader fills it from the record.
            await locale_copy.forget(self._redis, user.id)
        return fresh

    async def set_profile_photo(self, user: User, data: bytes) -> User:
        image = await self._uploads.process(data)
        key = f"profiles/{user.id}/{uuid.uuid4().hex}.jpg"
        await self._store.put(key, image.thumb, image.content_type)
        old = user.profile_photo_key
        await self._db.execute("UPDATE users SET profile_photo_key = %s WHERE id = %s", (key, user.id))
        await self.profile_changed(user.id)
        if old:
            await self._store.discard(old)
        return await self.get(user.id)



def account_email(data: dict[str, Any]) -> str:
    """The ``email`` of a request, lower-cased, in the shape of an address."""
    email = v.text(data, "email", max_len=254)
    assert email is not None
    email = email.lower()
    if not _EMAIL.match(email):
        raise InvalidInput("account.bad_email", field="email")
    return email


def new_password(data: dict[str, Any], field: str, *, email: str | None = None, nickname: str | None = None) -> str:
    """A new password under the rules of ``market.people.passwords`` (8–128 characters, not a common one, not
    the person's own name where it is known)."""
    return check_password(data.get(field), email=email, nickname=nickname, field=field)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
