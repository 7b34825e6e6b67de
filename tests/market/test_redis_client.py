"""The market's Redis client keeps the blocking pool's promises: a burst waits for a connection instead of failing,
a command behind a busy pool runs when one is free (or fails after the wait), a connection Redis dropped is
replaced and the command sent again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from market.config import Config
from market.redis_client import Client, connect


@pytest.fixture
async def key(config: Config) -> AsyncIterator[str]:
    name = f"test:redis-client:{uuid.uuid4().hex}"
    yield name
    plain = aioredis.from_url(config.redis_url or "")
    try:
        await plain.delete(name, name + ":list")
    finally:
        await plain.aclose()


async def _client(config: Config, size: int, wait_s: float = 10) -> Client:
    return connect(config.redis_url or "", max_connections=size, timeout_s=5, wait_s=wait_s)


async def test_a_burst_far_past_the_pool_waits_for_connections_and_every_command_lands(config: Config,
                                                                                       key: str) -> None:
    client = await _client(config, 2)
    try:
        results = await asyncio.gather(*(client.incr(key) for _ in range(200)))
        assert sorted(results) == list(range(1, 201))
        assert int(await client.get(key)) == 200
    finally:
        await client.aclose()


async def test_a_command_behind_a_busy_pool_runs_when_the_connection_is_free(config: Config, key: str) -> None:
    client = await _client(config, 1)
    try:
        busy = asyncio.create_task(client.blpop([key + ":list"], timeout=0.5))  # holds the only connection
        await asyncio.sleep(0.05)
        assert await client.set(key, "나중에") is True  # waited its turn
        assert busy.done() and busy.result() is None
        assert await client.get(key) == "나중에"
    finally:
        await client.aclose()


async def test_a_command_that_waits_longer_than_the_pool_allows_fails_with_a_connection_error(
        config: Config, key: str) -> None:
    client = await _client(config, 1, wait_s=0.2)
    try:
        busy = asyncio.create_task(client.blpop([key + ":list"], timeout=1))
        await asyncio.sleep(0.05)
        with pytest.raises(RedisConnectionError):
            await client.get(key)
        await busy
        assert await client.set(key, "1") is True  # and the pool serves again once the connection is back
    finally:
        await client.aclose()


async def test_a_connection_redis_dropped_is_replaced_and_the_command_sent_again(config: Config, key: str) -> None:
    client = await _client(config, 1)
    killer = aioredis.from_url(config.redis_url or "")
    try:
        first = await client.client_id()
        assert await killer.client_kill_filter(_id=first) == 1  # as a restarted Redis would
        assert await client.incr(key) == 1  # no error for the person: a new connection, the same command
        assert await client.client_id() != first
        # and a pipeline on the same pool after another drop
        assert await killer.client_kill_filter(_id=await client.client_id()) == 1
        async with client.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.get(key)
            assert await pipe.execute() == [2, "2"]
    finally:
        await killer.aclose()
        await client.aclose()


async def test_a_registered_script_runs_again_after_redis_forgot_it(config: Config, key: str) -> None:
    client = await _client(config, 2)
    try:
        bump = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        assert await bump(keys=[key], args=[2]) == 2
        await client.script_flush()  # as a restarted Redis has forgotten it
        assert await bump(keys=[key], args=[3]) == 5
        async with client.pipeline(transaction=False) as pipe:  # (on a pipeline: the library's own call)
            await bump(keys=[key], args=[1], client=pipe)
            assert await pipe.execute() == [6]
    finally:
        await client.aclose()
