"""Faults people must never notice, with a Redis of the test's own (never the shared one): killed and brought
back, it logs nobody out — even flushed — and nodes that were deaf meanwhile tell their clients to catch up."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from gateway.local_services import free_port
from market.config import Config
from market.service import Market
from tests.conftest import Chatter
from tests.e2e.nodes import start_node
from tests.e2e.test_two_nodes import _person


class OwnRedis:
    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "yes", "--dir", str(self.root)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                subprocess.run([shutil.which("redis-cli") or "redis-cli", "-p", str(self.port), "ping"],
                               check=True, capture_output=True, timeout=2)
                return
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, FileNotFoundError):
                import time
                time.sleep(0.1)
        raise RuntimeError("the test's Redis did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    r = OwnRedis(tmp_path)
    r.start()
    yield r
    if r.proc is not None and r.proc.poll() is None:
        r.kill()


@pytest.fixture
async def flush(own_redis: OwnRedis) -> AsyncIterator[Any]:
    async def run() -> None:
        client = aioredis.from_url(own_redis.url)
        try:
            await client.flushall()
        finally:
            await client.aclose()
    yield run


async def test_a_redis_killed_and_restarted_logs_nobody_out_and_deaf_nodes_resync(
        config: Config, market: Market, own_redis: OwnRedis, flush: Any) -> None:
    mine = config.replace(redis_url=own_redis.url)
    sender_person = await _person(market, "fault-a@example.com", "장애가")
    listener_person = await _person(market, "fault-b@example.com", "장애나")
    a, b = start_node(mine), start_node(mine)
    try:
        sender = await Chatter(sender_person, a.url).connect()
        listener = await Chatter(listener_person, b.url).connect()
        listener.sio.on("resync", lambda data=None: listener.events.setdefault("resync", []).append(data or {}))
        own_redis.kill()
        await asyncio.sleep(3)  # a while without Redis: both nodes lose their listeners
        own_redis.start()
        await flush()  # and even emptied: sessions are MariaDB's
        for _ in range(200):  # the deaf node hears again and tells its client to catch up
            if listener.received("resync"):
                break
            await asyncio.sleep(0.05)
        assert listener.received("resync"), "the node never told its clients to catch up"
        async with httpx.AsyncClient(timeout=10) as http:
            for node in (a, b):
                me = await http.get(node.url + "api/me", headers={"Authorization": f"Bearer {sender_person.token}"})
                assert me.status_code == 200, me.text  # the same session token still works
        await sender.close()
        await listener.close()
    finally:
        a.stop()
        b.stop()


async def test_readiness_names_a_frozen_redis_instead_of_hanging(config: Config, market: Market,
                                                                 own_redis: OwnRedis) -> None:
    node = start_node(config.replace(redis_url=own_redis.url), BILLI_READY_CHECK_TIMEOUT_MS="300")
    try:
        assert own_redis.proc is not None
        own_redis.proc.send_signal(signal.SIGSTOP)  # alive but silent: the worst kind of down
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                for _ in range(2):  # (a second call waits on the same check, it does not pile up another)
                    ready = await http.get(node.url + "readyz")
                    assert ready.status_code == 503 and ready.json()["down"] == ["redis"], ready.text
        finally:
            own_redis.proc.send_signal(signal.SIGCONT)
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(100):
                if (await http.get(node.url + "readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await http.get(node.url + "readyz")).status_code == 200
    finally:
        node.stop()


def _seqs(chatter: Chatter, room: int) -> list[int]:
    return sorted({m["seq"] for m in chatter.received("message", room)})


async def _catch_up(chatter: Chatter, room: int) -> None:
    """What the widget does on ``resync``: ask for everything after the end of its gap-free prefix."""
    have, after = set(_seqs(chatter, room)), 0
    while after + 1 in have:
        after += 1
    while True:
        page = await chatter.call("join", {"room": room, "after_seq": after})
        assert page["ok"], page
        chatter.events.setdefault("message", []).extend(page["messages"])
        if not page["has_more"]:
            return
        after = page["messages"][-1]["seq"]


async def _deal_room(market: Market, prefix: str, owner_name: str, borrower_name: str) -> tuple[Any, Any, int]:
    """An owner, a borrower and the deal room of the owner's camping chair."""
    owner = await _person(market, f"{prefix}-owner@example.com", owner_name)
    borrower = await _person(market, f"{prefix}-borrower@example.com", borrower_name)
    item = await market.items.create(owner.id, {
        "title": "캠핑 의자", "description": "튼튼해요", "category_id": 7, "price_per_day": 3000, "deposit": 10000,
        "condition": "상", "lat": 37.4979, "lng": 127.0276})
    return owner, borrower, (await market.chat.open_deal_room(item["id"], borrower.id))[0].id


