"""Flood limits: how often one person, and one address, may search, type bot commands, open deal rooms or sign up.

Counters in Redis, one round trip (one script call) for every check pending in the process; a subject's window
opens at its first counted try (never at a clock boundary, so an allowance cannot be spent twice across one, and a burst is always judged whole). A refused try
counts nothing, so a flood from one person does not also use up the allowance of the others at their address. This module never decides who a person or an
address is: its callers (the gateway, the market's services) say so. An IPv6 address counts under its /64, /56 and /48 at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from market.config import Config
from market.errors import RateLimited

log = logging.getLogger("billi.limits")
_PREFIX = "billi:limit:"
_BATCH = 256  # tries in one script call at most (one call's timeout fails every try in it)
_AWAY_S = 5.0  # after a failure Redis is not asked again for this long (each try costs a frozen Redis's timeout)

# One command takes every pending try (``Limits._full``): its ARGV holds, for each try in turn, how many claim keys
# (0/1), counters and keys to read it has, the window (ms), the claim's token and milliseconds ('' and 0: no
# claim), then each counter's allowance; its KEYS, for each try in turn, the claim's key, one counter per subject,
# the keys to read. Each try is taken as alone: a claim first (SET NX PX): if its key is held by another token,
# {-1} and nothing is counted (held with the try's own token — the command sent again after its answer was lost —
# it only reads). {0} and the try counted in every counter (a counter's first try opens its window) — {0, value,
# …} with the keys read (an absent one: nil) — or {the milliseconds until the first full counter's window ends}
# (then nothing is counted, and a claim taken is given back). The answer: one such list per try, in order ({-2, the
# error} for a try whose command failed: only that try fails).
_TAKE = """
local function take(k, a)
  local c, n, r = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local function reads()
    local out = {0}
    for i = 1, r do out[i + 1] = redis.call('GET', KEYS[k + c + n + i]) end
    return out
  end
  if c == 1 then
    if not redis.call('SET', KEYS[k + 1], ARGV[a + 5], 'NX', 'PX', ARGV[a + 6]) then
      if redis.call('GET', KEYS[k + 1]) ~= ARGV[a + 5] then return {-1} end
      -- Held with this try's own token: this very command ran before and its answer was lost (the client sent
      -- it again). It counted then; now it only reads.
      return reads()
    end
  end
  for i = 1, n do
    if tonumber(redis.call('GET', KEYS[k + c + i]) or '0') >= tonumber(ARGV[a + 6 + i]) then
      local left = redis.call('PTTL', KEYS[k + c + i])
      if left < 1 then left = 1 end
      if c == 1 then redis.call('DEL', KEYS[k + 1]) end
      return {left}
    end
  end
  for i = 1, n do
    if redis.call('INCR', KEYS[k + c + i]) == 1 then redis.call('PEXPIRE', KEYS[k + c + i], ARGV[a + 4]) end
  end
  return reads()
