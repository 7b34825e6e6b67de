"""Real services for the whole test session, clean state for every test.

Without ``BILLI_DATABASE_URL`` / ``BILLI_REDIS_URL`` / ``BILLI_S3_URL`` the session starts its own MariaDB,
Redis and SeaweedFS on free loopback ports. With them, it uses a fresh database (dropped afterwards),
Redis database ``BILLI_TEST_REDIS_DB`` (default 15, flushed between tests) and a fresh bucket — never a
developer's own data.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from gateway.app import create_app
from gateway.local_services import LocalServices, free_port
from market.config import Config
from market.db import Database, DatabaseTarget, drop_database
from market.migrate import migrate
from market.service import Market

KEEP_TABLES = {"schema_migrations", "categories"}


@pytest.fixture(scope="session")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Config]:
    base = Config.from_env()
    services = LocalServices(tmp_path_factory.mktemp("services"))
    urls = services.start(mariadb=not base.database_url, redis=not base.redis_url, s3=not base.s3_url)
    run = uuid.uuid4().hex[:8]
    db_url = urls.get("database_url") or base.database_url
    assert db_url
    target = DatabaseTarget.parse(db_url).with_database(f"billi_test_{run}")
    db_url = f"mysql://{target.user}:{target.password}@{target.host}:{target.port}/{target.database}"
    redis_url = urls.get("redis_url") or base.redis_url or ""
    if "redis_url" not in urls:
        redis_url = redis_url.rsplit("/", 1)[0] + "/" + os.environ.get("BILLI_TEST_REDIS_DB", "15")
    bank_port = free_port()
    bank = subprocess.Popen([sys.executable, "-m", "gateway.sandbox", "--port", str(bank_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_http(f"http://127.0.0.1:{bank_port}/healthz", bank)
    # The scheduler runs only when a test calls it (tests move time by moving dates in the database).
    cfg = base.replace(database_url=db_url, redis_url=redis_url, s3_url=urls.get("s3_url") or base.s3_url,
                       s3_bucket=f"billi-test-{run}", data_dir=tmp_path_factory.mktemp("data"),
                       login_max_failures=5, bank_url=f"http://127.0.0.1:{bank_port}", bank_timeout_ms=1500,
                       naver_auth_url=f"http://127.0.0.1:{bank_port}",
                       scheduler_interval_ms=3_600_000)

    async def prepare() -> None:
        db = await Database.connect(db_url)
        try:
            await migrate(db)
        finally:
            await db.close()

    asyncio.run(prepare())
    try:
        yield cfg
    finally:
        bank.terminate()
        bank.wait(timeout=10)
        asyncio.run(drop_database(target))
        services.stop()


def _wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


async def _clean(cfg: Config) -> None:
    assert cfg.database_url and cfg.redis_url
    db = await Database.connect(cfg.database_url, pool_size=1, create=False)
    try:
        tables = [r["name"] for r in await db.fetchall(
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()")]
        async with db.transaction() as cur:
            await cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            for t in tables:
                if t not in KEEP_TABLES:
                    await cur.execute(f"DELETE FROM `{t}`")
            await cur.execute("SET FOREIGN_KEY_CHECKS = 1")
    finally:
        await db.close()
    r = aioredis.from_url(cfg.redis_url)
    try:
        await r.flushdb()
    finally:
        await r.aclose()
    if cfg.bank_url:
        await asyncio.to_thread(_post, cfg.bank_url + "/sandbox/reset", {})


def _post(url: str, body: dict[str, Any]) -> Any:
    import json

    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture
async def market(config: Config) -> AsyncIterator[Market]:
    await _clean(config)
    async with Market.open(config, run_migrations=False) as m:
        yield m


@pytest.fixture
async def client(config: Config) -> AsyncIterator[TestClient]:
    await _clean(config)
    app = create_app(config)
    async with TestClient(TestServer(app)) as c:
        yield c


# -- helpers shared by the tests ------------------------------------------------------------------
def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 80, 40),
                **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt, **save)
    return out.getvalue()


GANGNAM = (37.4979, 127.0276)


def item_fields(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "캠핑의자 2개", "description": "헬리녹스 체어원이에요.\n깨끗해요.", "category_id": 7,
        "price_per_day": 5000, "deposit": 30000, "condition": "상", "lat": GANGNAM[0], "lng": GANGNAM[1],
        "place_name": "역삼동",
    }
    data.update(over)
    return data


class Person:
    """A signed-up user driving the REST API with a bearer token."""

    def __init__(self, client: TestClient, token: str, user: dict[str, Any]) -> None:
        self.client, self.token, self.user = client, token, user
        self.id: int = user["id"]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        headers = {**self.auth, **kw.pop("headers", {})}
        async with self.client.request(method, path, headers=headers, **kw) as resp:
            return resp.status, await resp.json()

    async def new_item(self, **over: Any) -> dict[str, Any]:
        status, body = await self.call("POST", "/api/items", json=item_fields(**over))
        assert status == 201, body
        return body["item"]


_counter = iter(range(1, 10**6))


async def sign_up(client: TestClient, nickname: str | None = None, email: str | None = None) -> Person:
    n = next(_counter)
    async with client.post("/api/auth/signup", json={
        "email": email or f"user{n}@example.com", "nickname": nickname or f"이웃{n}", "password": "rent4you"}) as resp:
        body = await resp.json()
        assert resp.status == 201, body
    client.session.cookie_jar.clear()  # people act through their bearer token; the client stays anonymous
    return Person(client, body["token"], body["user"])


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]


class Chatter:
    """A python-socketio client for one person, recording every event it receives."""

    def __init__(self, person: Person, base_url: str) -> None:
        import socketio

        self.person = person
        self.base_url = base_url
        self.events: dict[str, list[Any]] = {}
        self._arrived = asyncio.Event()
        self.sio = socketio.AsyncClient(reconnection=False)
        for name in ("message", "room_update", "read", "typing", "message_update", "notice", "deal_update",
                     "session_ended"):
            self.sio.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Any:
        async def record(data: Any) -> None:
            self.events.setdefault(name, []).append(data)
            self._arrived.set()
        return record

    async def connect(self, base_url: str | None = None) -> Chatter:
        await self.sio.connect(base_url or self.base_url, auth={"token": self.person.token},
                               transports=["websocket"], wait_timeout=10)
        return self

    async def call(self, event: str, data: Any) -> Any:
        return await self.sio.call(event, data, timeout=15)

    def received(self, name: str = "message", room: int | None = None) -> list[Any]:
        return [e for e in self.events.get(name, []) if room is None or e.get("room") == room]

    async def wait_for(self, name: str, count: int = 1, room: int | None = None, timeout: float = 10) -> list[Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.received(name, room)) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"expected {count} {name} event(s), got {self.received(name, room)}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass
        return self.received(name, room)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


@pytest.fixture
async def chatters(client: TestClient) -> AsyncIterator[Any]:
    """Makes connected chat clients for people; disconnects them all afterwards."""
    made: list[Chatter] = []

    async def make(person: Person) -> Chatter:
        c = await Chatter(person, str(client.make_url("/"))).connect()
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()
