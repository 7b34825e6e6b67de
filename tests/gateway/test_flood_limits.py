"""Floods cost bounded work and bother nobody: searching, typing bot commands, opening deal rooms and signing up
are limited per person and per address (429 with Retry-After and a Korean sentence, or a toast with
``retry_after`` for a typed command), below the limits nothing is refused, and an owner asked about many items in a
burst gets one notification that counts them."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.app import create_app
from gateway.local_services import free_port
from market.config import Config
from market.errors import RateLimited
from market.limits import Claimed, Limits
from tests.conftest import Chatter, Person, _clean, sign_up

PROXIED = "127.0.0.0/8"  # the test client connects from here: its X-Forwarded-For is then believed


@asynccontextmanager
async def gateway(config: Config, **settings: Any) -> AsyncIterator[TestClient]:
    """An in-process gateway with some settings of its own (clean tables and Redis, like the ``client`` fixture)."""
    await _clean(config)
    async with TestClient(TestServer(create_app(config.replace(**settings)))) as client:
        yield client


def at(address: str) -> dict[str, str]:
    """Headers of a request our (trusted) proxy received from ``address``."""
    return {"X-Forwarded-For": address}


async def search(client: TestClient, person: Person | None = None, address: str | None = None,
                 path: str = "/api/search?q=텐트") -> tuple[int, dict[str, Any], str | None]:
    """Status, body and Retry-After of one search, by ``person`` (or someone logged out) from ``address``."""
    headers = {**(person.auth if person else {}), **(at(address) if address else {})}
    async with client.get(path, headers=headers) as r:
        return r.status, await r.json(), r.headers.get("Retry-After")


def assert_too_often(status: int, body: dict[str, Any], retry_after: str | None, code: str, words: str) -> None:
    assert status == 429, body
    assert body["error"]["code"] == code
    assert body["error"]["message"].startswith(words), body
    assert retry_after is not None and int(retry_after) >= 1


# -- search ------------------------------------------------------------------------------------------------
async def test_a_person_searching_past_the_default_limit_is_told_to_wait_and_others_are_not(
        client: TestClient, config: Config) -> None:
    flooder, neighbour = await sign_up(client), await sign_up(client)
    for _ in range(config.search_rate_limit):  # the real default: keyword and nearby searches count together
        status, body, _ = await search(client, flooder, path="/api/items/nearby?lat=37.4979&lng=127.0276")
        assert status == 200, body
    status, body, retry_after = await search(client, flooder)
    assert_too_often(status, body, retry_after, "limit.search", "검색을 너무 자주 하고 있어요.")
    assert re.search(r"\d+(초|분) 뒤 다시 시도해 주세요\.$", body["error"]["message"]), body
    status, body, _ = await search(client, flooder, path="/api/items/nearby?lat=37.4979&lng=127.0276")
    assert status == 429, body
    status, body, _ = await search(client, neighbour)  # the same address, another person
    assert status == 200, body


async def test_two_people_at_one_address_share_its_search_allowance(config: Config) -> None:
    async with gateway(config, trusted_proxies=PROXIED, search_rate_limit=3, search_address_rate_limit=4) as client:
        a, b = await sign_up(client), await sign_up(client)
        for _ in range(3):
            assert (await search(client, a, "198.51.100.7"))[0] == 200
        assert (await search(client, b, "198.51.100.7"))[0] == 200
        status, body, retry_after = await search(client, b, "198.51.100.7")  # b's own second: the address is full
        assert_too_often(status, body, retry_after, "limit.search", "검색을 너무 자주 하고 있어요.")
        assert (await search(client, b, "203.0.113.9"))[0] == 200  # b elsewhere


async def test_one_person_from_two_addresses_is_counted_once(config: Config) -> None:
    async with gateway(config, trusted_proxies=PROXIED, search_rate_limit=3, search_address_rate_limit=100) as client:
        a = await sign_up(client)
        assert (await search(client, a, "198.51.100.7"))[0] == 200
        assert (await search(client, a, "203.0.113.9"))[0] == 200
        assert (await search(client, a, "198.51.100.7"))[0] == 200
        status, body, retry_after = await search(client, a, "203.0.113.9")
        assert_too_often(status, body, retry_after, "limit.search", "검색을 너무 자주 하고 있어요.")
        assert (await search(client, None, "203.0.113.9"))[0] == 200  # someone else there is still answered


async def test_searches_while_logged_out_are_counted_by_address(config: Config) -> None:
    async with gateway(config, trusted_proxies=PROXIED, search_rate_limit=2, search_address_rate_limit=100) as client:
        for _ in range(2):
            assert (await search(client, None, "198.51.100.7"))[0] == 200
        status, body, retry_after = await search(client, None, "198.51.100.7")
        assert_too_often(status, body, retry_after, "limit.search", "검색을 너무 자주 하고 있어요.")
        assert (await search(client, None, "203.0.113.9"))[0] == 200


# -- sign-up -----------------------------------------------------------------------------------------------
async def _sign_up(client: TestClient, n: int, address: str) -> tuple[int, dict[str, Any], str | None]:
    async with client.post("/api/auth/signup", headers=at(address), json={
            "email": f"flood{n}@example.com", "nickname": f"가입{n}", "password": "rent4you"}) as r:
        answer = r.status, await r.json(), r.headers.get("Retry-After")
    client.session.cookie_jar.clear()  # (each sign-up is someone new, with no session)
    return answer


async def test_sign_ups_past_an_address_limit_are_refused_and_make_no_account(config: Config) -> None:
    async with gateway(config, trusted_proxies=PROXIED, signup_rate_limit=3) as client:
        for n in range(3):
            status, body, _ = await _sign_up(client, n, "198.51.100.7")
            assert status == 201, body
        status, body, retry_after = await _sign_up(client, 3, "198.51.100.7")
        assert_too_often(status, body, retry_after, "limit.sign_up", "이 네트워크에서 가입이 너무 많이 시도됐어요.")
        async with client.post("/api/auth/login", json={"email": "flood3@example.com", "password": "rent4you"}) as r:
            assert r.status == 401  # no account was made
        status, body, _ = await _sign_up(client, 3, "203.0.113.9")  # the same person from another network
        assert status == 201, body


async def test_sign_ups_cycling_through_the_64s_and_56s_of_one_ipv6_48_share_its_allowance(config: Config) -> None:
    async with gateway(config, trusted_proxies=PROXIED, signup_rate_limit=1) as client:
        # a /64 may sign up once, a /56 4 times, a /48 16 times: a new /56 (and /64) for every sign-up
        for n in range(16):
            status, body, _ = await _sign_up(client, n, f"2001:db8:7:{n:02x}00::1")
            assert status == 201, body
        status, body, retry_after = await _sign_up(client, 16, "2001:db8:7:ff00::1")
        assert_too_often(status, body, retry_after, "limit.sign_up", "이 네트워크에서 가입이 너무 많이 시도됐어요.")
        status, body, _ = await _sign_up(client, 16, "2001:db8:8::1")  # another /48
        assert status == 201, body


# -- deal rooms ---------------------------------------------------------------------------------------------
async def test_opening_deal_rooms_past_a_persons_limit_is_refused_but_open_rooms_still_open(config: Config) -> None:
    async with gateway(config, inquiry_rate_limit=2) as client:
        owner, asker, other = await sign_up(client), await sign_up(client), await sign_up(client)
        items = [await owner.new_item(title=f"캠핑의자 {n}") for n in range(3)]
        for item in items[:2]:
            status, body = await asker.call("POST", f"/api/items/{item['id']}/room")
            assert status == 201, body
        async with client.post(f"/api/items/{items[2]['id']}/room", headers=asker.auth) as r:
            status, body, retry_after = r.status, await r.json(), r.headers.get("Retry-After")
        assert_too_often(status, body, retry_after, "limit.inquiry", "짧은 시간에 너무 많은 물건에 문의했어요.")
        status, body = await asker.call("POST", f"/api/items/{items[0]['id']}/room")
        assert status == 200, body  # a room already open is always reachable
        status, body = await other.call("POST", f"/api/items/{items[2]['id']}/room")
        assert status == 201, body
        status, body = await owner.call("GET", "/api/rooms")
        assert len([r for r in body["rooms"] if r["kind"] == "deal"]) == 3


async def test_a_burst_of_inquiries_gives_the_owner_one_notification_that_counts_them(client: TestClient) -> None:
    owner = await sign_up(client, nickname="민지")
    items = [await owner.new_item(title=f"텐트 {n}") for n in range(3)]
    askers = [await sign_up(client, nickname=f"이웃{n}호") for n in range(5)]
    for n, asker in enumerate(askers):
        status, body = await asker.call("POST", f"/api/items/{items[n % 3]['id']}/room")
        assert status == 201, body
    status, body = await owner.call("GET", "/api/me/notifications")
    inquiries = [n for n in body["notifications"] if n["kind"] == "new_inquiry"]
    assert body["unread"] == 1 and len(inquiries) == 1, body
    assert inquiries[0]["text"] == "새 문의 5건이 왔어요. 가장 최근: 이웃4호님, 텐트 1"
    await owner.call("POST", "/api/me/notifications/read", json={})
    late = await sign_up(client, nickname="늦은이웃")
    status, body = await late.call("POST", f"/api/items/{items[2]['id']}/room")
    assert status == 201, body
    status, body = await owner.call("GET", "/api/me/notifications")
    assert body["unread"] == 1  # read bursts stay as they were; the new inquiry is told on its own
    assert body["notifications"][0]["text"] == "늦은이웃님이 텐트 2에 대해 문의했어요."


# -- bot commands ------------------------------------------------------------------------------------------
async def _assistant_room(person: Person) -> int:
    status, body = await person.call("GET", "/api/rooms")
    assert status == 200
    return int(next(r for r in body["rooms"] if r["kind"] == "assistant")["id"])


async def _answered(chatter: Chatter, room: int, text: str) -> dict[str, Any]:
    """Type ``text``; the bot's answer in the room, or the toast the typist got instead."""
    messages, notices = len(chatter.received("message", room)), len(chatter.received("notice", room))
    ack = await chatter.call("message", {"room": room, "text": text})
    assert ack["ok"], ack
    for _ in range(200):
        said = [m for m in chatter.received("message", room)[messages:] if m["sender"]["kind"] == "bot"]
        if said:
            return {"message": said[0]}
        if len(chatter.received("notice", room)) > notices:
            assert all(m["sender"]["kind"] != "bot" for m in chatter.received("message", room)[messages:])
            return {"notice": chatter.received("notice", room)[notices]}
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing came of {text!r}")


