"""Wishes (찜): idempotent add and remove, counts on the item, my list."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from tests.conftest import sign_up


async def test_wishing_twice_counts_once_and_unwishing_twice_is_harmless(client: TestClient) -> None:
    owner = await sign_up(client)
    fan = await sign_up(client)
    item = await owner.new_item()
    path = f"/api/items/{item['id']}/wish"
    assert await fan.call("PUT", path) == (200, {"wished": True, "wish_count": 1})
    assert await fan.call("PUT", path) == (200, {"wished": True, "wish_count": 1})
    _, detail = await fan.call("GET", f"/api/items/{item['id']}")
    assert detail["item"]["wish_count"] == 1 and detail["item"]["wished_by_me"] is True
    assert await fan.call("DELETE", path) == (200, {"wished": False, "wish_count": 0})
    assert await fan.call("DELETE", path) == (200, {"wished": False, "wish_count": 0})


async def test_concurrent_wishes_from_many_people_are_all_counted(client: TestClient) -> None:
    owner = await sign_up(client)
    fans = [await sign_up(client) for _ in range(8)]
    item = await owner.new_item()
    path = f"/api/items/{item['id']}/wish"
    await asyncio.gather(*(f.call("PUT", path) for f in fans for _ in range(2)))
    _, detail = await owner.call("GET", f"/api/items/{item['id']}")
    assert detail["item"]["wish_count"] == 8


async def test_my_wishes_lists_live_items_newest_wish_first(client: TestClient) -> None:
    owner = await sign_up(client)
    fan = await sign_up(client)
    a = await owner.new_item(title="텐트")
    b = await owner.new_item(title="버너")
    c = await owner.new_item(title="랜턴")
    for item in (a, b, c):
        await fan.call("PUT", f"/api/items/{item['id']}/wish")
    await owner.call("DELETE", f"/api/items/{b['id']}")
    _, mine = await fan.call("GET", "/api/me/wishes")
    assert [i["title"] for i in mine["items"]] == ["랜턴", "텐트"]


async def test_wishing_needs_a_login_and_a_visible_item(client: TestClient) -> None:
    owner = await sign_up(client)
    fan = await sign_up(client)
    item = await owner.new_item()
    async with client.put(f"/api/items/{item['id']}/wish") as resp:
        assert resp.status == 401
    status, body = await fan.call("PUT", "/api/items/987654/wish")
    assert status == 404 and body["error"]["code"] == "item.not_found"
    await owner.call("PATCH", f"/api/items/{item['id']}", json={"status": "hidden"})
    assert (await fan.call("PUT", f"/api/items/{item['id']}/wish"))[0] == 404
    _, detail = await owner.call("GET", f"/api/items/{item['id']}")
    assert detail["item"]["wish_count"] == 0
