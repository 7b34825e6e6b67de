"""Fan-out routed by audience, on three gateway nodes (whole apps in this process, real sockets, one real Redis):
a node hears a room or a person only while it holds one of their sockets, and hears them from the moment a
socket of theirs joins it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.chat_socket import ChatSocket, room_channel, user_channel
from gateway.fanout import RoutedRedisManager
from gateway.keys import CHAT
from market.config import Config
from market.service import Market
from tests.conftest import Chatter, Person
from tests.e2e.test_two_nodes import _person, deal_room


@dataclass
class Gateway:
    url: str
    chat: ChatSocket

    @property
    def manager(self) -> RoutedRedisManager:
        return self.chat.sio.manager  # type: ignore[no-any-return]


@pytest.fixture
async def gateways(config: Config, market: Market) -> AsyncIterator[list[Gateway]]:
    clients = [TestClient(TestServer(create_app(config))) for _ in range(3)]
    for c in clients:
        await c.start_server()
    yield [Gateway(str(c.make_url("/")), c.app[CHAT]) for c in clients]
    for c in clients:
        await c.close()


@pytest.fixture
async def chatters() -> AsyncIterator[Any]:
    made: list[Chatter] = []

    async def make(person: Person, gateway: Gateway) -> Chatter:
        c = await Chatter(person, gateway.url).connect()
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


async def _deal(market: Market) -> tuple[Person, Person, int]:
    return await deal_room(market, "fan-")


async def _settle() -> None:
    await asyncio.sleep(0.3)  # (whatever was still on its way from Redis has arrived)


async def test_a_node_without_a_member_of_a_room_receives_none_of_its_traffic(
        gateways: list[Gateway], market: Market, chatters: Any) -> None:
    a, b, c = gateways
    owner, borrower, room = await _deal(market)
    stranger = await _person(market, "fan-stranger@example.com", "남남")
    on_a, on_b = await chatters(owner, a), await chatters(borrower, b)
    await chatters(stranger, c)  # c is up and listening, for other people
    for chatter in (on_a, on_b):
        assert (await chatter.call("join", {"room": room}))["ok"]
    await _settle()
    heard_by_c = c.manager.received
    for n in range(10):
        assert (await on_b.call("message", {"room": room, "text": f"안녕 {n}", "client_msg_id": f"f{n}"}))["ok"]
    for n in range(5):
        assert (await on_a.call("message", {"room": room, "text": f"네 {n}", "client_msg_id": f"g{n}"}))["ok"]
    assert [m["text"] for m in await on_a.wait_for("message", 10, room=room)] == [f"안녕 {n}" for n in range(10)]
    assert [m["text"] for m in await on_b.wait_for("message", 5, room=room)] == [f"네 {n}" for n in range(5)]
    await _settle()
    assert c.manager.received == heard_by_c, "a node with no member of the room read its messages"


async def test_a_persons_private_events_reach_the_nodes_holding_their_sockets_and_no_other(
        gateways: list[Gateway], market: Market, chatters: Any) -> None:
    a, b, c = gateways
    owner, borrower, room = await _deal(market)
    owner_on_a, owner_on_b = await chatters(owner, a), await chatters(owner, b)
    borrower_on_c = await chatters(borrower, c)
    await _settle()
    heard = [g.manager.received for g in gateways]
    await c.chat.notice(owner.id, room, "chat.too_fast", "너무 빨라요")  # said by a node the owner is not on
    for chatter in (owner_on_a, owner_on_b):
        assert [n["message"] for n in await chatter.wait_for("notice")] == ["너무 빨라요"]
    await _settle()
    assert c.manager.received == heard[2], "the node that said it, holding none of the owner's sockets, read it back"
    assert not borrower_on_c.received("notice")

    heard = [g.manager.received for g in gateways]
    await a.chat.notice(borrower.id, room, "chat.too_fast", "천천히요")
    assert [n["message"] for n in await borrower_on_c.wait_for("notice")] == ["천천히요"]
    await _settle()
    assert b.manager.received == heard[1], "a node holding only the owner read the borrower's private event"
    assert len(owner_on_a.received("notice")) == len(owner_on_b.received("notice")) == 1


async def test_a_socket_joining_a_room_its_node_had_no_member_of_gets_what_is_sent_right_after(
        gateways: list[Gateway], market: Market, chatters: Any, config: Config) -> None:
    a, b, _ = gateways
    owner = await _person(market, "fan-owner@example.com", "주인")
    borrower = await _person(market, "fan-borrower@example.com", "손님")
    owner_on_a, borrower_on_b = await chatters(owner, a), await chatters(borrower, b)
    sid = borrower_on_b.sio.get_sid()
    redis = aioredis.from_url(config.redis_url)
    try:
        for n in range(5):  # rooms made after the borrower connected: b has no member of them yet
            item = await market.items.create(owner.id, {
                "title": f"텐트 {n}", "description": "넓어요", "category_id": 7, "price_per_day": 3000,
                "deposit": 10000, "condition": "상", "lat": 37.4979, "lng": 127.0276})
            room = (await market.chat.open_deal_room(item["id"], borrower.id))[0].id
            await owner_on_a.call("join", {"room": room})
            await b.chat.sio.enter_room(sid, room_channel(room))  # what ``join`` does on b
            # The moment it returns, b is subscribed (Redis says so) and hears what a sends next.
            channel = b.manager.room_channel("/", room_channel(room))
            assert dict(await redis.pubsub_numsub(channel))[channel.encode()] == 2
            await a.chat.deal_changed(room)
            assert await borrower_on_b.wait_for("deal_update", room=room)
    finally:
        await redis.aclose()


async def test_sockets_already_in_a_room_miss_nothing_while_others_join_and_leave_it(
        gateways: list[Gateway], market: Market, chatters: Any) -> None:
    a, b, _ = gateways
    owner, borrower, room = await _deal(market)
    sender = await chatters(owner, a)
    staying, coming_and_going = await chatters(borrower, b), await chatters(borrower, b)
    other = coming_and_going.sio.get_sid()
    assert (await staying.call("join", {"room": room}))["ok"]
    for n in range(12):  # (under the send-rate limit)
        if n % 2:
            await b.chat.sio.leave_room(other, room_channel(room))
        else:
            await b.chat.sio.enter_room(other, room_channel(room))
        assert (await sender.call("message", {"room": room, "text": f"계속 {n}", "client_msg_id": f"k{n}"}))["ok"]
    got = await staying.wait_for("message", 12, room=room)
    assert [m["text"] for m in got] == [f"계속 {n}" for n in range(12)]
    # The last socket of b leaves the room, and comes back at once: it hears what is sent after its return.
    for chatter in (staying, coming_and_going):
        await b.chat.sio.leave_room(chatter.sio.get_sid(), room_channel(room))
    await asyncio.sleep(0.01)  # (b's unsubscribing is on its way)
    await b.chat.sio.enter_room(other, room_channel(room))
    assert (await sender.call("message", {"room": room, "text": "돌아왔네요", "client_msg_id": "back"}))["ok"]
    for _ in range(200):
        if "돌아왔네요" in [m.get("text") for m in coming_and_going.received("message", room)]:
            break
        await asyncio.sleep(0.05)
    assert "돌아왔네요" in [m.get("text") for m in coming_and_going.received("message", room)]


async def test_an_event_for_one_socket_of_another_node_reaches_that_node_alone(
        gateways: list[Gateway], market: Market, chatters: Any) -> None:
    a, b, c = gateways
    owner, borrower, room = await _deal(market)
    owner_on_b, borrower_on_c = await chatters(owner, b), await chatters(borrower, c)
    await _settle()
    heard_by_c = c.manager.received
    sid = owner_on_b.sio.get_sid()
    await a.chat.sio.emit("notice", {"room": room, "code": "chat.too_fast", "message": "한 소켓에만"}, to=sid)
    assert [n["message"] for n in await owner_on_b.wait_for("notice")] == ["한 소켓에만"]
    await a.chat.sio.disconnect(sid)  # hung up from a node that does not hold it
    for _ in range(100):
        if not owner_on_b.sio.connected:
            break
        await asyncio.sleep(0.05)
    assert not owner_on_b.sio.connected
    await _settle()
    assert c.manager.received == heard_by_c and not borrower_on_c.received("notice")


async def test_a_socket_is_connected_once_its_node_hears_its_person_and_rooms(
        gateways: list[Gateway], market: Market, chatters: Any, config: Config) -> None:
    _, b, _ = gateways
    owner, borrower, room = await _deal(market)
    sync = b.manager._sync

    async def slow_sync() -> None:  # a Redis slower to confirm than a connect takes (but within its wait)
        await asyncio.sleep(0.3)
        await sync()

    b.manager._sync = slow_sync  # type: ignore[method-assign]
    await chatters(borrower, b)
    redis = aioredis.from_url(config.redis_url)
    try:
        channels = [b.manager.room_channel("/", user_channel(borrower.id)),
                    b.manager.room_channel("/", room_channel(room))]
        assert dict(await redis.pubsub_numsub(*channels)) == {c.encode(): 1 for c in channels}
    finally:
        await redis.aclose()


async def test_messages_still_reach_the_other_node_after_redis_forgot_its_scripts(
        gateways: list[Gateway], market: Market, chatters: Any, config: Config) -> None:
    a, b, _ = gateways
    owner, borrower, room = await _deal(market)
    on_a, on_b = await chatters(owner, a), await chatters(borrower, b)
    for chatter in (on_a, on_b):
        assert (await chatter.call("join", {"room": room}))["ok"]
    assert (await on_a.call("message", {"room": room, "text": "처음", "client_msg_id": "s0"}))["ok"]
    assert [m["text"] for m in await on_b.wait_for("message", 1, room=room)] == ["처음"]
    redis = aioredis.from_url(config.redis_url)
    try:
        await redis.script_flush()  # (as a restarted Redis: the nodes' publishing script is gone)
    finally:
        await redis.aclose()
    for n in range(3):
        assert (await on_a.call("message", {"room": room, "text": f"다시 {n}", "client_msg_id": f"s{n + 1}"}))["ok"]
    got = await on_b.wait_for("message", 4, room=room)
    assert [m["text"] for m in got] == ["처음", "다시 0", "다시 1", "다시 2"]


async def test_an_emit_reaches_every_other_socket_of_a_room_when_one_of_them_has_just_closed(
        gateways: list[Gateway], market: Market, chatters: Any) -> None:
    a, _, _ = gateways
    owner, borrower, room = await _deal(market)
    sender, gone, staying = await chatters(owner, a), await chatters(borrower, a), await chatters(borrower, a)
    for chatter in (sender, gone, staying):
        assert (await chatter.call("join", {"room": room}))["ok"]
    gone_sid = gone.sio.get_sid()
    eio_sid = a.manager.eio_sid_from_sid(gone_sid, "/")
    # Its engine.io socket closes, and the room still lists it (its leaving is on its way): a send to it fails.
    a.chat.sio.eio.sockets[eio_sid].closed = True
    assert (await sender.call("message", {"room": room, "text": "남은 사람에게", "client_msg_id": "c0"}))["ok"]
    assert [m["text"] for m in await staying.wait_for("message", 1, room=room)] == ["남은 사람에게"]


async def test_a_flush_that_fails_between_chunks_goes_on_from_the_first_chunk_not_sent(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flush of more than one script call's worth of emits whose second call fails (the connection lost between
    two chunks, the client's own retries spent): the retry publishes what was not sent, not the first chunk again —
    the other nodes hear every emit once, in order."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from gateway import fanout

    assert config.redis_url
    manager = RoutedRedisManager(config.redis_url, channel="chunks-test")
    listener = aioredis.from_url(config.redis_url)
    pubsub = listener.pubsub()
    await pubsub.subscribe("chunks-test#room:1")
    await pubsub.get_message(timeout=1)  # (the subscribe reply)
    calls = 0
    real = RoutedRedisManager._publish_all

    async def lost_once(self: RoutedRedisManager, batch: list[tuple[str, object]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RedisConnectionError("lost")
        await real(self, batch)

    monkeypatch.setattr(RoutedRedisManager, "_publish_all", lost_once)
    try:
        n = fanout.PUBLISH_CHUNK + 10
        for i in range(n):
            manager._queue("chunks-test#room:1", {"method": "emit", "i": i})
        await manager._flusher
        heard = []
        while (m := await pubsub.get_message(timeout=0.5)) is not None:
            heard.append(manager.json.loads(m["data"])["i"])
        assert heard == list(range(n))
    finally:
        await pubsub.aclose()
        await listener.aclose()
        for sub, client in manager.clients:
            await sub.aclose()
            await client.aclose()
