"""The map cells the embedded backend files postings under, and the distance it computes in SQL.
Pure functions: no database.
"""

from __future__ import annotations

import functools
import math

# The map cells postings are filed under: CELL_DEG by CELL_DEG (~550 m north–south, ~440 m east–west in Korea),
# numbered west to east along a row, row after row, so the cells a circle covers are one key range per row.
CELL_DEG = 0.005
CELL_ROWS, CELL_COLS = 36_000, 72_000
EARTH_RADIUS_M = 6_370_986.0  # the sphere of MariaDB's ST_Distance_Sphere


def _row(lat: float) -> int:
    return min(max(math.floor((lat + 90.0) / CELL_DEG), 0), CELL_ROWS - 1)


def _col(lng: float) -> int:
    return min(max(math.floor((lng + 180.0) / CELL_DEG), 0), CELL_COLS - 1)


def cell_of(lat: float, lng: float) -> int:
    return _row(lat) * CELL_COLS + _col(lng)


def cell_ranges(lat: float, lng: float, radius_m: float) -> list[tuple[int, int]]:
    """The cells holding every point within ``radius_m`` of (lat, lng): one (first, last) cell range per row.

    Per row, the widest longitude span the circle can reach there comes from the haversine formula at the row's
    latitude nearest the centre; a metre of margin covers rounding and the distance formula (see ``_distance_sql``)."""
    return list(_cell_ranges(lat, lng, radius_m))


def cells_sql(alias: str, lat: float, lng: float, radius_m: float) -> str:
    """The condition that ``alias``.cell is in ``cell_ranges``: ranges of whole numbers we computed, written into
    the statement (a circle of 6 km is two dozen ranges: as values they were escaped for every statement). Searches
    start from a few places again and again (a 동's centre, a person's 동네): the text of the last few hundred
    circles up to CELLS_KEPT_RADIUS_M is kept."""
    if radius_m > CELLS_KEPT_RADIUS_M:
        return _cells_text(alias, lat, lng, radius_m)
    return _kept_cells_text(alias, lat, lng, radius_m)


# Circles whose statement text is kept: at most CELLS_KEPT, of at most CELLS_KEPT_RADIUS_M. The text grows with the
# radius (6 km: ~1,000 characters; 10 km: ~1,600; 50 km: ~7,900) and a GPS point seldom comes twice: 4,096 circles
# of 50 km, their text and ranges both kept, held ~129 MiB; 512 of 10 km, text only, hold ~0.9 MiB. A wider circle's
# text is written each time (~0.7 ms at 50 km, beside a statement that reads that circle's postings).
CELLS_KEPT = 512
CELLS_KEPT_RADIUS_M = 10_000


def _cells_text(alias: str, lat: float, lng: float, radius_m: float) -> str:
    return " OR ".join(f"{alias}.cell BETWEEN {first:d} AND {last:d}"
                       for first, last in _cell_ranges(lat, lng, radius_m))


_kept_cells_text = functools.lru_cache(maxsize=CELLS_KEPT)(_cells_text)


def _cell_ranges(lat: float, lng: float, radius_m: float) -> tuple[tuple[int, int], ...]:
    r = (radius_m + 1.0) / EARTH_RADIUS_M
    dlat = math.degrees(r)
    hav_r = math.sin(r / 2) ** 2
    cos_centre = math.cos(math.radians(lat))
    out = []
    for row in range(_row(lat - dlat), _row(lat + dlat) + 1):
        south, north = row * CELL_DEG - 90.0, (row + 1) * CELL_DEG - 90.0
        nearest = min(max(lat, south), north)
        hav_dlat = math.sin(math.radians(nearest - lat) / 2) ** 2
        cos_row = min(math.cos(math.radians(south)), math.cos(math.radians(north)))
        room = (hav_r - hav_dlat) / max(cos_centre * cos_row, 1e-12)
        if room < 0:
            continue
        if room >= 1:
            first, last = 0, CELL_COLS - 1
        else:
            dlng = math.degrees(2 * math.asin(math.sqrt(room)))
            first, last = _col(lng - dlng), _col(lng + dlng)
        out.append((row * CELL_COLS + first, row * CELL_COLS + last))
    return tuple(out)


def _distance_sql(alias: str) -> str:
    """Metres from (%s lat, %s lat, %s lng) to ``alias``.lat/lng on ST_Distance_Sphere's sphere, by the
    equirectangular formula at the mean latitude: within 0.3 m of the great-circle distance up to 50 km (the
    largest radius), and fewer functions per row than the haversine formula."""
    return (f"{EARTH_RADIUS_M:.1f} * RADIANS(SQRT(POW({alias}.lat - %s, 2)"
            f" + POW(COS(RADIANS(({alias}.lat + %s) / 2)) * ({alias}.lng - %s), 2)))")
