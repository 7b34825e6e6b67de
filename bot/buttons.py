"""Button tokens: issued by the server, bound to (user, room, action, payload) and an expiry, kept in Redis.

A token is ``<random>.<expiry as unix seconds>``: an unknown token whose expiry has passed is "expired", one
that never existed is "invalid". A single-use token is marked used atomically when pressed (a Lua script),
so a replayed press — on any gateway node — is refused and changes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

TTL_S = 24 * 3600
# Tokens issued inside ``Buttons.batch()`` (key, body, ttl), stored together when it ends.
_PENDING: ContextVar[list[tuple[str, bytes, int]] | None] = ContextVar("billi_buttons_pending", default=None)
_PRESS = """
local v = redis.call('GET', KEYS[1])
if not v then return nil end
if v == 'used' or v == 'retired' then return v end
local b = cjson.decode(v)
if tonumber(b['user']) ~= tonumber(ARGV[1]) or tonumber(b['room']) ~= tonumber(ARGV[2]) then return 'other' end
if b['single'] then redis.call('SET', KEYS[1], 'used', 'KEEPTTL') end
return v
"""


# KEYS: the batch's token keys; ARGV: each one's body and seconds to live, in turn. One command for the whole
# batch: a pipeline of a SET per token cost the gateway more to write and read than the tokens themselves. (The
# batches of replies made at the same time in this process go together, in one command.)
_STORE = """
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'EX', ARGV[2 * i]) end
return #KEYS
"""


@dataclass(frozen=True, slots=True)
class Press:
    action: str
    payload: dict[str, Any]
    single: bool = False  # single-use: spent by this press


class ButtonError(Exception):
    def __init__(self, reason: str) -> None:  # a key of bot.texts.TEXTS
        super().__init__(reason)
        self.reason = reason


class Buttons:
    def __init__(self, redis: aioredis.Redis, ttl_s: int = TTL_S) -> None:
        self._redis = redis
        self._ttl = ttl_s
        self._press = redis.register_script(_PRESS)
        self._store = redis.register_script(_STORE)
        # batches waiting to be stored, each with the future its reply waits on; the task storing them
        self._outbox: list[tuple[list[tuple[str, bytes, int]], asyncio.Future[None]]] = []
        self._storer: asyncio.Task[None] | None = None

    async def issue(self, user_id: int, room_id: int, action: str, payload: dict[str, Any] | None = None, *,
                    single_use: bool = False, ttl_s: int | None = None) -> str:
        ttl = ttl_s or self._ttl
        expires = int(time.time()) + ttl
        token = f"{_random_part()}.{expires}"
        body = {"user": user_id, "room": room_id, "action": action, "payload": payload or {}, "single": single_use}
        pending = _PENDING.get()
        if pending is not None:
            pending.append((_key(token), _dumps(body), ttl))
        else:
            await self._redis.set(_key(token), _dumps(body), ex=ttl)
        return token

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Tokens issued inside the block are stored together, in one Redis command, as it ends — so a reply
        with a dozen buttons costs one trip, not a dozen. Post the message carrying them after the block: a
        token works once it is stored. (Issue them in this task: another task's tokens are not collected.)"""
        mark = _PENDING.set([])
        try:
            yield
            pending = _PENDING.get() or []
        finally:
            _PENDING.reset(mark)
        if pending:
            await self._stored(pending)

    async def _stored(self, pending: list[tuple[str, bytes, int]]) -> None:
        """Store one reply's tokens; those of other replies this process made meanwhile go in the same Redis
        command (under load many replies are built at once: one trip for all of them, not one each)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.append((pending, future))
        if self._storer is None or self._storer.done():
            self._storer = asyncio.create_task(self._store_all())
        await future

    async def _store_all(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            tokens = [token for pending, _ in batch for token in pending]
            try:
                if len(tokens) == 1:
                    key, body, ttl = tokens[0]
                    await self._redis.set(key, body, ex=ttl)
                else:
                    await self._store(keys=[key for key, _, _ in tokens],
                                      args=[x for _, body, ttl in tokens for x in (body, ttl)])
            except Exception as e:  # noqa: BLE001 — every waiting reply hears about it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def revoke(self, tokens: list[str]) -> None:
        """Buttons a later step made pointless: a press of any of them (an old tab) is refused from now on."""
        if not tokens:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for token in tokens:
                pipe.set(_key(token), "retired", xx=True, keepttl=True)
            await pipe.execute()

    async def press(self, token: Any, user_id: int, room_id: int) -> Press:
        if not isinstance(token, str) or not 0 < len(token) <= 64 or token.count(".") != 1:
            raise ButtonError("button_invalid")
        expires = token.rsplit(".", 1)[1]
        raw = await self._press(keys=[_key(token)], args=[user_id, room_id])
        if raw is None:
            expired = expires.isdigit() and int(expires) <= time.time()
            raise ButtonError("button_expired" if expired else "button_invalid")
        if raw == "used":
            raise ButtonError("button_used")
        if raw == "retired":
            raise ButtonError("button_retired")
        if raw == "other":
            raise ButtonError("button_not_yours")
        body = json.loads(raw)
        return Press(body["action"], body["payload"], bool(body.get("single")))


_RANDOM: list[str] = []  # random URL-safe text, 22 characters a token (drawn from the back)
os.register_at_fork(after_in_child=_RANDOM.clear)  # (a forked process never reuses its parent's characters)
_DRAW = 1023  # bytes asked of the OS at a time: 1,364 base64 characters (no padding), 62 tokens


def _random_part() -> str:
    """A token's random part, shaped as ``secrets.token_urlsafe(16)`` writes one (22 URL-safe characters), from the
    OS's generator: 132 random bits (the 22nd character carries 6 of them, not ``token_urlsafe``'s 2). Drawn 62
    tokens at a time and encoded at once (a reply's dozen buttons would otherwise ask the kernel and the encoder a
    dozen times)."""
    if not _RANDOM:
        text = base64.urlsafe_b64encode(secrets.token_bytes(_DRAW)).decode("ascii")
        _RANDOM.extend(text[k:k + 22] for k in range(0, len(text), 22))
    return _RANDOM.pop()


def _dumps(body: dict[str, Any]) -> bytes:
    """A token's body as JSON (orjson: a reply's dozen bodies cost several times less than with the standard
    library; UTF-8 as the standard library's ``ensure_ascii=False`` wrote it)."""
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)


def _key(token: str) -> str:
    return f"bot:button:{token}"
