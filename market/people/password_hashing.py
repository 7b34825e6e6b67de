"""Argon2 work, bounded: a few hashes at a time on threads of their own, a short queue, and "busy" beyond it.

Each hash costs tens of milliseconds of CPU and a slab of memory, so a flood of log-ins or sign-ups must never
grow that work without limit nor block the event loop; it never runs on the loop's thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from market.errors import Unavailable

T = TypeVar("T")

_BUSY_RETRY_S = 1  # a hash is over in well under a second: ask again then
_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so both paths cost the same time.
DUMMY_HASH = _hasher.hash("not-a-real-password-0")


class PasswordWork:
    """Hashing and verifying passwords on ``concurrency`` worker threads, with as many more waiting.

    A call that finds the workers and the queue full is refused at once (``account.busy``, 503 with
    Retry-After) instead of queueing without bound; a queue of its own keeps argon2 from crowding other work
    (photos) off the loop's default threads. A caller that goes away does not free its place before the hash
    it started is done, so the bound holds for the threads, not just for the callers."""

    def __init__(self, concurrency: int) -> None:
        self._workers = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency,
                                                              thread_name_prefix="billi-argon2")
        self._limit = 2 * concurrency
        self._admitted = 0

    async def hash(self, password: str) -> str:
        """The argon2id hash of ``password``."""
        return await self._run(_hasher.hash, password)

    async def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches ``stored`` (a malformed hash matches nothing)."""
        return await self._run(_verify, stored, password)

    @staticmethod
    def needs_rehash(stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than today's (cheap: no hashing)."""
        return _hasher.check_needs_rehash(stored)

    def close(self) -> None:
        """Stop the workers (work still queued is dropped; a hash in progress finishes on its thread)."""
        self._workers.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        if self._admitted >= self._limit:
            raise Unavailable("account.busy", retry_after=_BUSY_RETRY_S)
        loop = asyncio.get_running_loop()
        self._admitted += 1
        try:
            work = self._workers.submit(fn, *args)
        except BaseException:
            self._admitted -= 1
            raise
        work.add_done_callback(lambda _: _call_soon(loop, self._release))
        return await asyncio.wrap_future(work)

    def _release(self) -> None:
        self._admitted -= 1


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """Run ``callback`` on ``loop`` from a worker thread (unless the loop is already gone, at shutdown)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
