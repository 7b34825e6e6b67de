"""A person's language (``users.locale``: "ko" or "en") as the bot reads it for every typed command: a copy in
Redis, so a command reads it in the round trip it makes anyway (with its flood count), not in a database query.

``users.locale`` is the record. The copy under ``key(user_id)`` lives ``TTL_S``; a change of language
(``Accounts.update_profile``) overwrites it after the change is committed, and a reader that found no copy fills
it from the database with SET NX — so a fill that read the old language just before a change can never
overwrite the change's copy. With Redis away the database answers, as before.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from market.db import Database

log = logging.getLogger("billi.people")
TTL_S = 600


def key(user_id: int) -> str:
    return f"billi:locale:{user_id}"


def known(raw: Any) -> str | None:
    """The language a copy holds (None: no copy)."""
    return raw if raw in ("ko", "en") else None


async def locale_of(db: Database, redis: aioredis.Redis | None, user_id: int) -> str:
    """From the record; with ``redis``, the copy is filled too (when there is none)."""
    locale = "en" if await db.fetchval("SELECT locale FROM users WHERE id = %s", (user_id,)) == "en" else "ko"
    if redis is not None:
        try:
            await redis.set(key(user_id), locale, ex=TTL_S, nx=True)
        except RedisError as e:  # the record answered; the next reader fills it
            log.warning("could not keep a person's language in Redis: %r", e)
    return locale


async def forget(redis: aioredis.Redis, user_id: int) -> None:
    """Drops the copy (the next reader fills it from the record)."""
    try:
        await redis.delete(key(user_id))
    except RedisError:
        log.warning("could not drop a person's language copy in Redis", exc_info=True)


async def changed(redis: aioredis.Redis, user_id: int, locale: str) -> None:
    """After a committed change of language: the copy says the new one."""
    try:
        await redis.set(key(user_id), locale, ex=TTL_S)
    except RedisError:
        # A copy left behind would answer in the old language until it expires: try to drop it instead.
        log.warning("could not note a person's new language in Redis", exc_info=True)
        try:
            await redis.delete(key(user_id))
        except RedisError:
            pass