async def test_commands_past_a_persons_limit_are_a_toast_with_retry_after(config: Config) -> None:
    async with gateway(config, command_rate_limit=3) as client:
        typist, other = await sign_up(client), await sign_up(client)
        base = str(client.make_url("/"))
        t, o = await Chatter(typist, base).connect(), await Chatter(other, base).connect()
        try:
            room, other_room = await _assistant_room(typist), await _assistant_room(other)
            assert (await t.call("join", {"room": room}))["ok"] and (await o.call("join", {"room": other_room}))["ok"]
            for text in ("/도움말", "/검색 텐트", "/주변 역삼동"):
                assert "message" in await _answered(t, room, text)
            refused = await _answered(t, room, "/검색 의자")
            assert "notice" in refused, refused
            notice = refused["notice"]
            assert notice["code"] == "limit.command"
            assert notice["message"].startswith("명령어를 너무 자주 보내고 있어요.")
            assert isinstance(notice["retry_after"], int) and notice["retry_after"] >= 1
            assert "message" in await _answered(o, other_room, "/검색 텐트")  # another person is not slowed
        finally:
            await t.close()
            await o.close()


async def test_an_allowance_spent_just_before_a_clock_boundary_stays_spent_after_it(config: Config) -> None:
    """A window opens at a person's first try: a burst straddling a round second (minute, hour) is judged whole,
    on Redis and, with Redis away, in a node's memory."""
    shared = aioredis.Redis.from_url(config.redis_url)
    away = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    try:
        await shared.flushdb()
        for redis in (shared, away):
            limits = Limits(redis, config.replace(search_rate_limit=2, search_rate_window_s=2))
            while time.time() % 2 < 1.6:  # just before a boundary of a clock-aligned 2 s window
                await asyncio.sleep(0.05)
            for _ in range(2):
                await limits.take(limits.search, person=7)
            while time.time() % 2 > 1.0:  # past the boundary, still within 2 s of the first try
                await asyncio.sleep(0.05)
            with pytest.raises(RateLimited) as refused:
                await limits.take(limits.search, person=7)
            assert refused.value.params["retry_after"] in (1, 2)
            await asyncio.sleep(2)
            await limits.take(limits.search, person=7)  # its window is over
    finally:
        await shared.aclose()
        await away.aclose()


