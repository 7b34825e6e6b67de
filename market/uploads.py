"""What an uploaded photo may cost: one upload per person at a time and a per-person upload rate (in Redis, checked
before anything is read or decoded), a bounded number of uploads in progress per process, and a bounded pool of
decoding workers.

Each photo is decoded in a worker process of its own (``python -m market.images``) that exits afterwards, so the
memory a decode took goes back to the system at once. Nothing here decodes an image in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from market.errors import RateLimited, Unavailable, Unsupported
from market.images import ProcessedImage, check_header, read_result

log = logging.getLogger("billi.uploads")
_RATE_PREFIX = "billi:upload-rate:"
_BUSY_PREFIX = "billi:uploading:"
_HOLD_S = 600  # a person's "uploading" mark outlives no upload (a body's read and a decode take minutes at most)
# KEYS: a person's mark; ARGV: the holder's token. Delete the mark only if it is still this upload's.
_LET_GO = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
BUSY_RETRY_S = 2  # a decode takes about a second; by then a place is usually free
_DECODE_DEADLINE_S = 60  # a worker still busy after this is stopped (no image we take needs that long)
_FEED_SLICE = 256 * 1024


class Uploads:
    """Admission of uploads and the pool of decoding workers, one per process, shared by every kind of photo
    (item photos, chat images, profile photos)."""

    def __init__(self, redis: aioredis.Redis, *, workers: int, queue: int, rate_limit: int, rate_window_s: int,
                 max_bytes: int, max_pixels: int) -> None:
        self._redis = redis
        self._workers = asyncio.Semaphore(workers)
        self._places = workers + queue
        self._rate_limit = rate_limit
        self._rate_window_s = rate_window_s
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.in_progress = 0  # uploads admitted and not finished (their bodies are in memory or on the way)
        self.decoding = 0  # worker processes running
        self._uploading: set[int] = set()  # people with an upload in progress in this process
        self._let_go = redis.register_script(_LET_GO)

    @asynccontextmanager
    async def admit(self, user_id: int) -> AsyncIterator[None]:
        """Hold a place for one upload by ``user_id`` while it is read and decoded. Refused before its body is
        read: with 503 (``photo.busy``) when this process already has every place taken — so a burst of uploads
        never holds more than a few bodies in memory —, with 429 (``photo.too_fast``) when the person has
        used up the uploads of the current window, or at once with 429 (``upload.busy``) while another upload of
        theirs is still being read or decoded, on any node: one person holds at most one place anywhere."""
        if self.in_progress >= self._places:
            raise Unavailable("photo.busy", retry_after=BUSY_RETRY_S)
        if user_id in self._uploading:
            raise RateLimited("upload.busy", retry_after=BUSY_RETRY_S)
        self.in_progress += 1
        self._uploading.add(user_id)
        mark = None
        try:
            mark = await self._hold(user_id)
            await self._count(user_id)
            yield
        finally:
            self.in_progress -= 1
            self._uploading.discard(user_id)
            if mark is not None:
                with contextlib.suppress(RedisError):
                    await self._let_go(keys=[_BUSY_PREFIX + str(user_id)], args=[mark])

    async def _hold(self, user_id: int) -> str | None:
        """Mark the person as uploading (across nodes), or refuse with ``upload.busy``."""
        mark = secrets.token_hex(8)
        try:
            held = await self._redis.set(_BUSY_PREFIX + str(user_id), mark, nx=True, ex=_HOLD_S)
        except RedisError:
            return None  # Redis away: this process's own mark still holds
        if not held:
            raise RateLimited("upload.busy", retry_after=BUSY_RETRY_S)
        return mark

    async def _count(self, user_id: int) -> None:
        key = f"{_RATE_PREFIX}{user_id}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, self._rate_window_s, nx=True)
            pipe.ttl(key)
            count, _, ttl = await pipe.execute()
        if int(count) > self._rate_limit:
            raise RateLimited("photo.too_fast", retry_after=max(int(ttl), 1))

    async def process(self, data: bytes) -> ProcessedImage:
        """``data`` checked and re-encoded as JPEGs by a worker process, once one of the workers is free. The
        header is read here first, so an image over the byte or pixel limit never waits for (or costs) a
        worker."""
        # Off the event loop: reaching the size may mean walking many chunks or markers (a crafted 10 MB file
        # takes seconds), which must not stall every other request of the process.
        (await asyncio.to_thread(check_header, data, max_bytes=self.max_bytes, max_pixels=self.max_pixels)).close()
        async with self._workers:
            self.decoding += 1
            try:
                raw = await self._decode(data)
            finally:
                self.decoding -= 1
        return read_result(raw)

    async def _decode(self, data: bytes) -> bytes:
        """What one fresh worker process writes for ``data``; the worker is stopped if the caller goes away."""
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "market.images", str(self.max_bytes), str(self.max_pixels),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except OSError:
            log.exception("could not start a photo decoding worker")
            raise Unavailable("photo.busy", retry_after=BUSY_RETRY_S) from None
        stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
        assert stdin is not None and stdout is not None and stderr is not None
        try:
            out, err, _ = await asyncio.wait_for(asyncio.gather(stdout.read(), stderr.read(), _feed(stdin, data)),
                                                 _DECODE_DEADLINE_S)
            await proc.wait()
        except TimeoutError:
            log.warning("a photo took over %d s to decode; refused", _DECODE_DEADLINE_S)
            raise Unsupported("photo.not_image", field="photo") from None
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            log.warning("a photo decoding worker failed (exit %s): %s", proc.returncode,
                        err.decode(errors="replace")[-2000:])
            raise Unsupported("photo.not_image", field="photo")
        return out


async def _feed(pipe: asyncio.StreamWriter, data: bytes) -> None:
    """Write ``data`` a slice at a time, each once the pipe has taken the last, so no second copy of a photo
    waits in a buffer here (``communicate`` would queue all of it at once)."""
    view = memoryview(data)
    try:
        for start in range(0, len(view), _FEED_SLICE):
            pipe.write(view[start:start + _FEED_SLICE])
            await pipe.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the worker stopped reading (it refused the photo early); its answer says why
    finally:
        pipe.close()
