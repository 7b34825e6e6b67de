"""Password guessing, slowed: log-in tries counted in Redis per address, per (account, address) — or per
(account, known device) — and per account, each past its allowance buying a wait that doubles (1 s, 2 s, 4 s …
up to a cap).

A try is counted (reserved) before its password is checked, in one atomic step with the check of the waits, so
guesses sent in parallel are judged one after another and cost no more argon2 work than guesses sent one by one;
the right password gives its try back. A wait is answered before any password is checked. Waits fall only on
addresses that have been failing — an account's own wait only on those that have been failing at it, and never
on a browser that shows a known-device token for the account (it has a counter of its own) — so the owner, from
her usual browser or an address that has not been failing, always gets to try: nobody can lock someone else out.
An IPv6 address is counted under its /64, /56 and /48 (``market.limits.address_groups``); a known device waits
only for its own /64, never for the wider two, which one guesser could fill for a whole carrier.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import redis.asyncio as aioredis

from market.config import Config
from market.limits import address_group, address_groups

_PREFIX = "billi:login:"

# KEYS: n counters (the first one is the pair's or the known device's), then their n waits.
# ARGV: window (s), cap (s), then for each counter its allowance and whether its wait applies ("1", "0", or "p":
# only if this pair has been failing). Returns the milliseconds of the longest applying wait (nothing counted), or
# 0 and the try counted in every counter, each count past its allowance setting its wait (only ever lengthened).
_RESERVE = """
local n = #KEYS / 2
local window, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
local failing_here = redis.call('EXISTS', KEYS[1]) == 1
local longest = 0
for i = 1, n do
  local applies = ARGV[2 + 2 * i]
  if applies == '1' or (applies == 'p' and failing_here) then
    local left = redis.call('PTTL', KEYS[n + i])
    if left > longest then longest = left end
  end
end
if longest > 0 then return longest end
for i = 1, n do
  local allowed = tonumber(ARGV[1 + 2 * i])
  local count = redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], window)
  if count >= allowed then
    local ms = math.floor(math.min(cap, 2 ^ (count - allowed)) * 1000)
    if ms > redis.call('PTTL', KEYS[n + i]) then redis.call('SET', KEYS[n + i], '1', 'PX', ms) end
  end
end
return 0
"""

# KEYS: as for _RESERVE. ARGV: "1" to forget the first counter and its wait (the right password), then each
# counter's allowance. A reserved try is given back; a count back under its allowance drops its wait (it was set
# by tries that, all told, did not fail enough).
_RELEASE = """
local n = #KEYS / 2
for i = 1, n do
  if i == 1 and ARGV[1] == '1' then
    redis.call('DEL', KEYS[1], KEYS[n + 1])
  else
    local count = tonumber(redis.call('GET', KEYS[i]) or '0')
    if count > 0 then count = redis.call('DECR', KEYS[i]) end
    if count < tonumber(ARGV[1 + i]) then redis.call('DEL', KEYS[n + i]) end
  end
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One log-in try's counters: (counter key, wait key, allowance, whether its wait applies)."""

    counters: tuple[tuple[str, str, int, str], ...]


class LoginThrottle:
    """Counts log-in tries and says how long an address must wait before trying an account again. Redis errors
    are left to the caller: without the counters no password may be checked."""

    def __init__(self, redis: aioredis.Redis, config: Config) -> None:
        self._config = config
        self._reserve = redis.register_script(_RESERVE)
        self._release = redis.register_script(_RELEASE)

    def attempt(self, email: str, source: str, device: str | None = None) -> Attempt:
        """The counters of a try at ``email`` from ``source``, by a browser known to the account as ``device``
        (None: not known — then the pair (account, address) is counted, and the account's wait applies if the
        pair has been failing)."""
        c = self._config
        account = hashlib.sha256(email.encode()).hexdigest()[:32]
        if device is not None:
            who = f"dev:{account}:{hashlib.sha256(device.encode()).hexdigest()[:32]}"
        else:
            who = f"pair:{account}:{address_group(source)}"
        counters = [(f"{_PREFIX}fail:{who}", f"{_PREFIX}wait:{who}", c.login_max_failures, "1")]
        # A known device waits for its own address (an IPv6 /64) but not for the wider /56 and /48: one guesser
        # could otherwise put a whole carrier's /48 under the wait. Its tries still count in them.
        counters += [(f"{_PREFIX}fail:addr:{group}", f"{_PREFIX}wait:addr:{group}",
                      c.login_address_max_failures * factor, "0" if device is not None and at else "1")
                     for at, (group, factor) in enumerate(address_groups(source))]
        counters.append((f"{_PREFIX}fail:acct:{account}", f"{_PREFIX}wait:acct:{account}",
                         c.login_account_max_failures, "0" if device is not None else "p"))
        return Attempt(tuple(counters))

    async def reserve(self, attempt: Attempt) -> int:
        """Seconds this try must still wait (nothing counted), or 0: it is counted as a failure until
        ``release``d."""
        c = self._config
        args: list[object] = [c.login_failure_window_s, c.login_max_delay_s]
        for _, _, allowed, applies in attempt.counters:
            args += [allowed, applies]
        left_ms = await self._reserve(keys=_keys(attempt), args=args)
        return math.ceil(int(left_ms) / 1000)

    async def release(self, attempt: Attempt, *, succeeded: bool) -> None:
        """Give a reserved try back: the right password (``succeeded``: this pair or device starts afresh; its
        failures elsewhere still count, else a guesser could wipe them by logging in to an account of their own
        now and then, and so do the account's), or a try that was never judged (hashing busy)."""
        await self._release(keys=_keys(attempt),
                            args=["1" if succeeded else "0", *(allowed for _, _, allowed, _ in attempt.counters)])


def _keys(attempt: Attempt) -> list[str]:
    return [count for count, _, _, _ in attempt.counters] + [wait for _, wait, _, _ in attempt.counters]