async def test_a_claim_taken_with_a_count_is_held_waits_for_its_holder_and_is_given_back_when_refused(
        config: Config) -> None:
    """A typed command claims its room's lock in the round trip that counts it: a held claim refuses nothing and
    counts nothing (the caller waits for the holder), and a refused try leaves no claim behind."""
    shared = aioredis.Redis.from_url(config.redis_url, decode_responses=True)
    try:
        await shared.flushdb()
        limits = Limits(shared, config.replace(command_rate_limit=2))
        await shared.set("flow", "open")
        got = await limits.take_reading(limits.command, ["flow", "absent"], person=7, claim=("lock", "a", 30_000))
        assert got == (True, ["open", None]) and await shared.get("lock") == "a"
        with pytest.raises(Claimed):
            await limits.take_reading(limits.command, ["flow"], person=7, claim=("lock", "b", 30_000))
        assert await shared.get("lock") == "a"
        await shared.delete("lock")
        # the second try of two allowed (the claimed one counted nothing)
        assert await limits.take_reading(limits.command, ["flow"], person=7, claim=("lock", "b", 30_000)) == (
            True, ["open"])
        await shared.delete("lock")
        with pytest.raises(RateLimited):
            await limits.take_reading(limits.command, ["flow"], person=7, claim=("lock", "c", 30_000))
        assert await shared.get("lock") is None
    finally:
        await shared.aclose()