end
local out, k, a = {}, 0, 0
while a < #ARGV do
  -- a try that fails (a key of another type) fails alone: {-2, the error}, and the others are answered
  local ok, answer = pcall(take, k, a)
  if ok then out[#out + 1] = answer else out[#out + 1] = {-2, tostring(answer)} end
  k = k + tonumber(ARGV[a + 1]) + tonumber(ARGV[a + 2]) + tonumber(ARGV[a + 3])
  a = a + 6 + tonumber(ARGV[a + 2])
end
return out
"""


class Claimed(Exception):
    """A ``take_reading`` claim's key was held by someone else: nothing was counted or read."""


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``per_person`` tries of ``action`` by one person and ``per_address`` from one address in each
    window of ``window_s`` seconds, opened by the first try (None: not limited that way). A refusal is ``RateLimited(code)``."""

    action: str
    code: str
    window_s: int
    per_person: int | None = None
    per_address: int | None = None


class Limits:
    """Every flood limit of the platform, and the counters behind them (shared by all gateway nodes through Redis).

    With Redis away, each node counts in its own memory rather than refusing everyone or letting everything
    through: a person spread over n nodes gets at most n times a limit, and only while Redis is away. Searching,
    asking and signing up keep working, as the rest of the platform does without Redis."""

    def __init__(self, redis: aioredis.Redis, config: Config) -> None:
        c = config
        self.search = Limit("search", "limit.search", c.search_rate_window_s, c.search_rate_limit,
                            c.search_address_rate_limit)
        self.command = Limit("command", "limit.command", c.command_rate_window_s, c.command_rate_limit)
        self.inquiry = Limit("inquiry", "limit.inquiry", c.inquiry_rate_window_s, c.inquiry_rate_limit)
        self.sign_up = Limit("signup", "limit.sign_up", c.signup_rate_window_s, per_address=c.signup_rate_limit)
        self.password_reset = Limit("reset", "limit.password_reset", c.password_reset_window_s,
                                    per_address=c.password_reset_address_max_requests)
        self._redis = redis
        self._take = redis.register_script(_TAKE)
        self._local: dict[str, tuple[int, float]] = {}  # counter key → (tries, its window's end), Redis away
        self._away_until = 0.0
        # Tries waiting for the next command (each: its keys, its arguments, who waits for its answer): every try
        # pending in this process goes to Redis in one round trip (as the chat's send gate does).
        self._pending: list[tuple[list[Any], list[Any], asyncio.Future[list[Any]]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def take(self, limit: Limit, *, person: int | None = None, address: str | None = None) -> None:
        """Count one try of ``limit.action`` by ``person`` from ``address``, or refuse it (``RateLimited`` with
        ``retry_after``: the seconds until the full counter's window ends) and count nothing. Someone not logged in
        is counted as a person by their address."""
        await self.take_reading(limit, None, person=person, address=address)

    async def take_reading(self, limit: Limit, read: str | list[str] | None, *, person: int | None = None,
                           address: str | None = None,
                           claim: tuple[str, str, int] | None = None) -> tuple[bool, Any]:
        """``take``, reading the Redis key ``read`` (or each of a list of keys) in the same round trip (a bot
        command, its person's open conversation and their language): (True, its value or None when absent — for a
        list, the list of values), or (False, None) when it was not read (Redis away, or nothing to count) — the
        caller then reads it itself.

        With ``claim`` (key, token, milliseconds), that key is first set to the token unless it exists (a lock
        the caller then holds while it acts on the try — the caller gives it back): when it exists, ``Claimed``
        and nothing counted. The claim is held exactly when the answer is (True, …); a refused try holds none."""
        counters: list[tuple[str, int]] = []
        if limit.per_person is not None and (person is not None or address is not None):
            who = f"p{person}" if person is not None else f"a{address_group(address or '')}"
            counters.append((f"{_PREFIX}{limit.action}:{who}", limit.per_person))
        if limit.per_address is not None and address is not None:
            counters.extend((f"{_PREFIX}{limit.action}:addr:{group}", limit.per_address * factor)
                            for group, factor in address_groups(address))
        left, got = await self._full(counters, limit.window_s, read, claim) if counters else (0.0, (False, None))
        if left:
            retry_after = max(1, math.ceil(left))
            raise RateLimited(limit.code, retry_after=retry_after, wait=timedelta(seconds=retry_after))
        return got

    async def _full(self, counters: list[tuple[str, int]], window_s: int, read: str | list[str] | None = None,
                    claim: tuple[str, str, int] | None = None) -> tuple[float, tuple[bool, Any]]:
        """The seconds until a full counter among ``counters`` empties (0: none is full, and the try is counted in
        each), and what ``take_reading`` read (with its claim)."""
        if time.monotonic() >= self._away_until:
            reads = [] if read is None else [read] if isinstance(read, str) else list(read)
            keys = [*([claim[0]] if claim else []), *(key for key, _ in counters), *reads]
            args = [1 if claim else 0, len(counters), len(reads), window_s * 1000, *(claim[1:] if claim else ("", 0)),
                    *(allowed for _, allowed in counters)]
            try:
                # the reads ride in the same script: one round trip (a pipeline would first ask SCRIPT EXISTS)
                answer = await self._send(keys, args)
                left_ms = answer[0]
                if left_ms == -2:
                    raise ResponseError(str(answer[1]))
                if left_ms == -1:
                    raise Claimed(claim[0] if claim else "")
                values = [*answer[1:], *[None] * len(reads)][:len(reads)]  # (a refusal reads nothing)
                got = ((claim is not None, None) if read is None
                       else (True, values[0] if isinstance(read, str) else values))
            except RedisError as e:
                if not self._away_until:
                    log.warning("flood-limit counters unreachable (%s): counting on this node", e)
                self._away_until = time.monotonic() + _AWAY_S
            else:
                if self._away_until:
                    log.warning("flood-limit counters reachable again")
                    self._away_until = 0.0
                    self._local.clear()
                return int(left_ms) / 1000, got
        return self._full_here(counters, window_s), (False, None)

    async def _send(self, keys: list[Any], args: list[Any]) -> list[Any]:
        """This try's answer from the script, sent with every other try pending in this process."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((keys, args, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_all())
        return await future

    async def _send_all(self) -> None:
        batch: list[tuple[list[Any], list[Any], asyncio.Future[list[Any]]]] = []
        try:
            while self._pending:
                # (a try whose caller has gone is not sent: it neither counts nor claims, as before it was batched)
                pending = [t for t in self._pending if not t[2].done()]
                batch, self._pending = pending[:_BATCH], pending[_BATCH:]
                if not batch:
                    continue
                answers = await self._take(keys=[k for keys, _, _ in batch for k in keys],
                                           args=[a for _, args, _ in batch for a in args])
                for answer, (_, _, future) in zip(answers, batch, strict=True):
                    if not future.done():
                        future.set_result(answer)
                batch = []
        except BaseException as e:  # every try sent or waiting hears of it (a RedisError: then counted here), at once
            error = e if isinstance(e, Exception) else RedisError("flood-limit sender stopped")
            batch, self._pending = [*batch, *self._pending], []
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(e, Exception):
                raise

    def _full_here(self, counters: list[tuple[str, int]], window_s: int) -> float:
        now = time.monotonic()
        for key in [k for k, (_, end) in self._local.items() if end <= now]:
            del self._local[key]  # past windows
        for key, allowed in counters:
            tries, end = self._local.get(key, (0, now + window_s))
            if tries >= allowed:
                return max(end - now, 0.001)
        for key, _ in counters:
            tries, end = self._local.get(key, (0, now + window_s))
            self._local[key] = (tries + 1, end)
        return 0.0


def address_group(source: str) -> str:
    """The address someone is counted under as a person: an IPv4 address, or an IPv6 address's /64 (one
    subscriber's usual allocation, which they can cycle through for free)."""
    return address_groups(source)[0][0]


# An IPv6 address is also counted under its /56 and its /48, each allowed this many times a /64's allowance: a
# subscriber given a /56 or a site given a /48 cannot cycle through its /64s for fresh allowances.
IPV6_WIDER = ((56, 4), (48, 16))


def address_groups(source: str) -> list[tuple[str, int]]:
    """Every address group ``source`` is counted under, with the factor its allowance is multiplied by: an IPv4
    address alone (×1), or an IPv6 address's /64 (×1), /56 and /48 (``IPV6_WIDER``)."""
    try:
        ip = ipaddress.ip_address(source)
    except ValueError:
        return [("unknown", 1)]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return [(str(ip.ipv4_mapped), 1)]
        return [(str(ipaddress.IPv6Network((ip, prefix), strict=False)), factor)
                for prefix, factor in ((64, 1), *IPV6_WIDER)]
    return [(str(ip), 1)]
