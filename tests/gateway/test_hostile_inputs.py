"""Inputs built to break us get a clear 400 or 404 in the usual error body and change nothing: JSON nested
100,000 deep, media paths with a NUL, a superscript digit or a missing name, and numbers and dates that used to be
rounded or read as something else (an item 2039.5, a price "1,0,0,0", notifications up to 1.5, "내일부터 -3일")."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient
from yarl import URL

from bot.flows.listing import parse_won
from gateway.keys import MARKET
from market.rentals.kdates import read_dates, seoul_today
from tests.conftest import Person, image_bytes, item_fields, sign_up
from tests.gateway.test_items_api import photos_form


async def _get(client: TestClient, raw_path: str, person: Person | None = None) -> tuple[int, Any]:
    """GET a path exactly as written (percent escapes and trailing slashes kept) and read the JSON answer."""
    url = URL(str(client.make_url("/")).rstrip("/") + raw_path, encoded=True)
    async with client.session.get(url, headers=person.auth if person else {}) as resp:
        return resp.status, await resp.json()


def _refused(status: int, body: Any, expected_status: int, code: str) -> None:
    assert status == expected_status, body
    assert body["error"]["code"] == code and body["error"]["message"], body


async def test_json_nested_a_hundred_thousand_deep_is_not_json_to_us(client: TestClient) -> None:
    for raw in ("[" * 100_000, '{"email": ' + "[" * 100_000):
        async with client.post("/api/auth/signup", data=raw, headers={"Content-Type": "application/json"}) as resp:
            _refused(resp.status, await resp.json(), 400, "input.bad_json")
    assert await client.app[MARKET].db.fetchval("SELECT COUNT(*) FROM users") == 0


async def test_media_paths_that_name_no_photo_are_not_found(client: TestClient) -> None:
    owner = await sign_up(client)
    item = await owner.new_item()
    status, body = await owner.call("POST", f"/api/items/{item['id']}/photos",
                                    data=photos_form((image_bytes(), "a.jpg")))
    assert status == 201, body
    photo = body["photos"][0]["url"]
    for who in (None, owner):
        for path in ("/media/items/%00/x", "/media/items/%00/x.jpg", "/media/chat/%C2%B2/x.jpg", "/media/items/",
                     f"/media/items/{item['id']}/", f"/media/items/{item['id']}", "/media/profiles/",
                     f"/media/chat/{item['id']}/"):
            status, body = await _get(client, path, who)
            assert status == 404, (path, body)
            assert body["error"]["code"] in ("media.not_found", "service.not_found") and body["error"]["message"]
    async with client.get(photo) as resp:  # a real photo is still served
        assert resp.status == 200 and resp.content_type == "image/jpeg"


async def test_a_fractional_item_id_is_refused_not_rounded_to_an_item(client: TestClient) -> None:
    owner, borrower = await sign_up(client), await sign_up(client)
    item = await owner.new_item()
    for item_id in (item["id"] + 0.5, f"{item['id']}.5", f"{item['id']}e0", True):
        status, body = await borrower.call("POST", "/api/contracts", json={"item_id": item_id, "dates": "내일부터 2일"})
        _refused(status, body, 404, "item.not_found")
    assert await client.app[MARKET].db.fetchval("SELECT COUNT(*) FROM contracts") == 0


async def test_a_price_written_1_0_0_0_is_refused_and_1_000_is_a_thousand(client: TestClient) -> None:
    owner = await sign_up(client)
    for price in ("1,0,0,0", "10,00", ",1000", "1000,", "1_000", "²", 1000.5):
        status, body = await owner.call("POST", "/api/items", json=item_fields(price_per_day=price))
        _refused(status, body, 400, "input.not_integer")
        assert body["error"]["field"] == "price_per_day"
    assert await client.app[MARKET].db.fetchval("SELECT COUNT(*) FROM items") == 0
    item = await owner.new_item(price_per_day="1,000", deposit="30,000")
    assert (item["price_per_day"], item["deposit"]) == (1000, 30000)
    # the listing chat reads amounts by the same rule
    assert parse_won("1,0,0,0원") is None and parse_won("1만 5,000원") == 15000 and parse_won("1,000") == 1000


async def test_notifications_up_to_1_5_are_refused_not_read_up_to_1(client: TestClient) -> None:
    owner, borrower = await sign_up(client), await sign_up(client)
    item = await owner.new_item()
    status, body = await borrower.call("POST", "/api/contracts", json={"item_id": item["id"], "dates": "내일부터 2일"})
    assert status == 201, body
    status, body = await owner.call("GET", "/api/me/notifications")
    unread, first = body["unread"], min(n["id"] for n in body["notifications"])
    assert unread >= 1
    for upto in (first + 0.5, f"{first}.5", True):
        status, body = await owner.call("POST", "/api/me/notifications/read", json={"upto": upto})
        _refused(status, body, 400, "input.not_integer")
        assert body["error"]["field"] == "upto"
    status, body = await owner.call("GET", "/api/me/notifications")
    assert body["unread"] == unread


async def test_a_rental_for_minus_three_days_is_refused_in_rest_and_in_chat(client: TestClient,
                                                                          chatters: Any) -> None:
    assert read_dates("내일부터 -3일", seoul_today()) is None
    assert read_dates("-3일", seoul_today()) is None
    owner, borrower = await sign_up(client), await sign_up(client)
    item = await owner.new_item()
    status, body = await borrower.call("POST", "/api/contracts", json={"item_id": item["id"], "dates": "내일부터 -3일"})
    _refused(status, body, 400, "rental.bad_dates")
    status, body = await borrower.call("POST", f"/api/items/{item['id']}/room")
    room = body["room"]["id"]
    b = await chatters(borrower)
    await b.call("join", {"room": room})
    await b.call("message", {"room": room, "text": "/대여 내일부터 -3일"})
    for _ in range(300):  # the refusal comes to the borrower alone, as a notice
        notices = [n["message"] for n in b.received("notice", room)]
        if notices:
            break
        await asyncio.sleep(0.03)
    assert notices and notices[0].startswith("날짜를 알아듣지 못했어요"), notices
    assert await client.app[MARKET].db.fetchval("SELECT COUNT(*) FROM contracts") == 0
