"""Object storage (S3 API via aioboto3): photos of items and profiles, later chat images and archives.

Objects are addressed by key; the platform serves them under ``/media/<key>`` (see ``media_url``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aioboto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from market.errors import Unavailable

log = logging.getLogger("billi.storage")

MEDIA_PREFIX = "/media/"


def media_url(key: str | None) -> str | None:
    """The path under which the platform serves an object, or None for no object."""
    return f"{MEDIA_PREFIX}{key}" if key else None


@dataclass(frozen=True, slots=True)
class StoredObject:
    body: bytes
    content_type: str
    etag: str


class BlobStore:
    """One long-lived S3 client bound to one bucket."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self.bucket = bucket
        self.deadline_s = 25.0

    @classmethod
    async def open(cls, stack: AsyncExitStack, *, url: str, bucket: str, access_key: str, secret_key: str,
                   region: str, timeout_s: float = 10.0) -> BlobStore:
        session = aioboto3.Session()
        client = await stack.enter_async_context(session.client(
            "s3", endpoint_url=url, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            region_name=region,
            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"},
                              connect_timeout=min(5.0, timeout_s), read_timeout=timeout_s),
        ))
        store = cls(client, bucket)
        store.deadline_s = timeout_s * 2.5  # every call, retries included, answers by then
        await store.ensure_bucket()
        return store

    async def ensure_bucket(self, attempts: int = 40) -> None:
        """Create the bucket if missing; a freshly started S3 server may need a few seconds (but not forever:
        past the deadline, the photo store is unavailable)."""
        try:
            async with asyncio.timeout(max(self.deadline_s, 15.0)):
                await self._ensure_bucket(attempts)
        except TimeoutError:
            raise Unavailable("storage.unavailable") from None

    async def _ensure_bucket(self, attempts: int) -> None:
        for i in range(attempts):
            try:
                await self._s3.head_bucket(Bucket=self.bucket)
                return
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") in {"404", "NoSuchBucket", "NotFound"}:
                    try:
                        await self._s3.create_bucket(Bucket=self.bucket)
                        return
                    except ClientError as ce:
                        if ce.response.get("Error", {}).get("Code") in {"BucketAlreadyOwnedByYou",
                                                                         "BucketAlreadyExists"}:
                            return
                        if i == attempts - 1:
                            raise
                elif i == attempts - 1:
                    raise
            except BotoCoreError:
                if i == attempts - 1:
                    raise Unavailable("storage.unavailable") from None
            await asyncio.sleep(0.25)

    @asynccontextmanager
    async def _deadline(self) -> AsyncIterator[None]:
        """S3 answers within the deadline, or the person hears that the photo store is away (an object is
        written whole or not at all, so nothing is half stored)."""
        try:
            async with asyncio.timeout(self.deadline_s):
                yield
        except (TimeoutError, BotoCoreError) as e:
            log.warning("the photo store did not answer: %s", type(e).__name__)
            raise Unavailable("storage.unavailable") from None

    async def put(self, key: str, body: bytes, content_type: str) -> None:
        async with self._deadline():
            await self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    async def get(self, key: str) -> StoredObject | None:
        async with self._deadline():
            try:
                resp = await self._s3.get_object(Bucket=self.bucket, Key=key)
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                    return None
                raise
            async with resp["Body"] as stream:
                body = await stream.read()
        return StoredObject(body, resp.get("ContentType") or "application/octet-stream", resp.get("ETag", ""))

    async def delete(self, *keys: str) -> None:
        async with self._deadline():
            for key in keys:
                await self._s3.delete_object(Bucket=self.bucket, Key=key)

    async def discard(self, *keys: str) -> None:
        """Delete objects nothing refers to any more, best effort: a photo store that is away leaves an orphan
        (logged), never an error for what was already done."""
        try:
            await self.delete(*keys)
        except (Unavailable, ClientError) as e:
            log.warning("could not delete %d unreferenced object(s): %s", len(keys), e)

    async def ping(self) -> None:
        await self._s3.head_bucket(Bucket=self.bucket)
