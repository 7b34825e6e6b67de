"""The indexer's rounds: an idle one asks the outbox less and less often (up to IDLE_STRETCH intervals); a change
it drained, a poke, or another process's drain holding the lock brings it back to its interval."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from market.search.indexer import IDLE_STRETCH, LOCK_NAME
from market.service import Market
from tests.conftest import item_fields


async def _rounds(market: Market, monkeypatch: pytest.MonkeyPatch, rounds: int,
                  between: Any = None) -> list[float]:
    """The waits of ``rounds`` rounds of ``run`` (each wait is cut short, so no real time passes); ``between(n)``
    runs before round n's wait."""
    waits: list[float] = []
    indexer = market.indexer

    async def pause(seconds: float) -> bool:
        waits.append(seconds)
        if between is not None:
            await between(len(waits))
        if len(waits) >= rounds:
            indexer.stop()
        poked = indexer._wake.is_set()
        indexer._wake.clear()
        return poked

    monkeypatch.setattr(indexer, "_pause", pause)
    await asyncio.wait_for(indexer.run(0.5), 30)
    return waits


async def test_an_idle_indexer_waits_longer_up_to_its_stretch(market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    await market.indexer.drain()
    waits = await _rounds(market, monkeypatch, 6)
    assert waits == [1.0, 2.0, 0.5 * IDLE_STRETCH, 0.5 * IDLE_STRETCH, 0.5 * IDLE_STRETCH, 0.5 * IDLE_STRETCH]


async def test_a_drained_change_or_a_poke_brings_the_interval_back(market: Market,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    await market.indexer.drain()
    owner = (await market.accounts.sign_up({"email": "idx@example.com", "nickname": "색인주인",
                                            "password": "rent4you"})).user.id

    async def between(n: int) -> None:
        if n == 3:  # another process lists an item (no poke here): found at the next round
            market.items.on_change = None
            await market.items.create(owner, item_fields(title="색인 확인 텐트"))
        if n == 6:
            market.indexer.poke()

    waits = await _rounds(market, monkeypatch, 8, between)
    assert waits[:4] == [1.0, 2.0, 2.0, 0.5]  # (round 4 drained the item)
    assert waits[4:] == [1.0, 2.0, 1.0, 2.0]  # (the poke at round 6: the round after it waits one doubling)


async def test_another_processs_drain_holding_the_lock_keeps_the_interval(market: Market,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    await market.indexer.drain()
    await market.db.execute("INSERT INTO search_outbox (item_id) VALUES (%s)", (10**9,))
    async with market.db.held() as other:
        await other.execute("SELECT GET_LOCK(%s, 0)", (LOCK_NAME,))
        waits = await _rounds(market, monkeypatch, 4)
        await other.execute("SELECT RELEASE_LOCK(%s)", (LOCK_NAME,))
    assert waits == [0.5, 0.5, 0.5, 0.5]
    assert await market.indexer.drain() == 1