async def test_a_claim_sent_again_after_its_answer_was_lost_is_held_and_counted_once(config: Config) -> None:
    """The Redis client sends a command again after a connection error: a claim that ran the first time finds its
    own token and only reads — held, counted once — instead of waiting 30 s on itself."""
    shared = aioredis.Redis.from_url(config.redis_url, decode_responses=True)
    try:
        await shared.flushdb()
        limits = Limits(shared, config.replace(command_rate_limit=5))
        await shared.set("flow", "open")
        once = limits._take

        async def twice(**kwargs: Any) -> Any:  # the first run's answer lost, the same command sent again
            await once(**kwargs)
            return await once(**kwargs)

        limits._take = twice  # type: ignore[method-assign]
        got = await limits.take_reading(limits.command, ["flow"], person=7, claim=("lock", "mine", 30_000))
        assert got == (True, ["open"]) and await shared.get("lock") == "mine"
        assert await shared.get(f"billi:limit:{limits.command.action}:p7") == "1"
    finally:
        await shared.aclose()



async def test_tries_pending_together_go_in_one_round_trip_each_judged_as_alone(config: Config) -> None:
    """Every try pending in the process goes to Redis in one script call, and each is answered as if it had been
    sent alone, in order: counts, refusals, claims (held, taken, given back) and reads, mixed in one batch."""
    shared = aioredis.Redis.from_url(config.redis_url, decode_responses=True)
    try:
        await shared.flushdb()
        limits = Limits(shared, config.replace(command_rate_limit=3, search_rate_limit=1, search_address_rate_limit=9))
        await shared.set("flow", "open")
        await shared.set("held", "someone")
        calls = 0
        once = limits._take

        async def counted(**kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return await once(**kwargs)

        limits._take = counted  # type: ignore[method-assign]
        tries = [limits.take_reading(limits.command, ["flow", "absent"], person=7) for _ in range(4)]
        tries += [limits.take_reading(limits.command, "flow", person=8, claim=("held", "x", 30_000)),
                  limits.take_reading(limits.command, ["flow"], person=9, claim=("lock", "y", 30_000)),
                  limits.take(limits.search, person=1, address="2001:db8::1"),
                  limits.take(limits.search, person=1, address="2001:db8::1")]
        got = await asyncio.gather(*tries, return_exceptions=True)
        assert calls == 1
        assert got[:3] == [(True, ["open", None])] * 3
        assert isinstance(got[3], RateLimited) and got[3].code == "limit.command"
        assert isinstance(got[4], Claimed) and await shared.get("held") == "someone"
        assert got[5] == (True, ["open"]) and await shared.get("lock") == "y"
        assert got[6] is None
        assert isinstance(got[7], RateLimited) and got[7].code == "limit.search"
        assert await shared.get(f"billi:limit:{limits.command.action}:p7") == "3"
        assert await shared.get(f"billi:limit:{limits.command.action}:p8") is None
        assert await shared.get(f"billi:limit:{limits.command.action}:p9") == "1"
        assert await shared.get(f"billi:limit:{limits.search.action}:p1") == "1"
        assert await shared.get(f"billi:limit:{limits.search.action}:addr:2001:db8::/48") == "1"
        # a later try is its own round trip, still counted in the same windows
        with pytest.raises(RateLimited):
            await limits.take_reading(limits.command, ["flow"], person=7)
        assert calls == 2
    finally:
        await shared.aclose()

# -- Redis away ---------------------------------------------------------------------------------------------
async def test_with_redis_away_each_node_still_counts_and_refuses_on_its_own(config: Config) -> None:
    away = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)  # nothing listens there
    limits = Limits(away, config.replace(search_rate_limit=2))
    try:
        for _ in range(2):
            await limits.take(limits.search, person=1, address="198.51.100.7")
        with pytest.raises(RateLimited) as refused:
            await limits.take(limits.search, person=1, address="198.51.100.7")
        assert refused.value.code == "limit.search" and refused.value.params["retry_after"] >= 1
        await limits.take(limits.search, person=2, address="198.51.100.7")  # someone else searches on
    finally:
        await away.aclose()


