"""A session that ends takes its open chat sockets with it, on every node: log-out hangs them up at once (each
told why first), other sessions of the same person stay; a session that expired — or was revoked while a node
did not hear of it — is found by the node's own sweep."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import socketio

from market.config import Config
from market.people.accounts import token_hash
from market.service import Market
from tests.conftest import Chatter, Person
from tests.e2e.nodes import start_node
from tests.e2e.test_two_nodes import _person


async def _hung_up(chatter: Chatter) -> bool:
    for _ in range(200):
        if not chatter.sio.connected:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_logging_out_hangs_up_that_sessions_sockets_on_every_node_and_no_other(
        config: Config, market: Market) -> None:
    person = await _person(market, "leaver@example.com", "떠나는이")
    phone = await market.accounts.log_in({"email": "leaver@example.com", "password": "rent4you"}, source="127.0.0.1")
    other = Person(None, phone.token, person.user)  # type: ignore[arg-type]
    a, b = start_node(config), start_node(config)
    try:
        here, there = await Chatter(person, a.url).connect(), await Chatter(person, b.url).connect()
        kept = await Chatter(other, b.url).connect()
        async with httpx.AsyncClient(timeout=30) as http:
            out = await http.post(a.url + "api/auth/logout", headers={"Authorization": f"Bearer {person.token}"})
            assert out.status_code == 200, out.text
        assert await _hung_up(here) and await _hung_up(there)
        for gone in (here, there):
            ended = gone.received("session_ended")
            assert ended and "로그아웃" in ended[0]["message"], gone.events
        assert kept.sio.connected and not kept.received("session_ended")
        room = (await market.chat.assistant_room(person.id)).id
        assert (await kept.call("join", {"room": room}))["ok"]  # the phone's session goes on
        with pytest.raises(socketio.exceptions.ConnectionError):  # and the token does not connect again
            await Chatter(person, b.url).connect()
        await kept.close()
    finally:
        a.stop()
        b.stop()


async def test_a_session_that_expired_while_its_socket_listened_is_hung_up_by_the_sweep(
        config: Config, market: Market) -> None:
    person = await _person(market, "expiring@example.com", "끝나는이")
    node = start_node(config, BILLI_SESSION_SWEEP_INTERVAL_MS="300")
    try:
        listening = await Chatter(person, node.url).connect()
        await asyncio.sleep(1)  # a few sweeps: a live session is left alone
        assert listening.sio.connected and not listening.received("session_ended")
        await market.db.execute("UPDATE sessions SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE token_hash = %s",
                                (token_hash(person.token),))
        assert await _hung_up(listening)
        assert listening.received("session_ended")
    finally:
        node.stop()
