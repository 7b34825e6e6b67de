"""Deadlines: a photo store that does not answer makes an upload fail soon with clear words and nothing stored,
and `billi archive-chats` says so and exits non-zero — never a hang, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AsyncExitStack

import pytest

from market.config import Config
from market.errors import Unavailable
from market.messages import render
from market.service import Market
from market.storage import BlobStore
from tests.conftest import image_bytes


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a frozen S3)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(100)
    yield s.getsockname()[1]
    s.close()


async def test_an_upload_to_a_silent_photo_store_fails_soon_and_stores_nothing(market: Market,
                                                                               silent_port: int) -> None:
    async with AsyncExitStack() as stack:
        with pytest.raises(Unavailable) as opened:  # the store cannot even be opened: said, not hung
            await BlobStore.open(stack, url=f"http://127.0.0.1:{silent_port}", bucket="x", access_key="a",
                                 secret_key="b", region="us-east-1", timeout_s=0.3)
        assert opened.value.code == "storage.unavailable"
    person = (await market.accounts.sign_up({"email": "slow@example.com", "nickname": "느린저장소",
                                             "password": "rent4you1"})).user
    room = (await market.chat.assistant_room(person.id)).id
    frozen = BlobStore(market.store._s3, market.store.bucket)  # the real client …
    async with AsyncExitStack() as stack:
        silent = await _client(stack, silent_port)
        frozen._s3, frozen.deadline_s = silent, 1.0  # … pointed at a store that never answers
        market.chat._store = frozen
        with pytest.raises(Unavailable) as sent:
            await market.chat.send_image(person.id, person.nickname, room, image_bytes())
    assert "사진 저장소에 잠시 연결할 수 없어요" in render(sent.value.code, "ko")
    assert await market.db.fetchval("SELECT COUNT(*) FROM messages WHERE room_id = %s", (room,)) == 0


async def _client(stack: AsyncExitStack, port: int) -> object:
    import aioboto3
    from botocore.config import Config as BotoConfig

    return await stack.enter_async_context(aioboto3.Session().client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="a", aws_secret_access_key="b",
        region_name="us-east-1", config=BotoConfig(retries={"max_attempts": 1}, connect_timeout=1,
                                                   read_timeout=0.5)))


def test_archiving_with_the_photo_store_away_says_so_and_exits_non_zero(config: Config, silent_port: int) -> None:
    env = {"PATH": "/usr/bin:/bin", "BILLI_DATABASE_URL": config.database_url or "",
           "BILLI_REDIS_URL": config.redis_url or "", "BILLI_S3_URL": f"http://127.0.0.1:{silent_port}",
           "BILLI_S3_TIMEOUT_MS": "300", "BILLI_DATA_DIR": str(config.data_dir)}
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "archive-chats"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "S3에 연결할 수 없어요 — 옮긴 메시지 없음" in done.stderr and "Traceback" not in done.stderr
