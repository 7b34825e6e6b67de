"""Nearby search: exactly the seed query's answer on items' public points (nearest first within the radius),
found through the spatial index, with filters and cursor paging that never repeats or skips an item."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest

from market.errors import InvalidInput
from market.geo import NearbyQuery, bounding_box, decode_cursor, encode_cursor, nearby
from market.public_place import snap
from market.service import Market

LEAVES = [7, 8, 42, 43]  # 캠핑의자, 캠핑테이블 (캠핑가구) and DSLR/미러리스, 렌즈 (카메라)


async def _owner(market: Market) -> int:
    async with market.db.transaction() as cur:
        await cur.execute("INSERT INTO users (email, nickname) VALUES ('geo@example.com', '지오')")
        return int(cur.lastrowid)


async def _bulk_items(market: Market, points: list[tuple[float, float]], seed: int = 7) -> None:
    rng = random.Random(seed)
    owner = await _owner(market)
    paths = {leaf: [c.id for c in market.categories.path(leaf)] for leaf in LEAVES}
    rows: list[Any] = []
    for lat, lng in points:
        leaf = rng.choice(LEAVES)
        start = date(2026, 1, 1) + timedelta(days=rng.randint(0, 300))
        public_lat, public_lng = snap(lat, lng)
        rows.append((owner, "물건", "설명", leaf, *paths[leaf], rng.randrange(1000, 50001, 1000),
                     rng.randrange(0, 200001, 10000), rng.choice("상중하"), f"POINT({lng:.7f} {lat:.7f})",
                     f"POINT({public_lng:.7f} {public_lat:.7f})", start,
                     start + timedelta(days=rng.randint(10, 200)) if rng.random() < 0.7 else None,
                     rng.choice(["available", "available", "reserved", "rented", "hidden"])))
    one = ("(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, ST_GeomFromText(%s, 4326), ST_GeomFromText(%s, 4326),"
           " %s, %s, %s)")
    async with market.db.transaction() as cur:
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            await cur.execute(
                "INSERT INTO items (owner_id, title, description, category_id, cat1_id, cat2_id, cat3_id,"
                " price_per_day, deposit, item_condition, location, public_location, available_from,"
                " available_until, status)"
                " VALUES " + ", ".join([one] * len(chunk)), tuple(v for row in chunk for v in row))


def _cluster(rng: random.Random, n: int, lat: float, lng: float, spread: float) -> list[tuple[float, float]]:
    return [(lat + rng.gauss(0, spread), lng + rng.gauss(0, spread * 1.25)) for _ in range(n)]


async def _seed_answer(market: Market, lat: float, lng: float, radius: int, extra_sql: str = "",
                       args: tuple[Any, ...] = ()) -> list[int]:
    """The seed system's full-scan query on public points, in whole millimetres and then by id (items share cell
    centres, and a centre on a cell line is as far from the cells on both sides), written independently of
    market.geo."""
    rows = await market.db.fetchall(
        "SELECT id, ST_Distance_Sphere(POINT(%s, %s), public_location) AS d FROM items"
        " WHERE ST_Distance_Sphere(POINT(%s, %s), public_location) <= %s"
        " AND status IN ('available','reserved','rented')"
        f" {extra_sql} ORDER BY ROUND(d * 1000), id", (lng, lat, lng, lat, radius, *args))
    return [r["id"] for r in rows]


async def _all_pages(market: Market, **params: Any) -> list[int]:
    ids: list[int] = []
    cursor = None
    for _ in range(500):
        q = NearbyQuery.parse({**params, **({"cursor": cursor} if cursor else {})})
        page = await nearby(market.db, q, market.categories)
        assert len(page.hits) <= q.limit
        distances = [h.distance_mm for h in page.hits]
        assert distances == sorted(distances)
        ids += [h.item_id for h in page.hits]
        cursor = page.next_cursor
        if cursor is None:
            return ids
    raise AssertionError("paging did not end")


@pytest.fixture
async def neighbourhood(market: Market) -> Market:
    rng = random.Random(42)
    points = _cluster(rng, 1500, 37.4979, 127.0276, 0.01)  # dense around Gangnam
    points += _cluster(rng, 300, 37.55, 126.95, 0.05)  # looser over Seoul
    points += [(rng.uniform(34.5, 38.0), rng.uniform(126.5, 129.3)) for _ in range(200)]  # the rest of Korea
    await _bulk_items(market, points)
    return market


@pytest.mark.parametrize("centre,radius", [((37.4979, 127.0276), 6000), ((37.4979, 127.0276), 700),
                                           ((37.55, 126.95), 3000), ((35.1796, 129.0756), 6000),
                                           ((36.0, 128.0), 50000)])
async def test_all_pages_together_equal_the_seed_full_scan(neighbourhood: Market, centre: tuple[float, float],
                                                           radius: int) -> None:
    lat, lng = centre
    got = await _all_pages(neighbourhood, lat=lat, lng=lng, radius_m=radius, limit=20)
    assert got == await _seed_answer(neighbourhood, lat, lng, radius)
    assert len(got) == len(set(got))


async def test_the_first_page_is_the_twenty_nearest(neighbourhood: Market) -> None:
    page = await nearby(neighbourhood.db, NearbyQuery(lat=37.4979, lng=127.0276), neighbourhood.categories)
    seed = await _seed_answer(neighbourhood, 37.4979, 127.0276, 6000)
    assert [h.item_id for h in page.hits] == seed[:20]
    assert page.next_cursor is not None


async def test_filters_combine_with_the_radius(neighbourhood: Market) -> None:
    # Also the regression test for MariaDB's MDEV-26123: before the ring query pinned the spatial index, the
    # first combination below made the optimizer probe another index first and the read failed (error 1207).
    m = neighbourhood
    lat, lng = 37.4979, 127.0276
    got = await _all_pages(m, lat=lat, lng=lng, category=6, price_min=5000, price_max=30000, deposit_max=100000,
                           condition="상,중", limit=7)  # category 6 = 캠핑가구 (a second-level category)
    want = await _seed_answer(m, lat, lng, 6000, "AND cat2_id = 6 AND price_per_day BETWEEN 5000 AND 30000"
                              " AND deposit <= 100000 AND item_condition IN ('상','중')")
    assert got == want and got
    got = await _all_pages(m, lat=lat, lng=lng, category=1, status="available")  # top level: 캠핑/레저
    want = await _seed_answer(m, lat, lng, 6000, "AND cat1_id = 1 AND status = 'available'")
    assert got == want and got
    got = await _all_pages(m, lat=lat, lng=lng, available_from="2026-06-01", available_until="2026-06-10")
    want = await _seed_answer(m, lat, lng, 6000, "AND available_from <= '2026-06-01'"
                              " AND (available_until IS NULL OR available_until >= '2026-06-10')")
    assert got == want and got


async def test_hidden_and_deleted_items_never_show(neighbourhood: Market) -> None:
    ids = await _all_pages(neighbourhood, lat=37.4979, lng=127.0276, radius_m=2000, limit=50)
    statuses = await neighbourhood.db.fetchall(
        f"SELECT DISTINCT status FROM items WHERE id IN ({', '.join(map(str, ids))})")
    assert {r["status"] for r in statuses} <= {"available", "reserved", "rented"}


async def test_the_query_uses_the_spatial_index(neighbourhood: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    # The plan of the statement nearby() really sends (not of a hand-written one, whose plan is the optimizer's
    # guess from statistics InnoDB refreshes in the background at the machine's speed).
    sent: list[tuple[str, tuple[Any, ...]]] = []
    fetchall = neighbourhood.db.fetchall

    async def spy(sql: str, args: Any = None) -> Any:
        sent.append((sql, args))
        return await fetchall(sql, args)

    monkeypatch.setattr(neighbourhood.db, "fetchall", spy)
    await nearby(neighbourhood.db, NearbyQuery(lat=37.4979, lng=127.0276, radius_m=400, statuses=("available",)),
                 neighbourhood.categories)
    monkeypatch.undo()
    assert sent
    for sql, args in sent:
        plan = await neighbourhood.db.fetchall("EXPLAIN " + sql, args)
        assert plan[0]["key"] == "sx_items_public_location" and plan[0]["type"] == "range", plan


def test_the_bounding_box_contains_the_circle() -> None:
    for lat in (33.2, 37.5, 38.6):
        min_lng, min_lat, max_lng, max_lat = bounding_box(lat, 127.0, 6000)
        assert (max_lat - min_lat) * 111_195 / 2 >= 6000
        import math
        assert (max_lng - min_lng) / 2 * 111_195 * math.cos(math.radians(max_lat)) >= 6000


def test_cursors_round_trip_and_forged_ones_are_refused() -> None:
    assert decode_cursor(encode_cursor(1234567, 42)) == (1234567, 42)
    for bad in ["garbage", "W10", encode_cursor(-1, 3), "eyJhIjoxfQ", "x" * 500, 12]:
        with pytest.raises(InvalidInput) as e:
            decode_cursor(bad)
        assert e.value.code == "input.bad_cursor"


@pytest.mark.parametrize("params,code,field", [
    ({"lng": 127.0}, "input.required", "lat"),
    ({"lat": "abc", "lng": 127.0}, "input.not_number", "lat"),
    ({"lat": 40.0, "lng": 127.0}, "input.outside_korea", "lat"),
    ({"lat": 37.5, "lng": 127.0, "radius_m": 10}, "input.number_range", "radius_m"),
    ({"lat": 37.5, "lng": 127.0, "radius_m": 10**9}, "input.number_range", "radius_m"),
    ({"lat": 37.5, "lng": 127.0, "price_min": 9000, "price_max": 1000}, "input.range_order", "price_per_day"),
    ({"lat": 37.5, "lng": 127.0, "condition": "최상"}, "input.choice", "condition"),
    ({"lat": 37.5, "lng": 127.0, "status": "deleted"}, "input.choice", "status"),
    ({"lat": 37.5, "lng": 127.0, "available_from": "2026-12-10", "available_until": "2026-12-01"},
     "input.date_order", "available_until"),
    ({"lat": 37.5, "lng": 127.0, "limit": 500}, "input.number_range", "limit"),
])
def test_bad_queries_name_the_problem(params: dict[str, Any], code: str, field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        NearbyQuery.parse(params)
    assert (e.value.code, e.value.field) == (code, field)


