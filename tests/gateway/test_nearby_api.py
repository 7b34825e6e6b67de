"""GET /api/items/nearby: cards nearest first, paging, filters and clear errors."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import sign_up


async def test_nearby_returns_cards_nearest_first_and_pages_with_a_cursor(client: TestClient) -> None:
    owner = await sign_up(client)
    # Five items walking north from Gangnam station, ~110 m apart, and one in Busan.
    made = [await owner.new_item(title=f"물건 {k}", lat=37.4979 + k * 0.001, lng=127.0276) for k in range(5)]
    await owner.new_item(title="부산 물건", lat=35.1796, lng=129.0756)
    async with client.get("/api/items/nearby", params={"lat": "37.4979", "lng": "127.0276", "limit": "3"}) as r:
        assert r.status == 200
        first = await r.json()
    assert [c["id"] for c in first["items"]] == [m["id"] for m in made[:3]]
    # distances are to each item's ~250 m cell centre, to 100 m (items 1 and 2 share a cell, as do 3 and 4)
    assert [c["distance_m"] for c in first["items"]] == [100, 200, 200]
    assert first["radius_m"] == 6000 and first["next_cursor"]
    card = first["items"][0]
    assert {"title", "price_per_day", "deposit", "condition", "thumbnail", "wish_count", "category"} <= set(card)
    async with client.get("/api/items/nearby", params={
            "lat": "37.4979", "lng": "127.0276", "limit": "3", "cursor": first["next_cursor"]}) as r:
        second = await r.json()
    assert [c["id"] for c in second["items"]] == [m["id"] for m in made[3:]]
    assert [c["distance_m"] for c in second["items"]] == [500, 500]
    assert second["next_cursor"] is None


async def test_nearby_filters_by_price_condition_and_category_level(client: TestClient) -> None:
    owner = await sign_up(client)
    cheap = await owner.new_item(price_per_day=3000, condition="중")
    await owner.new_item(price_per_day=30000, condition="상")
    camera = await owner.new_item(category_id=42, price_per_day=40000, condition="상")
    base = {"lat": "37.4979", "lng": "127.0276"}
    async with client.get("/api/items/nearby", params={**base, "price_max": "5000"}) as r:
        assert [c["id"] for c in (await r.json())["items"]] == [cheap["id"]]
    async with client.get("/api/items/nearby", params={**base, "condition": "상", "category": "40"}) as r:
        assert [c["id"] for c in (await r.json())["items"]] == [camera["id"]]


async def test_nearby_with_bad_parameters_says_what_is_wrong(client: TestClient) -> None:
    for params, field in [({"lng": "127"}, "lat"), ({"lat": "37.5", "lng": "127", "radius_m": "-1"}, "radius_m"),
                          ({"lat": "37.5", "lng": "127", "cursor": "'; DROP TABLE items; --"}, "cursor"),
                          ({"lat": "37.5", "lng": "127", "category": "99999"}, "category_id")]:
        async with client.get("/api/items/nearby", params=params) as r:
            assert r.status == 400, params
            err = (await r.json())["error"]
            assert err["field"] == field and err["message"]