async def test_a_try_that_fails_or_whose_caller_left_spoils_no_other_try_of_its_round_trip(config: Config) -> None:
    """A try whose command fails in Redis (a key of another type) fails alone, as if sent alone: the others of
    its round trip are answered and counted. A try whose caller went away before it was sent counts nothing and
    claims nothing."""
    shared = aioredis.Redis.from_url(config.redis_url, decode_responses=True)
    try:
        await shared.flushdb()
        limits = Limits(shared, config.replace(command_rate_limit=3))
        await shared.hset("a-hash", "a", "b")
        await shared.set("flow", "open")
        got = await asyncio.gather(
            limits.take_reading(limits.command, ["flow"], person=4, claim=("lock-4", "t4", 30_000)),
            limits.take_reading(limits.command, ["a-hash"], person=5), return_exceptions=True)
        assert got[0] == (True, ["open"]) and await shared.get("lock-4") == "t4"
        assert await shared.get(f"billi:limit:{limits.command.action}:p4") == "1"
        assert got[1] == (False, None)  # (its Redis failed: counted on this node, as a lone try's was)
        limits._away_until = 0.0
        gone = asyncio.ensure_future(limits.take_reading(limits.command, ["flow"], person=6,
                                                         claim=("lock-6", "t6", 30_000)))
        await asyncio.sleep(0)  # (queued, not sent)
        gone.cancel()
        stays = await limits.take_reading(limits.command, ["flow"], person=7)
        assert stays == (True, ["open"])
        assert await shared.get("lock-6") is None
        assert await shared.get(f"billi:limit:{limits.command.action}:p6") is None
    finally:
        await shared.aclose()


async def test_tries_waiting_behind_a_frozen_redis_hear_of_it_with_the_try_in_flight(config: Config) -> None:
    """Redis takes a command and never answers: the tries that queued behind it are not sent after it, one
    timeout each; they all fall back to counting on this node when the one in flight times out."""

    async def frozen(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):  # (takes every command, answers none, until the client hangs up)
                pass
        finally:
            writer.close()

    server = await asyncio.start_server(frozen, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redis = aioredis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5, socket_connect_timeout=0.5,
                           retry=Retry(NoBackoff(), 0))
    try:
        limits = Limits(redis, config.replace(command_rate_limit=3))
        loop = asyncio.get_running_loop()
        ended: list[float] = []

        async def one(person: int) -> None:
            await limits.take(limits.command, person=person)
            ended.append(loop.time())

        first = asyncio.ensure_future(one(1))
        await asyncio.sleep(0.2)  # (the first is in flight)
        await asyncio.gather(first, one(2))
        assert max(ended) - min(ended) < 0.2
        assert limits._local  # (both counted here)
    finally:
        await redis.aclose()
        server.close()
        await server.wait_closed()
