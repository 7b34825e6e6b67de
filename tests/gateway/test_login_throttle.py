"""Password work is bounded: argon2 beyond its bound answers 503 + Retry-After at once while the rest of the
gateway keeps answering."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from gateway.app import create_app
from market.config import Config
from tests.conftest import _clean, sign_up

RIGHT = "rent4you"  # conftest's sign_up password


@asynccontextmanager
async def gateway(config: Config, **settings: Any) -> AsyncIterator[TestClient]:
    """An in-process gateway with some settings of its own (clean tables and Redis, like the ``client`` fixture)."""
    await _clean(config)
    async with TestClient(TestServer(create_app(config.replace(**settings)))) as client:
        yield client


async def log_in(http: TestClient, email: str, password: str) -> tuple[int, dict[str, Any], str | None]:
    """Status, body and Retry-After of one log-in."""
    async with http.post("/api/auth/login", json={"email": email, "password": password}) as r:
        return r.status, await r.json(), r.headers.get("Retry-After")


async def test_argon2_beyond_its_bound_is_refused_at_once_while_the_gateway_answers(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Semaphore(0), threading.Event()
    real = PasswordHasher.verify

    def slow(self: PasswordHasher, stored: str | bytes, password: str | bytes) -> bool:
        started.release()
        release.wait(30)  # held until the test has seen the others refused
        return real(self, stored, password)

    async with gateway(config, password_hash_concurrency=1) as client:
        await sign_up(client, email="busy@example.com")
        monkeypatch.setattr(PasswordHasher, "verify", slow)
        try:
            first = asyncio.create_task(log_in(client, "busy@example.com", RIGHT))
            assert await asyncio.to_thread(started.acquire, True, 30)  # one hash running
            others = [asyncio.create_task(log_in(client, "busy@example.com", RIGHT)) for _ in range(5)]
            refused = []
            for answer in asyncio.as_completed(others, timeout=30):  # one may queue; the rest must not wait
                refused.append(await answer)
                if len(refused) == 4:
                    break
            assert not release.is_set() and not first.done()  # all answered while the first hash still ran
            for status, body, retry_after in refused:
                assert status == 503 and retry_after == "1"
                assert body["error"]["code"] == "account.busy"
                assert body["error"]["message"].startswith("지금 로그인하거나 가입하는 분이 많아요.")
            async with client.get("/healthz") as resp:
                assert resp.status == 200
        finally:
            release.set()
        assert (await first)[0] == 200
        assert sorted(a[0] for a in await asyncio.gather(*others)) == [200, 503, 503, 503, 503]
