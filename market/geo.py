"""Nearby items: nearest first within a radius, with filters and stable cursor paging.

The spatial index does the work: a bounding-box prefilter (MBRContains on the SPATIAL index) around a ring
that grows until it holds a full page, then exact ``ST_Distance_Sphere`` within the ring. A dense centre
reads a few hundred rows instead of the tens of thousands a 6 km box (or a full scan) would.
Everything here runs on items' public points (``market/public_place.py``), never their exact ones: whether an
item is within a radius, and how far it is, depends only on its cell.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from market import filters as f
from market import validation as v
from market.categories import Categories
from market.db import Database
from market.errors import InvalidInput

# ST_Distance_Sphere's default earth radius in MariaDB; one degree of latitude in metres.
EARTH_RADIUS_M = 6370986.0
M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0
PUBLIC_STATUSES = ("available", "reserved", "rented")
CONDITIONS = ("상", "중", "하")
FIRST_RING_M = 400.0


@dataclass(frozen=True, slots=True)
class NearbyQuery:
    lat: float
    lng: float
    radius_m: int = 6000
    category_id: int | None = None
    price_min: int | None = None
    price_max: int | None = None
    deposit_min: int | None = None
    deposit_max: int | None = None
    conditions: tuple[str, ...] | None = None
    available_from: date | None = None
    available_until: date | None = None
    statuses: tuple[str, ...] = PUBLIC_STATUSES
    limit: int = 20
    after: tuple[int, int] | None = None  # (distance_mm, id) of the last item of the previous page

    @classmethod
    def parse(cls, data: Mapping[str, Any], *, default_radius_m: int = 6000,
              max_radius_m: int = 50_000) -> NearbyQuery:
        """Read a query from untrusted input (a query string or a chat command's arguments)."""
        lat_lng = v.coordinates(data)
        assert lat_lng is not None
        radius = v.integer(data, "radius_m", lo=100, hi=max_radius_m, required=False, default=default_radius_m)
        filters = read_filters(data)
        limit = v.integer(data, "limit", lo=1, hi=50, required=False, default=20)
        return cls(lat=lat_lng[0], lng=lat_lng[1], radius_m=radius or default_radius_m, **filters,
                   limit=limit or 20, after=decode_cursor(data.get("cursor")))


def read_filters(data: Mapping[str, Any]) -> dict[str, Any]:
    """The filters nearby and keyword search share, read from untrusted input (keyword arguments of both
    query types): category, price and deposit ranges, conditions, statuses, availability dates."""
    category = v.integer(data, "category", lo=1, hi=2**31, required=False)
    price_min = v.integer(data, "price_min", lo=0, hi=10_000_000, required=False, money=True)
    price_max = v.integer(data, "price_max", lo=0, hi=10_000_000, required=False, money=True)
    deposit_min = v.integer(data, "deposit_min", lo=0, hi=100_000_000, required=False, money=True)
    deposit_max = v.integer(data, "deposit_max", lo=0, hi=100_000_000, required=False, money=True)
    if price_min is not None and price_max is not None and price_min > price_max:
        raise InvalidInput("input.range_order", field="price_per_day")
    if deposit_min is not None and deposit_max is not None and deposit_min > deposit_max:
        raise InvalidInput("input.range_order", field="deposit")
    conditions = v.choices(data, "condition", CONDITIONS)
    statuses = v.choices(data, "status", PUBLIC_STATUSES)
    start = v.day(data, "available_from", required=False)
    end = v.day(data, "available_until", required=False)
    if start and end and end < start:
        raise InvalidInput("input.date_order", field="available_until")
    return {"category_id": category, "price_min": price_min, "price_max": price_max, "deposit_min": deposit_min,
            "deposit_max": deposit_max, "conditions": tuple(conditions) if conditions else None,
            "available_from": start, "available_until": end,
            "statuses": tuple(statuses) if statuses else PUBLIC_STATUSES}


@dataclass(frozen=True, slots=True)
class Hit:
    item_id: int
    distance_mm: int  # to the public point, in whole millimetres: exact to compare, so paging never repeats or skips

    @property
    def distance_m(self) -> float:
        return self.distance_mm / 1000


@dataclass(frozen=True, slots=True)
class NearbyPage:
    hits: list[Hit]
    next_cursor: str | None
    rows: list[dict[str, Any]] | None = None  # with ``columns``: the page's rows, read in the same query


def encode_cursor(distance_mm: int, item_id: int) -> str:
    raw = json.dumps([distance_mm, item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: object) -> tuple[int, int] | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > 200:
        raise InvalidInput("input.bad_cursor", field="cursor")
    try:
        distance, item_id = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise InvalidInput("input.bad_cursor", field="cursor") from None
    if (not isinstance(distance, int) or isinstance(distance, bool) or not isinstance(item_id, int)
            or isinstance(item_id, bool) or not 0 <= distance < 10**10 or not 0 <= item_id < 2**63):
        raise InvalidInput("input.bad_cursor", field="cursor")
    return distance, item_id


def bounding_box(lat: float, lng: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lng, min_lat, max_lng, max_lat) of a box that contains the circle of ``radius_m``."""
    dlat = radius_m / M_PER_DEG * 1.001
    widest = min(89.0, max(abs(lat - dlat), abs(lat + dlat)))
    dlng = radius_m / (M_PER_DEG * math.cos(math.radians(widest))) * 1.001
    return lng - dlng, lat - dlat, lng + dlng, lat + dlat


def filters_for(q: NearbyQuery, categories: Categories | None) -> f.Cond:
    """The non-geographic conditions of a query, on table alias ``i``."""
    conds = [f.is_in("i.status", list(q.statuses))]
    if q.category_id is not None:
        if categories is None:
            raise ValueError("category filter needs the category tree")
        level = categories.get(q.category_id).level
        conds.append(f.eq(f"i.cat{level}_id", q.category_id))
    conds += [
        f.optional(f.ge, "i.price_per_day", q.price_min),
        f.optional(f.le, "i.price_per_day", q.price_max),
        f.optional(f.ge, "i.deposit", q.deposit_min),
        f.optional(f.le, "i.deposit", q.deposit_max),
    ]
    if q.conditions:
        conds.append(f.is_in("i.item_condition", list(q.conditions)))
    if q.available_from or q.available_until:
        start = q.available_from or q.available_until
        end = q.available_until or q.available_from
        conds.append(f.le("i.available_from", start))
        conds.append(f.Cond("i.available_until IS NULL OR i.available_until >= %s", (end,)))
    return f.all_of(conds)


async def nearby(db: Database, q: NearbyQuery, categories: Categories | None = None, *,
                 columns: str | None = None) -> NearbyPage:
    """The next page of items nearest to (lat, lng) within ``radius_m``, ordered by (distance, id); with
    ``columns`` (of items alias ``i``) the page's rows are read in the same query (one round trip for a page
    of cards)."""
    extra = filters_for(q, categories)
    want = q.limit + 1  # one more than a page tells whether another page exists
    floor = q.after[0] / 1000 if q.after else 0.0
    ring = min(float(q.radius_m), floor + FIRST_RING_M)
    while True:
        hits, rows = await _ring(db, q, extra, ring, want, columns)
        if len(hits) >= want or ring >= q.radius_m:
            break
        # Grow the ring by the area the missing hits need at the density seen so far (at least double).
        seen = max(len(hits), 1)
        grow = max(2.0, math.sqrt(want / seen) * 1.3)
        ring = min(float(q.radius_m), floor + (ring - floor) * grow)
    page, more = hits[: q.limit], len(hits) > q.limit
    cursor = encode_cursor(page[-1].distance_mm, page[-1].item_id) if more and page else None
    return NearbyPage(page, cursor, None if columns is None else rows[: q.limit])


async def _ring(db: Database, q: NearbyQuery, extra: f.Cond, ring_m: float, want: int,
                columns: str | None = None) -> tuple[list[Hit], list[dict[str, Any]]]:
    min_lng, min_lat, max_lng, max_lat = bounding_box(q.lat, q.lng, ring_m)
    cond = f.Cond(
        "MBRContains(ST_Envelope(LINESTRING(POINT(%s, %s), POINT(%s, %s))), i.public_location)",
        (min_lng, min_lat, max_lng, max_lat),
    ) & extra
    having = "distance_mm <= %s"
    args: tuple[Any, ...] = (int(ring_m * 1000),)
    if q.after:
        having += " AND (distance_mm > %s OR (distance_mm = %s AND i.id > %s))"
        args += (q.after[0], q.after[0], q.after[1])
    where_sql, where_args = f.where(cond)
    sql = (
        "SELECT i.id, CAST(ROUND(ST_Distance_Sphere(i.public_location, POINT(%s, %s)) * 1000) AS INTEGER)"
        " AS distance_mm"
        # FORCE INDEX: the ring is small by design, so the R-tree is always the right path; it also keeps
        # the optimizer from probing another index first, which trips MariaDB's MDEV-26123 (error 1207).
        f" FROM items i FORCE INDEX (sx_items_public_location) {where_sql} HAVING {having}"
        " ORDER BY distance_mm, i.id LIMIT %s")
    if columns is not None:  # the hits' rows too, joined to the few hits (not computed for the whole ring)
        sql = (f"SELECT STRAIGHT_JOIN h.distance_mm, {columns} FROM ({sql}) h"
               " JOIN items i FORCE INDEX (PRIMARY) ON i.id = h.id ORDER BY h.distance_mm, i.id")
    rows = await db.fetchall(sql, (q.lng, q.lat, *where_args, *args, want))
    return [Hit(int(r["id"]), int(r["distance_mm"])) for r in rows], rows
