"""The fan-out manager on its own, against the test's real Redis: nodes upgraded in a rolling deploy (``shared``)
hear, and are heard by, nodes still on the one-channel manager; a join Redis confirms late ends in ``resync``."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio
from socketio import packet

from gateway.fanout import RoutedRedisManager
from market.config import Config


class _Eio:
    def generate_id(self) -> str:
        return base64.b64encode(secrets.token_bytes(15), b"-_").decode()


class _Server:
    """What a manager needs of its Socket.IO server; keeps every packet sent to each Engine.IO session."""

    packet_class = packet.Packet

    def __init__(self, manager: Any) -> None:
        self.eio, self.manager, self.logger = _Eio(), manager, logging.getLogger("fanout-test")
        self.got: dict[str, list[Any]] = {}
        manager.set_server(self)
        manager.json = json
        manager.initialize()

    async def _send_eio_packet(self, eio_sid: str, pkt: Any) -> None:
        self.got.setdefault(eio_sid, []).append(pkt.data)

    def start_background_task(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return asyncio.ensure_future(target(*args, **kwargs))

    async def disconnect(self, sid: str, namespace: str | None = None, ignore_queue: bool = False) -> None:
        await self.manager.disconnect(sid, namespace or "/", ignore_queue=True)

    def events(self, eio_sid: str) -> list[tuple[str, Any]]:
        """(event, data) of every event the session got."""
        out = []
        for data in self.got.get(eio_sid, []):
            text = data if isinstance(data, str) else data.decode()
            body = json.loads(text[text.index("["):]) if "[" in text else []
            if body:
                out.append((body[0], body[1] if len(body) > 1 else None))
        return out


@pytest.fixture
async def nodes(config: Config) -> AsyncIterator[Callable[..., Any]]:
    channel = f"fanout-test-{uuid.uuid4().hex[:8]}"
    made: list[Any] = []

    async def make(cls: type = RoutedRedisManager, **kwargs: Any) -> tuple[Any, _Server]:
        manager = cls(config.redis_url, channel=channel, **kwargs)
        made.append(manager)
        return manager, _Server(manager)

    yield make
    for manager in made:
        if isinstance(manager, RoutedRedisManager):
            await manager.aclose()
        else:
            manager.thread.cancel()
            await asyncio.gather(manager.thread, return_exceptions=True)
            await manager.redis.aclose()


async def _socket(manager: Any, eio_sid: str, *rooms: str) -> str:
    sid = await manager.pre_connect(eio_sid, "/")
    await manager.connect(sid, "/")
    for room in rooms:
        await manager.enter_room(sid, "/", room)
    return sid


async def _until(check: Callable[[], bool]) -> bool:
    for _ in range(100):
        if check():
            return True
        await asyncio.sleep(0.03)
    return check()


async def test_a_shared_mode_node_and_a_one_channel_node_hear_each_others_room_and_personal_events(
        nodes: Any) -> None:
    old, old_server = await nodes(socketio.AsyncRedisManager)  # a node not yet upgraded (the library's manager)
    new, new_server = await nodes(mode="shared")
    await asyncio.sleep(0.3)  # (both listening)
    await _socket(old, "e-old", "room:1", "user:1")
    await _socket(new, "e-new", "room:1", "user:2")
    await asyncio.sleep(0.1)
    await new.emit("message", "new→room", room="room:1")
    await new.emit("notice", "new→user:1", room="user:1")
    await old.emit("message", "old→room", room="room:1")
    await old.emit("notice", "old→user:2", room="user:2")
    wanted_old = {("message", "new→room"), ("notice", "new→user:1"), ("message", "old→room")}
    wanted_new = {("message", "old→room"), ("notice", "old→user:2"), ("message", "new→room")}
    assert await _until(lambda: wanted_old <= set(old_server.events("e-old"))), old_server.events("e-old")
    assert await _until(lambda: wanted_new <= set(new_server.events("e-new"))), new_server.events("e-new")
    await asyncio.sleep(0.2)  # nothing twice, nothing for someone else
    assert sorted(old_server.events("e-old")) == sorted(wanted_old)
    assert sorted(new_server.events("e-new")) == sorted(wanted_new)


async def test_a_routed_node_is_not_heard_by_a_one_channel_node_and_a_bad_mode_is_refused(nodes: Any) -> None:
    """Why the rollout takes two steps: ``routed`` publishes where a one-channel node does not listen."""
    old, old_server = await nodes(socketio.AsyncRedisManager)
    new, _ = await nodes(mode="routed")
    await asyncio.sleep(0.3)
    await _socket(old, "e-old", "room:1")
    await new.emit("message", "routed", room="room:1")
    await asyncio.sleep(0.3)
    assert old_server.events("e-old") == []
    with pytest.raises(ValueError, match="fan-out mode"):
        await nodes(mode="sharded")


async def test_a_join_confirmed_after_its_wait_gets_resync_when_the_confirmation_comes(nodes: Any) -> None:
    a, a_server = await nodes(subscribe_wait_s=0.05)
    b, _ = await nodes()
    await asyncio.sleep(0.3)
    sync = a._sync

    async def slow_sync() -> None:  # a Redis (or listener) slower than the join's wait
        await asyncio.sleep(0.4)
        await sync()

    a._sync = slow_sync
    sid = await _socket(a, "e1")
    await a.enter_room(sid, "/", "room:9")  # goes on unconfirmed after 0.05 s
    await b.emit("message", "while-unconfirmed", room="room:9")  # may be lost to it: pub/sub keeps nothing
    assert await _until(lambda: ("resync", {}) in a_server.events("e1")), a_server.events("e1")
    # Once confirmed, the socket hears the room; joining again, confirmed at once, sends no second resync.
    a._sync = sync
    await b.emit("message", "after", room="room:9")
    assert await _until(lambda: ("message", "after") in a_server.events("e1"))
    await a.enter_room(sid, "/", "room:9")
    await asyncio.sleep(0.2)
    assert [e for e, _ in a_server.events("e1")].count("resync") == 1


async def test_a_listening_connection_killed_by_redis_is_noticed_resubscribed_and_its_sockets_resync(
        nodes: Any, config: Config) -> None:
    a, a_server = await nodes()
    b, _ = await nodes()
    await asyncio.sleep(0.3)
    await _socket(a, "e1", "room:5")
    redis = aioredis.from_url(config.redis_url)
    try:
        assert await redis.client_kill_filter(_type="pubsub") >= 2  # (a's and b's listeners)
    finally:
        await redis.aclose()
    assert await _until(lambda: ("resync", {}) in a_server.events("e1")), a_server.events("e1")
    await b.emit("message", "again", room="room:5")
    assert await _until(lambda: ("message", "again") in a_server.events("e1")), a_server.events("e1")


async def test_what_a_node_emitted_before_shutting_down_still_reaches_the_others_and_no_connection_is_left(
        nodes: Any, config: Config) -> None:
    redis = aioredis.from_url(config.redis_url)
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe("-")  # (the test's own two connections, before the node's)
        before = len(await redis.client_list())
        a, _ = await nodes()
        await asyncio.sleep(0.3)
        channel = a.room_channel("/", "room:7")
        await pubsub.subscribe(channel)
        bulk = "가" * 100_000  # (enough that sending them takes a while)
        for n in range(50):
            await a.emit("message", f"m{n}" + bulk, room="room:7")
        await a.aclose()  # at once: the emits are still queued
        got = []
        for _ in range(100):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if message is not None:
                got.append(json.loads(message["data"])["data"][0][:3].rstrip("가"))
            elif len(got) == 50:
                break
        assert got == [f"m{n}" for n in range(50)]
        await asyncio.sleep(0.5)
        assert len(await redis.client_list()) == before  # (none of the node's left open)
    finally:
        await pubsub.aclose()
        await redis.aclose()
