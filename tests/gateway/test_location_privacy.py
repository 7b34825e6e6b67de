"""Location privacy: anyone but an item's owner learns only its ~250 m cell and 동 — from its page, search and
nearby results, bot cards, and from any number of radius searches — while the owner keeps the exact point."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.keys import MARKET
from market.migrate import MIGRATIONS_DIR, split_statements
from tests.bot.test_bot_chat import _ask_bot, _assistant_room
from tests.conftest import Person, sign_up

LAT_STEP, LNG_STEP = 0.00225, 0.0028  # the promised grid: ~250 m cells
# One grid cell in 성수동2가: its south-west corner, and two exact points in opposite corners of it (~290 m apart).
SOUTH, WEST = math.floor(37.5446 / LAT_STEP) * LAT_STEP, math.floor(127.0559 / LNG_STEP) * LNG_STEP
CENTRE = (round(SOUTH + LAT_STEP / 2, 6), round(WEST + LNG_STEP / 2, 6))
CORNER_A = (round(SOUTH + 0.0002, 7), round(WEST + 0.0002, 7))
CORNER_B = (round(SOUTH + LAT_STEP - 0.0002, 7), round(WEST + LNG_STEP - 0.0002, 7))
DONG = "성수동2가"
EARTH_RADIUS_M = 6370986.0  # ST_Distance_Sphere's sphere


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance on ST_Distance_Sphere's sphere (haversine)."""
    (lat1, lng1), (lat2, lng2) = (tuple(map(math.radians, p)) for p in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


async def _two_items_in_one_cell(client: TestClient) -> tuple[Person, dict[str, Any], dict[str, Any]]:
    owner = await sign_up(client)
    a = await owner.new_item(title="캠핑의자 하나", lat=CORNER_A[0], lng=CORNER_A[1], place_name="")
    b = await owner.new_item(title="캠핑의자 둘", lat=CORNER_B[0], lng=CORNER_B[1], place_name="")
    return owner, a, b


def _without_exact_points(body: Any) -> None:
    text = json.dumps(body)
    for lat, lng in (CORNER_A, CORNER_B):
        assert f"{lat:.4f}" not in text and f"{lng:.4f}" not in text, text


async def test_an_items_page_shows_others_its_cell_and_dong_and_its_owner_the_exact_point(client: TestClient) -> None:
    owner, a, _ = await _two_items_in_one_cell(client)
    stranger = await sign_up(client)
    status, mine = await owner.call("GET", f"/api/items/{a['id']}")
    assert status == 200
    assert (mine["item"]["lat"], mine["item"]["lng"]) == CORNER_A and mine["item"]["dong"] == DONG
    status, listed = await owner.call("GET", "/api/me/items")
    assert next(i for i in listed["items"] if i["id"] == a["id"])["lng"] == CORNER_A[1]
    status, theirs = await stranger.call("GET", f"/api/items/{a['id']}")
    async with client.get(f"/api/items/{a['id']}") as r:
        anonymous = await r.json()
    for body in (theirs, anonymous):
        assert (body["item"]["lat"], body["item"]["lng"]) == CENTRE and body["item"]["dong"] == DONG
        _without_exact_points(body)
    async with client.get(f"/items/{a['id']}") as r:  # the item's web page
        page = await r.text()
    assert DONG in page and f"{CORNER_A[0]:.4f}" not in page


async def test_search_and_nearby_results_carry_the_cell_not_the_point(client: TestClient) -> None:
    _, a, b = await _two_items_in_one_cell(client)
    stranger = await sign_up(client)
    here = (CENTRE[0] + 0.004, CENTRE[1] - 0.003)  # ~540 m away
    status, near = await stranger.call("GET", f"/api/items/nearby?lat={here[0]}&lng={here[1]}&radius_m=3000")
    assert status == 200
    for _ in range(100):  # the gateway's indexer catches up on its own
        async with client.get("/api/search", params={"q": "캠핑의자", "lat": str(here[0]), "lng": str(here[1])}) as r:
            found = await r.json()
        if len(found["items"]) == 2:
            break
        await asyncio.sleep(0.05)
    for body in (near, found):
        cards = {c["id"]: c for c in body["items"]}
        seen = [{k: cards[i["id"]][k] for k in ("lat", "lng", "dong", "distance_m")} for i in (a, b)]
        want = {"lat": CENTRE[0], "lng": CENTRE[1], "dong": DONG,
                "distance_m": max(100, round(_metres(here, CENTRE), -2))}
        assert seen == [want, want], body
        _without_exact_points(body)


async def test_radius_searches_from_three_places_see_an_item_exactly_when_its_cell_centre_is_within(
        client: TestClient) -> None:
    _, a, b = await _two_items_in_one_cell(client)
    stranger = await sign_up(client)
    # Three people triangulating: north-east, south and west of the cell, a few hundred metres out.
    for here in ((CENTRE[0] + 0.003, CENTRE[1] + 0.004), (CENTRE[0] - 0.004, CENTRE[1] + 0.0005),
                 (CENTRE[0] + 0.0008, CENTRE[1] - 0.005)):
        to_centre = _metres(here, CENTRE)
        # Radii that would split the two corners if searches ran on exact points, and radii just either side
        # of the cell centre's distance: the answer changes only there, the same for both items.
        radii = {round((_metres(here, corner) + to_centre) / 2) for corner in (CORNER_A, CORNER_B)}
        radii |= {round(to_centre) - 15, round(to_centre) + 15}
        for radius in sorted(r for r in radii if abs(r - to_centre) > 5):
            status, body = await stranger.call(
                "GET", f"/api/items/nearby?lat={here[0]}&lng={here[1]}&radius_m={radius}&limit=50")
            assert status == 200
            seen = {c["id"] for c in body["items"]} & {a["id"], b["id"]}
            assert seen == ({a["id"], b["id"]} if to_centre <= radius else set()), (here, radius, to_centre)


async def test_bot_cards_show_the_distance_to_the_cell_and_its_dong(client: TestClient, chatters: Any) -> None:
    _, a, b = await _two_items_in_one_cell(client)
    borrower = await sign_up(client)
    chatter = await chatters(borrower)
    room = await _assistant_room(borrower)
    assert (await chatter.call("join", {"room": room}))["ok"]
    here = (CENTRE[0] - 0.003, CENTRE[1] + 0.002)
    reply = await _ask_bot(chatter, room, f"/주변 {here[0]:.5f},{here[1]:.5f} 2km")
    cards = {c["item_id"]: c for c in reply["cards"]}
    distance = round(_metres((round(here[0], 5), round(here[1], 5)), CENTRE), -2)
    for item in (a, b):
        card = cards[item["id"]]
        assert card["subtitle"] == DONG
        assert ["거리", f"{distance:.0f}m"] in card["fields"], card


async def test_moving_an_item_moves_its_public_place(client: TestClient) -> None:
    owner, a, _ = await _two_items_in_one_cell(client)
    status, moved = await owner.call("PATCH", f"/api/items/{a['id']}", json={"lat": 37.5012345, "lng": 127.0398765})
    assert status == 200
    assert abs(moved["item"]["lat"] - 37.5012345) < 2e-6 and abs(moved["item"]["lng"] - 127.0398765) < 2e-6
    async with client.get(f"/api/items/{a['id']}") as r:
        seen = (await r.json())["item"]
    assert (seen["lat"], seen["lng"], seen["dong"]) == (37.501875, 127.0402, "역삼동")


async def test_an_item_listed_before_dong_names_were_kept_gets_its_dong_when_first_read(client: TestClient) -> None:
    _, a, _ = await _two_items_in_one_cell(client)
    db = client.server.app[MARKET].db
    await db.execute("UPDATE items SET dong = NULL WHERE id = %s", (a["id"],))
    async with client.get("/api/items/nearby", params={"lat": str(CENTRE[0]), "lng": str(CENTRE[1])}) as r:
        cards = {c["id"]: c for c in (await r.json())["items"]}
    assert cards[a["id"]]["dong"] == DONG
    assert await db.fetchval("SELECT dong FROM items WHERE id = %s", (a["id"],)) == DONG


async def test_the_migrations_backfill_puts_every_point_in_the_cell_listing_does(client: TestClient) -> None:
    owner = await sign_up(client)
    db = client.server.app[MARKET].db
    points = [CORNER_A, CORNER_B, (33.2497, 126.5602), (38.1234567, 128.5919), (35.1796, 129.0756)]
    for lat, lng in points:
        await owner.new_item(lat=lat, lng=lng)
    listed = await db.fetchall("SELECT id, ST_Y(public_location) AS lat, ST_X(public_location) AS lng"
                                      " FROM items ORDER BY id")
    backfill = next(s for s in split_statements((MIGRATIONS_DIR / "0025_public_place.sql").read_text())
                    if s.startswith("UPDATE items"))
    await db.execute(backfill)
    again = await db.fetchall("SELECT id, ST_Y(public_location) AS lat, ST_X(public_location) AS lng"
                                     " FROM items ORDER BY id")
    assert len(again) == len(points)
    for before, after in zip(listed, again, strict=True):
        assert abs(before["lat"] - after["lat"]) < 1e-9 and abs(before["lng"] - after["lng"]) < 1e-9
