"""A person's own 동네: its name and a point near its middle, for "near me" and searches. Never an exact
position: a browser's location is kept as its 동 and a point rounded to about 100 m."""

from __future__ import annotations

from dataclasses import dataclass

from market.db import Database


@dataclass(frozen=True, slots=True)
class Home:
    name: str  # "역삼동" (or "" when a shared location lies in no 동)
    lat: float
    lng: float


async def home_of(db: Database, user_id: int) -> Home | None:
    row = await db.fetchone("SELECT home_place, home_lat, home_lng FROM users WHERE id = %s", (user_id,))
    if row is None or row["home_lat"] is None:
        return None
    return Home(row["home_place"] or "", float(row["home_lat"]), float(row["home_lng"]))


async def set_home(db: Database, user_id: int, name: str, lat: float, lng: float) -> Home:
    home = Home(name[:40], round(lat, 3), round(lng, 3))
    await db.execute("UPDATE users SET home_place = %s, home_lat = %s, home_lng = %s WHERE id = %s",
                     (home.name, home.lat, home.lng, user_id))
    return home
