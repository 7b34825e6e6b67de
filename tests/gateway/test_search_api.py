"""GET /api/search and /api/search/complete through the running gateway (its indexer drains the outbox)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import GANGNAM, sign_up


async def _search(client: TestClient, **params: str) -> tuple[int, Any]:
    async with client.get("/api/search", params=params) as r:
        return r.status, await r.json()


async def _until_found(client: TestClient, q: str, want: int, **params: str) -> Any:
    """The gateway's indexer runs on its own; wait (briefly) until it has caught up."""
    for _ in range(100):
        status, body = await _search(client, q=q, **params)
        assert status == 200, body
        if len(body["items"]) >= want:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"search for {q!r} never found {want} item(s)")


async def test_search_returns_cards_with_distance_and_paging(client: TestClient) -> None:
    owner = await sign_up(client)
    near = await owner.new_item(title="캠핑의자 2개", category_id=7)
    far = await owner.new_item(title="릴렉스 체어", lat=GANGNAM[0] + 0.02, category_id=7)
    await owner.new_item(title="원터치 텐트", description="설치가 쉬워요.", category_id=3)
    await _until_found(client, "의자", 2)
    status, body = await _search(client, q="의자", lat=str(GANGNAM[0]), lng=str(GANGNAM[1]), limit="1")
    assert status == 200
    assert [c["id"] for c in body["items"]] == [near["id"]]
    card = body["items"][0]
    # distances are to the item's cell centre (~140 m from the station here), to 100 m
    assert card["distance_m"] == 100 and {"title", "price_per_day", "deposit", "thumbnail"} <= set(card)
    assert body["terms"] == ["의자"] and body["next_cursor"]
    status, second = await _search(client, q="의자", lat=str(GANGNAM[0]), lng=str(GANGNAM[1]), limit="1",
                                   cursor=body["next_cursor"])
    assert status == 200 and [c["id"] for c in second["items"]] == [far["id"]]
    assert 2000 < second["items"][0]["distance_m"] < 2400


async def test_no_results_come_with_a_suggestion_and_bad_parameters_with_a_clear_error(client: TestClient) -> None:
    owner = await sign_up(client)
    await owner.new_item(title="원터치 텐트", description="설치가 쉬워요.", category_id=3)
    await _until_found(client, "텐트", 1)
    status, body = await _search(client, q="텐드")  # one key off: searched as corrected, and said so
    assert status == 200 and len(body["items"]) == 1 and body["did_you_mean"] == "텐트" and body["corrected"]
    status, body = await _search(client, q="화성탐사선")
    assert status == 200 and body["items"] == [] and body["did_you_mean"] is None and not body["corrected"]
    status, body = await _search(client, q="텐트", lat="10", lng="10")
    assert status == 400 and body["error"]["code"] == "input.outside_korea" and body["error"]["message"]
    status, body = await _search(client, q="텐트", cursor="!!")
    assert status == 400 and body["error"]["code"] == "input.bad_cursor"
    status, body = await _search(client, q="<script>alert(1)</script>")
    assert status == 200 and body["items"] == []


async def test_autocomplete_endpoint(client: TestClient) -> None:
    owner = await sign_up(client)
    await owner.new_item(title="헬리녹스 체어원", category_id=7)
    await _until_found(client, "헬리녹스", 1)
    async with client.get("/api/search/complete", params={"q": "헬리"}) as r:
        assert r.status == 200 and (await r.json())["suggestions"] == ["헬리녹스 체어원"]
    async with client.get("/api/search/complete") as r:
        assert r.status == 200 and (await r.json())["suggestions"] == []
