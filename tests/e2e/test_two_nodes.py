"""Two gateway processes share rooms through Redis: delivery, ordering and catch-up across them, also after
one of them dies and its clients move to the other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from market.config import Config
from market.service import Market
from tests.conftest import Chatter, Person
from tests.e2e.nodes import Node, start_node


@pytest.fixture
def nodes(config: Config) -> Iterator[list[Node]]:
    started = [start_node(config, BILLI_CHAT_RATE_LIMIT="1000"), start_node(config, BILLI_CHAT_RATE_LIMIT="1000")]
    yield started
    for node in started:
        node.stop()


async def _person(market: Market, email: str, nickname: str) -> Person:
    session = await market.accounts.sign_up({"email": email, "nickname": nickname, "password": "rent4you"})
    return Person(None, session.token, session.user.private())  # type: ignore[arg-type]


async def deal_room(market: Market, prefix: str = "") -> tuple[Person, Person, int]:
    """An owner (주인) with a camping chair and a borrower (손님) in its deal room; ``prefix`` keeps emails apart."""
    owner = await _person(market, f"{prefix}owner@example.com", "주인")
    borrower = await _person(market, f"{prefix}borrower@example.com", "손님")
    item = await market.items.create(owner.id, {
        "title": "캠핑 의자", "description": "튼튼해요", "category_id": 7, "price_per_day": 3000, "deposit": 10000,
        "condition": "상", "lat": 37.4979, "lng": 127.0276})
    room, _ = await market.chat.open_deal_room(item["id"], borrower.id)
    return owner, borrower, room.id


@pytest.fixture
async def deal(market: Market) -> AsyncIterator[dict[str, Any]]:
    owner, borrower, room = await deal_room(market)
    yield {"owner": owner, "borrower": borrower, "room": room}


async def test_messages_cross_nodes_in_order_and_survive_a_node_crash(
        nodes: list[Node], deal: dict[str, Any], market: Market) -> None:
    a, b = nodes
    room = deal["room"]
    owner = await Chatter(deal["owner"], a.url).connect()
    borrower = await Chatter(deal["borrower"], b.url).connect()
    try:
        for n in range(10):
            ack = await borrower.call("message", {"room": room, "text": f"B{n}", "client_msg_id": f"b{n}"})
            assert ack["ok"], ack
        got = await owner.wait_for("message", 10, room=room)
        assert [m["text"] for m in got] == [f"B{n}" for n in range(10)]
        assert [m["seq"] for m in got] == list(range(1, 11))

        # Both sides at once, on different nodes: every seq exactly once, nothing lost.
        acks = await asyncio.gather(*[c.call("message", {"room": room, "text": f"{tag}{n}", "client_msg_id": f"x{tag}{n}"})
                                      for n in range(15) for c, tag in ((owner, "O"), (borrower, "R"))])
        assert sorted(a["message"]["seq"] for a in acks) == list(range(11, 41))
        await owner.wait_for("message", 25, room=room)
        await borrower.wait_for("message", 15, room=room)
        rows = await market.db.fetchall("SELECT seq FROM messages WHERE room_id = %s ORDER BY seq", (room,))
        assert [r["seq"] for r in rows] == list(range(1, 41))

        own = [x["message"]["seq"] for i, x in enumerate(acks) if i % 2 == 0]  # the owner's sends
        seen = sorted([m["seq"] for m in owner.received("message", room)] + own)
        assert seen == list(range(1, 41))  # the owner has every message, theirs by ack, the rest by event
        last_seen = seen[-1]
        a.kill()
        for _ in range(50):  # the owner's client notices the crash
            if not owner.sio.connected:
                break
            await asyncio.sleep(0.1)
        for n in range(5):
            assert (await borrower.call("message", {"room": room, "text": f"after crash {n}"}))["ok"]
        moved = await Chatter(deal["owner"], b.url).connect()
        try:
            caught = await moved.call("join", {"room": room, "after_seq": last_seen})
            assert [m["text"] for m in caught["messages"]] == [f"after crash {n}" for n in range(5)]
            assert [m["seq"] for m in caught["messages"]] == list(range(41, 46))
            assert (await moved.call("message", {"room": room, "text": "다시 왔어요"}))["message"]["seq"] == 46
            assert (await borrower.wait_for("message", 16, room=room))[-1]["text"] == "다시 왔어요"
        finally:
            await moved.close()
    finally:
        await owner.close()
        await borrower.close()


async def test_a_retry_on_the_other_node_is_still_stored_once(nodes: list[Node], deal: dict[str, Any],
                                                               market: Market) -> None:
    a, b = nodes
    room = deal["room"]
    first = await Chatter(deal["borrower"], a.url).connect()
    second = await Chatter(deal["borrower"], b.url).connect()
    try:
        one = await first.call("message", {"room": room, "text": "한 번만", "client_msg_id": "same-1"})
        two = await second.call("message", {"room": room, "text": "한 번만", "client_msg_id": "same-1"})
        assert one["message"]["seq"] == two["message"]["seq"] and two["duplicate"] is True
        assert await market.db.fetchval("SELECT COUNT(*) FROM messages WHERE room_id = %s", (room,)) == 1
    finally:
        await first.close()
        await second.close()
