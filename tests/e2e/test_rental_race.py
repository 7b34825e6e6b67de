"""No double booking: 50 people ask for overlapping dates of one item at the same moment, through two gateway
processes; exactly one request holds the dates, the other 49 are told the dates are taken (with free ones)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from market.config import Config
from market.rentals.kdates import seoul_today
from market.service import Market
from tests.e2e.nodes import start_node
from tests.e2e.test_two_nodes import _person


async def test_fifty_concurrent_conflicting_requests_on_two_nodes_hold_once(config: Config, market: Market) -> None:
    owner = await _person(market, "popular@example.com", "인기템주인")
    item = await market.items.create(owner.id, {
        "title": "빔프로젝터", "description": "주말에 인기", "category_id": 7, "price_per_day": 10000,
        "deposit": 50000, "condition": "상", "lat": 37.4979, "lng": 127.0276})
    people = [await _person(market, f"fan{i}@example.com", f"팬{i}") for i in range(50)]
    base = seoul_today() + timedelta(days=10)
    a, b = start_node(config), start_node(config)
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            async def ask(i: int) -> httpx.Response:
                start = base + timedelta(days=i % 3)  # [d, d+2], [d+1, d+3], [d+2, d+4]: all overlap
                node = (a, b)[i % 2]
                return await http.post(node.url + "api/contracts", headers={
                    "Authorization": f"Bearer {people[i].token}"}, json={
                    "item_id": item["id"], "start": start.isoformat(), "end": (start + timedelta(days=2)).isoformat()})

            answers = await asyncio.gather(*(ask(i) for i in range(50)))
    finally:
        a.stop()
        b.stop()
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * 49
    refused = [r.json() for r in answers if r.status_code == 409]
    assert all(r["error"]["code"] == "rental.dates_taken" and r["free"] for r in refused)
    rows = await market.db.fetchall("SELECT state, start_date, end_date FROM contracts WHERE item_id = %s",
                                    (item["id"],))
    assert len(rows) == 1 and rows[0]["state"] == "REQUESTED"
    held = rows[0]
    for r in refused:  # every suggestion is really free
        for free in r["free"]:
            assert free["end"] < held["start_date"].isoformat() or free["start"] > held["end_date"].isoformat()