async def test_with_redis_down_for_30_s_sending_goes_on_and_listeners_miss_nothing(
        config: Config, market: Market, own_redis: OwnRedis) -> None:
    mine = config.replace(redis_url=own_redis.url)
    owner, borrower, room = await _deal_room(market, "down", "듣는이", "말하는이")
    a, b = start_node(mine), start_node(mine)
    try:
        sender = await Chatter(borrower, a.url).connect()
        near = await Chatter(owner, a.url).connect()  # the same node as the sender
        far = await Chatter(owner, b.url).connect()  # another node: hears only through Redis
        for listener in (near, far):
            listener.sio.on("resync", lambda data=None, c=listener: c.events.setdefault("resync", []).append(1))
            assert (await listener.call("join", {"room": room}))["ok"]
        for n in range(5):
            assert (await sender.call("message", {"room": room, "text": f"전 {n}", "client_msg_id": f"b{n}"}))["ok"]
        await far.wait_for("message", 5, room=room)
        own_redis.kill()
        sent = 5
        started = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - started < 30:  # Redis away for 30 s: sending goes on
            ack = await sender.call("message", {"room": room, "text": f"없는 동안 {sent}", "client_msg_id": f"d{sent}"})
            assert ack["ok"], ack  # stored in MariaDB, the system of record
            sent += 1
            await asyncio.sleep(1)
        own_redis.start()
        for _ in range(300):  # the node that was deaf hears again and tells its clients to catch up
            if far.received("resync"):
                break
            await asyncio.sleep(0.05)
        assert far.received("resync"), "the deaf node never told its clients to catch up"
        for listener in (near, far):
            await _catch_up(listener, room)
            assert _seqs(listener, room) == list(range(1, sent + 1)), listener.person.id
        assert (await sender.call("message", {"room": room, "text": "돌아왔어요"}))["ok"]
        await far.wait_for("message", sent + 1, room=room)  # live again
        for c in (sender, near, far):
            await c.close()
    finally:
        a.stop()
        b.stop()


async def test_a_frozen_redis_costs_a_send_its_deadline_not_forever(config: Config, market: Market,
                                                                     own_redis: OwnRedis) -> None:
    mine = config.replace(redis_url=own_redis.url)
    person = await _person(market, "frozen@example.com", "얼음")
    node = start_node(mine, BILLI_REDIS_TIMEOUT_MS="500")
    try:
        chatter = await Chatter(person, node.url).connect()
        room = (await market.chat.assistant_room(person.id)).id
        assert (await chatter.call("join", {"room": room}))["ok"]
        assert own_redis.proc is not None
        own_redis.proc.send_signal(signal.SIGSTOP)  # alive but silent
        try:
            sent = await asyncio.wait_for(chatter.call("message", {"room": room, "text": "들리나요"}), 60)
            assert sent["ok"], sent  # stored in MariaDB; the session asked of MariaDB
            async with httpx.AsyncClient(timeout=60) as http:
                me = await http.get(node.url + "api/me", headers={"Authorization": f"Bearer {person.token}"})
                assert me.status_code == 200, me.text
        finally:
            own_redis.proc.send_signal(signal.SIGCONT)
        await chatter.close()
    finally:
        node.stop()


async def test_after_a_redis_restart_every_node_hears_its_rooms_and_people_again(
        config: Config, market: Market, own_redis: OwnRedis, flush: Any) -> None:
    """Each node listens only to the rooms and people it holds sockets of: back from a restart (even emptied),
    it subscribes every one of them again."""
    mine = config.replace(redis_url=own_redis.url)
    owner, borrower, room = await _deal_room(market, "restart", "주인", "손님")
    a, b = start_node(mine), start_node(mine)
    try:
        owner_on_a = await Chatter(owner, a.url).connect()
        owner_on_b = await Chatter(owner, b.url).connect()
        borrower_on_b = await Chatter(borrower, b.url).connect()
        for chatter in (owner_on_a, owner_on_b, borrower_on_b):
            chatter.sio.on("resync", lambda data=None, c=chatter: c.events.setdefault("resync", []).append(1))
            assert (await chatter.call("join", {"room": room}))["ok"]
        own_redis.kill()
        await asyncio.sleep(3)
        own_redis.start()
        await flush()
        for chatter in (owner_on_a, borrower_on_b):  # both nodes hear again (a node sends it once subscribed)
            for _ in range(200):
                if chatter.received("resync"):
                    break
                await asyncio.sleep(0.05)
            assert chatter.received("resync"), chatter.person.id
        sent = await borrower_on_b.call("message", {"room": room, "text": "다시 들려요?", "client_msg_id": "again"})
        assert sent["ok"], sent
        heard = await owner_on_a.wait_for("message", room=room)  # the room, from b to a
        assert heard[-1]["text"] == "다시 들려요?"
        read = await owner_on_b.call("read", {"room": room, "seq": sent["message"]["seq"]})
        assert read["ok"], read
        update = await owner_on_a.wait_for("room_update", room=room)  # the owner's own channel, from b to a
        assert update[-1]["last_seq"] == sent["message"]["seq"] and update[-1]["unread"] == 0
        for chatter in (owner_on_a, owner_on_b, borrower_on_b):
            await chatter.close()
    finally:
        a.stop()
        b.stop()
