"""The send gate: senders' rate counters and sessions (and, for whoever asks, whether a key exists), for every
pending send in one Redis round trip."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from market.people.accounts import session_key

log = logging.getLogger("billi.chat")
_AWAY_S = 5.0
_SESSION_KEYS = 100_000  # sessions whose cache key is kept
# What the gate says of one send: the sender's count in the window, the session's user id (None: not cached),
# whether the watched key exists (None: not asked).
Checked = tuple[int, str | None, bool | None]


class SendGate:
    """Per-send Redis bookkeeping — the sender's rate counter and, optionally, their session and whether a key
    exists (the bot's open question for the sender in that room) — for every send pending in this process, in one
    round trip — one script call (the same idea as the group commit).

    With Redis away, sending goes on: each node counts in its own memory (a sender spread over n nodes gets at
    most n times the limit, only while Redis is away) and the session is left to MariaDB."""

    def __init__(self, redis: aioredis.Redis, window_s: int) -> None:
        self._redis = redis
        self._window_s = window_s
        self._local: dict[tuple[int, int], int] = {}  # (user, window) → sends, while Redis is away
        # After a failure Redis is not asked again for a few seconds: each try costs a frozen Redis's full timeout.
        self._away_until = 0.0
        self._pending: list[tuple[int, str | None, str | None, asyncio.Future[Checked]]] = []
        # Each session's cache key, worked out once (a SHA-256 per send before); cleared when it grows past a bound.
        self._session_keys: dict[str, str] = {}
        self._flusher: asyncio.Task[None] | None = None
        # One command for every pending send: count each (a counter expires with its window), read its session
        # and whether its watched key exists. KEYS: counter, session, watched, counter, …; the answer: count,
        # user id (false: none), 0/1, … (one command, not one per send: a pipeline of many costs the gateway its
        # packing and parsing each)
        self._script = redis.register_script(
            "local out = {} "
            "for i = 1, #KEYS, 3 do "
            "  local n = redis.call('INCR', KEYS[i]) "
            "  if n == 1 then redis.call('EXPIRE', KEYS[i], ARGV[1]) end "
            "  out[i] = n "
            "  out[i + 1] = redis.call('GET', KEYS[i + 1]) "
            "  out[i + 2] = redis.call('EXISTS', KEYS[i + 2]) "
            "end "
            "return out")

    async def check(self, user_id: int, session_token: str | None, watch: str | None = None) -> Checked:
        """The sender's count in the current window (this send included), the session's user id, and whether
        the key ``watch`` exists (None when Redis could not be asked or nothing was watched)."""
        future: asyncio.Future[Checked] = asyncio.get_running_loop().create_future()
        self._pending.append((user_id, session_token, watch, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            window = int(datetime.now(UTC).timestamp()) // self._window_s
            if time.monotonic() < self._away_until:
                self._count_here(batch, window)
                continue
            try:
                keys: list[str] = []
                known = self._session_keys
                for user_id, token, watch, _ in batch:
                    if not token:
                        session = "billi:no-session"
                    elif (session := known.get(token)) is None:
                        if len(known) >= _SESSION_KEYS:
                            known.clear()
                        session = known[token] = session_key(token)
                    keys += [f"billi:rate:chat:{user_id}:{window}", session, watch or "billi:no-watch"]
                answer = await self._script(keys=keys, args=[self._window_s + 1])
                results = [(int(answer[i]), answer[i + 1], bool(answer[i + 2]) if batch[i // 3][2] else None)
                           for i in range(0, len(answer), 3)]
            except RedisError as e:
                if not self._away_until:
                    log.warning("chat send-rate counters unreachable (%s): counting on this node", e)
                self._away_until = time.monotonic() + _AWAY_S
                self._count_here(batch, window)
                continue
            except Exception as e:  # noqa: BLE001 — every waiting sender hears about it
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            if self._away_until:
                log.warning("chat send-rate counters reachable again")
                self._away_until = 0.0
            for result, (*_, future) in zip(results, batch, strict=True):
                if not future.done():
                    future.set_result(result)

    def _count_here(self, batch: list[tuple[int, str | None, str | None, asyncio.Future[Checked]]],
                    window: int) -> None:
        for key in [k for k in self._local if k[1] != window]:
            del self._local[key]  # past windows
        for user_id, _, _, future in batch:
            self._local[(user_id, window)] = count = self._local.get((user_id, window), 0) + 1
            if not future.done():
                future.set_result((count, None, None))  # (no cached session: MariaDB is asked)
