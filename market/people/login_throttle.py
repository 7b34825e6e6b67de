"""Password guessing, slowed: failed log-ins counted in Redis per address, per (account, address) and per account,
each past its allowance buying a wait that doubles (1 s, 2 s, 4 s … up to a cap).

A wait is answered before any password is checked, so a guesser costs no argon2 work. Waits fall only on
addresses that have been failing — an account's own wait only on those that have been failing at it — so the
owner, from an address that has not, always gets to try: nobody can lock someone else out.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import redis.asyncio as aioredis

from market.config import Config
from market.limits import address_group

_PREFIX = "billi:login:"

# KEYS: failures of the pair, of the address, of the account; then the waits of the same three.
# ARGV: window (s), cap (s), allowances of the pair, the address, the account.
# A failure counts in all three (each forgotten a window after the last one), and each count past its allowance
# sets its wait; a wait is only ever lengthened, also when two failures race.
_RECORD_FAILURE = """
local window, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
local function count(key)
  local n = redis.call('INCR', key)
  redis.call('EXPIRE', key, window)
  return n
end
local function delay_ms(n, allowed)
  if n < allowed then return 0 end
  return math.floor(math.min(cap, 2 ^ (n - allowed)) * 1000)
end
local function wait(key, ms)
  if ms > 0 and ms > redis.call('PTTL', key) then redis.call('SET', key, '1', 'PX', ms) end
end
wait(KEYS[4], delay_ms(count(KEYS[1]), tonumber(ARGV[3])))
wait(KEYS[5], delay_ms(count(KEYS[2]), tonumber(ARGV[4])))
wait(KEYS[6], delay_ms(count(KEYS[3]), tonumber(ARGV[5])))
return 0
"""


@dataclass(frozen=True, slots=True)
class _Keys:
    pair_failures: str
    address_failures: str
    account_failures: str
    pair_wait: str
    address_wait: str
    account_wait: str

    def counts(self) -> list[str]:
        return [self.pair_failures, self.address_failures, self.account_failures]

    def waits(self) -> list[str]:
        return [self.pair_wait, self.address_wait, self.account_wait]


class LoginThrottle:
    """Counts failed log-ins and says how long an address must wait before trying an account again."""

    def __init__(self, redis: aioredis.Redis, config: Config) -> None:
        self._redis = redis
        self._config = config
        self._record = redis.register_script(_RECORD_FAILURE)

    async def wait_s(self, email: str, source: str) -> int:
        """Seconds ``source`` must still wait before trying ``email`` (0: it may try now): its own wait at this
        account, its wait as an address, and — if it has been failing here — the account's."""
        keys = _keys(email, source)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(keys.pair_failures)
            for key in keys.waits():
                pipe.pttl(key)
            failing_here, pair_ms, address_ms, account_ms = await pipe.execute()
        return math.ceil(max(0, pair_ms, address_ms, account_ms if failing_here else 0) / 1000)

    async def failed(self, email: str, source: str) -> None:
        """Count a wrong password (or an unknown e-mail: both look the same from outside)."""
        keys = _keys(email, source)
        c = self._config
        await self._record(keys=keys.counts() + keys.waits(),
                           args=[c.login_failure_window_s, c.login_max_delay_s, c.login_max_failures,
                                 c.login_address_max_failures, c.login_account_max_failures])

    async def succeeded(self, email: str, source: str) -> None:
        """The right password: this address starts afresh at this account. Its failures elsewhere still count
        (else a guesser could wipe them by logging in to an account of their own now and then), and so do the
        account's (the guessing goes on)."""
        keys = _keys(email, source)
        await self._redis.delete(keys.pair_failures, keys.pair_wait)


def _keys(email: str, source: str) -> _Keys:
    account = hashlib.sha256(email.encode()).hexdigest()[:32]
    address = address_group(source)
    return _Keys(f"{_PREFIX}fail:pair:{account}:{address}", f"{_PREFIX}fail:addr:{address}",
                 f"{_PREFIX}fail:acct:{account}", f"{_PREFIX}wait:pair:{account}:{address}",
                 f"{_PREFIX}wait:addr:{address}", f"{_PREFIX}wait:acct:{account}")
