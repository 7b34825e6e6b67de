"""Items for rent: listing, editing and deleting (owner only), photos, detail with view counts, cards.

Every rule about what an item may hold lives here, whichever door (REST, chat) the request came through.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import redis.asyncio as aioredis

from market import validation as v
from market.categories import Categories
from market.config import Config
from market.db import Database, Row
from market.errors import Conflict, Forbidden, InvalidInput, NotFound
from market.geo import CONDITIONS, Hit
from market.images import ProcessedImage
from market.people.reviews import OWNER_RATING_COLUMNS, person_rating
from market.public_place import dong_at, public_place, shown_distance
from market.search.indexer import enqueue
from market.storage import BlobStore, media_url
from market.uploads import Uploads

SEOUL = ZoneInfo("Asia/Seoul")
PRICE_RANGE = (100, 1_000_000)
DEPOSIT_RANGE = (0, 10_000_000)
MAX_LISTING_DAYS = 2 * 366
EDITABLE_STATUSES = ("available", "hidden")
_FIELDS = {"title", "description", "category_id", "price_per_day", "deposit", "condition", "lat", "lng",
           "place_name", "available_from", "available_until"}
_VIEW_DEDUPE_S = 3600

_CARD_COLUMNS = """i.id, i.owner_id, i.title, i.category_id, i.price_per_day, i.deposit, i.item_condition,
    ST_Y(i.location) AS lat, ST_X(i.location) AS lng, ST_Y(i.public_location) AS public_lat,
    ST_X(i.public_location) AS public_lng, i.place_name, i.dong, i.available_from, i.available_until, i.status,
    i.view_count, i.wish_count, i.created_at, i.updated_at,
    (SELECT p.thumb_key FROM item_photos p WHERE p.item_id = i.id ORDER BY p.position LIMIT 1) AS thumb_key"""


# A list's card row as one JSON value beside its id: the driver reads a page of cards as a few values instead of
# a few dozen typed columns each (reading them was most of a gateway's work for a page of cards). ``_card_row``
# turns it back into the row ``_CARD_COLUMNS`` reads. No item (an outer join's empty side): no card, not a card of
# nulls (a search reads its rows beside listings that need none).
_CARD_JSON = """i.id, IF(i.id IS NULL, NULL, JSON_OBJECT('owner_id', i.owner_id, 'title', i.title,
    'category_id', i.category_id, 'price_per_day', i.price_per_day, 'deposit', i.deposit,
    'item_condition', i.item_condition,
    'lat', ST_Y(i.location), 'lng', ST_X(i.location), 'public_lat', ST_Y(i.public_location),
    'public_lng', ST_X(i.public_location), 'place_name', i.place_name, 'dong', i.dong,
    'available_from', i.available_from, 'available_until', i.available_until, 'status', i.status,
    'view_count', i.view_count, 'wish_count', i.wish_count, 'created_at', i.created_at,
    'thumb_key', (SELECT p.thumb_key FROM item_photos p WHERE p.item_id = i.id ORDER BY p.position LIMIT 1)
    )) AS card"""


def card_columns(owner_ratings: bool = False) -> str:
    """The columns of a card row (items alias ``i``: its id and the card as JSON, for ``Items.cards_from_rows``);
    with ``owner_ratings`` the owner's rating too."""
    return f"{_CARD_JSON}, {OWNER_RATING_COLUMNS}" if owner_ratings else _CARD_JSON


def _card_row(row: Row) -> Row:
    """A row read with ``card_columns`` as the row ``_CARD_COLUMNS`` reads (dates and times as the driver
    gives them; JSON writes them as text)."""
    card = row.pop("card", None)
    if card is not None:
        row.update(orjson.loads(card))
        row["available_from"] = date.fromisoformat(row["available_from"])
        if row["available_until"] is not None:
            row["available_until"] = date.fromisoformat(row["available_until"])
        row["created_at"] = datetime.fromisoformat(row["created_at"])
    return row


def today() -> date:
    return datetime.now(SEOUL).date()


@dataclass(frozen=True, slots=True)
class ItemDraft:
    """A complete, validated set of an item's owner-editable fields."""

    title: str
    description: str
    category_id: int
    price_per_day: int
    deposit: int
    condition: str
    lat: float
    lng: float
    place_name: str
    available_from: date
    available_until: date | None

    @classmethod
    def parse(cls, data: dict[str, Any], categories: Categories, *, base: ItemDraft | None = None) -> ItemDraft:
        """Validate ``data`` alone (create) or as changes over ``base`` (edit)."""
        v.only_fields(data, _FIELDS)
        merged: dict[str, Any] = {} if base is None else base.as_input()
        if base is not None and not data:
            raise InvalidInput("input.nothing_to_change")
        merged.update(data)
        title = v.text(merged, "title", min_len=2, max_len=60)
        description = v.text(merged, "description", min_len=1, max_len=2000, multiline=True)
        category_id = v.integer(merged, "category_id", lo=1, hi=2**31)
        assert category_id is not None
        categories.leaf(category_id)
        price = v.integer(merged, "price_per_day", lo=PRICE_RANGE[0], hi=PRICE_RANGE[1], money=True)
        deposit = v.integer(merged, "deposit", lo=DEPOSIT_RANGE[0], hi=DEPOSIT_RANGE[1], money=True)
        condition = v.choice(merged, "condition", CONDITIONS)
        lat_lng = v.coordinates(merged)
        place = v.text(merged, "place_name", max_len=60, required=False, default="")
        start = v.day(merged, "available_from", required=False) or today()
        end = v.day(merged, "available_until", required=False)
        changed_start = base is None or "available_from" in data
        if changed_start and start < today():
            raise InvalidInput("input.number_range", field="available_from", min=today().isoformat(),
                               max=(today() + timedelta(days=MAX_LISTING_DAYS)).isoformat())
        if start > today() + timedelta(days=MAX_LISTING_DAYS):
            raise InvalidInput("input.number_range", field="available_from", min=today().isoformat(),
                               max=(today() + timedelta(days=MAX_LISTING_DAYS)).isoformat())
        if end is not None:
            if end < start:
                raise InvalidInput("input.date_order", field="available_until")
            if end > start + timedelta(days=MAX_LISTING_DAYS):
                raise InvalidInput("input.number_range", field="available_until", min=start.isoformat(),
                                   max=(start + timedelta(days=MAX_LISTING_DAYS)).isoformat())
        assert title and description and price is not None and deposit is not None and condition and lat_lng
        return cls(title, description, category_id, price, deposit, condition, lat_lng[0], lat_lng[1],
                   place or "", start, end)

    def as_input(self) -> dict[str, Any]:
        return {"title": self.title, "description": self.description, "category_id": self.category_id,
                "price_per_day": self.price_per_day, "deposit": self.deposit, "condition": self.condition,
                "lat": self.lat, "lng": self.lng, "place_name": self.place_name,
                "available_from": self.available_from, "available_until": self.available_until}


@dataclass(frozen=True, slots=True)
class Photo:
    id: int
    position: int
    key: str
    thumb_key: str
    width: int
    height: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "position": self.position, "url": media_url(self.key),
                "thumbnail": media_url(self.thumb_key), "width": self.width, "height": self.height}


class Items:
    """Listing, editing, deleting and showing items."""

    def __init__(self, db: Database, redis: aioredis.Redis, store: BlobStore, categories: Categories,
                 config: Config, uploads: Uploads) -> None:
        self._db = db
        self._redis = redis
        self._store = store
        self._categories = categories
        self._config = config
        self._uploads = uploads
        self.on_change: Callable[[], None] | None = None

    # -- writing -----------------------------------------------------------------------------------
    async def create(self, owner_id: int, data: dict[str, Any]) -> dict[str, Any]:
        draft = ItemDraft.parse(data, self._categories)
        c1, c2, c3 = (c.id for c in self._categories.leaf(draft.category_id))
        place = await public_place(draft.lat, draft.lng)
        async with self._db.transaction() as cur:
            await cur.execute(
                "INSERT INTO items (owner_id, title, description, category_id, cat1_id, cat2_id, cat3_id,"
                " price_per_day, deposit, item_condition, location, public_location, place_name, dong,"
                " available_from, available_until) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " ST_GeomFromText(%s, 4326), ST_GeomFromText(%s, 4326), %s, %s, %s, %s)",
                (owner_id, draft.title, draft.description, draft.category_id, c1, c2, c3, draft.price_per_day,
                 draft.deposit, draft.condition, _wkt(draft.lat, draft.lng), _wkt(place.lat, place.lng),
                 draft.place_name, place.dong, draft.available_from, draft.available_until),
            )
            item_id = int(cur.lastrowid)
            await enqueue(cur, item_id)
        self._changed()
        return await self.detail(item_id, viewer_id=owner_id, count_view=False)

    async def update(self, owner_id: int, item_id: int, data: dict[str, Any]) -> dict[str, Any]:
        data = dict(data)
        status = data.pop("status", None)
        if status is not None and status not in EDITABLE_STATUSES:
            raise InvalidInput("item.bad_status", field="status")
        async with self._db.transaction() as cur:
            row = await self._owned_for_update(cur, owner_id, item_id)
            if data or status is None:
                draft = ItemDraft.parse(data, self._categories, base=_draft_from_row(row))
            else:
                draft = _draft_from_row(row)
            if status is not None and row["status"] not in EDITABLE_STATUSES:
                # Reserved or rented items follow their rental; the owner cannot flip them by hand.
                raise Conflict("item.bad_status", field="status")
            c1, c2, c3 = (c.id for c in self._categories.leaf(draft.category_id))
            place = await public_place(draft.lat, draft.lng)  # sub-millisecond once the boundaries are loaded
            await cur.execute(
                "UPDATE items SET title = %s, description = %s, category_id = %s, cat1_id = %s, cat2_id = %s,"
                " cat3_id = %s, price_per_day = %s, deposit = %s, item_condition = %s,"
                " location = ST_GeomFromText(%s, 4326), public_location = ST_GeomFromText(%s, 4326),"
                " place_name = %s, dong = %s, available_from = %s, available_until = %s, status = %s WHERE id = %s",
                (draft.title, draft.description, draft.category_id, c1, c2, c3, draft.price_per_day,
                 draft.deposit, draft.condition, _wkt(draft.lat, draft.lng), _wkt(place.lat, place.lng),
                 draft.place_name, place.dong, draft.available_from, draft.available_until,
                 status or row["status"], item_id),
            )
            await enqueue(cur, item_id)
        self._changed()
        return await self.detail(item_id, viewer_id=owner_id, count_view=False)

    async def delete(self, owner_id: int, item_id: int) -> None:
        """Remove an item from the market. Rows stay (rentals will refer to them); it is never shown again."""
        async with self._db.transaction() as cur:
            row = await self._owned_for_update(cur, owner_id, item_id)
            if row["status"] not in EDITABLE_STATUSES:
                raise Conflict("item.bad_status", field="status")
            await cur.execute("UPDATE items SET status = 'deleted' WHERE id = %s", (item_id,))
            await enqueue(cur, item_id)
        self._changed()

    async def unlist_all(self, cur: Any, owner_id: int) -> list[int]:
        """In the caller's transaction, take every item of a person who leaves off the market (the rows stay: rentals
        and reviews name them); returns their ids. Call ``on_change`` after the commit."""
        await cur.execute("SELECT id FROM items WHERE owner_id = %s AND status <> 'deleted' FOR UPDATE", (owner_id,))
        ids = [int(r["id"]) for r in await cur.fetchall()]
        for item_id in ids:
            await cur.execute("UPDATE items SET status = 'deleted' WHERE id = %s", (item_id,))
            await enqueue(cur, item_id)
        return ids

    def _changed(self) -> None:
        """Tell this process's search indexer that the outbox has something (other processes poll)."""
        if self.on_change is not None:
            self.on_change()

    async def _owned_for_update(self, cur: Any, owner_id: int, item_id: int) -> Row:
        await cur.execute(
            "SELECT i.*, ST_Y(i.location) AS lat, ST_X(i.location) AS lng FROM items i"
            " WHERE i.id = %s AND i.status <> 'deleted' FOR UPDATE", (item_id,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound("item.not_found")
        if row["owner_id"] != owner_id:
            raise Forbidden("item.not_owner")
        return row  # type: ignore[no-any-return]

    # -- photos ------------------------------------------------------------------------------------
    async def add_photos(self, owner_id: int, item_id: int, uploads: list[bytes]) -> list[Photo]:
        """Check every upload first; then store them all or none."""
        if not uploads:
            raise InvalidInput("photo.none", field="photo")
        limit = self._config.max_photos_per_item
        if len(uploads) > limit:
            raise InvalidInput("photo.too_many", field="photo", max=limit)
        await self._owned(owner_id, item_id)
        images: list[ProcessedImage] = []
        for data in uploads:
            images.append(await self._uploads.process(data))
        keys: list[tuple[str, str]] = []
        try:
            for image in images:
                stem = f"items/{item_id}/{uuid.uuid4().hex}"
                keys.append((f"{stem}.jpg", f"{stem}_thumb.jpg"))
                await self._store.put(keys[-1][0], image.main, image.content_type)
                await self._store.put(keys[-1][1], image.thumb, image.content_type)
            async with self._db.transaction() as cur:
                row = await self._owned_for_update(cur, owner_id, item_id)
                await cur.execute("SELECT COUNT(*) AS n FROM item_photos WHERE item_id = %s", (row["id"],))
                have = (await cur.fetchone())["n"]
                if have + len(images) > limit:
                    raise InvalidInput("photo.too_many", field="photo", max=limit)
                for n, (image, (key, thumb)) in enumerate(zip(images, keys, strict=True)):
                    await cur.execute(
                        "INSERT INTO item_photos (item_id, position, object_key, thumb_key, content_type, width,"
                        " height, bytes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (item_id, have + n, key, thumb, image.content_type, image.width, image.height,
                         len(image.main)),
                    )
        except BaseException:
            for key, thumb in keys:
                await asyncio.shield(self._store.discard(key, thumb))
            raise
        return await self.photos(item_id)

    async def delete_photo(self, owner_id: int, item_id: int, photo_id: int) -> list[Photo]:
        async with self._db.transaction() as cur:
            await self._owned_for_update(cur, owner_id, item_id)
            await cur.execute("SELECT * FROM item_photos WHERE id = %s AND item_id = %s", (photo_id, item_id))
            photo = await cur.fetchone()
            if photo is None:
                raise NotFound("photo.not_found")
            await cur.execute("DELETE FROM item_photos WHERE id = %s", (photo_id,))
            await cur.execute("UPDATE item_photos SET position = position - 1 WHERE item_id = %s AND position > %s",
                              (item_id, photo["position"]))
        await self._store.discard(photo["object_key"], photo["thumb_key"])
        return await self.photos(item_id)

    async def reorder_photos(self, owner_id: int, item_id: int, order: Any) -> list[Photo]:
        """``order`` lists every photo id of the item once; the first becomes the main photo."""
        async with self._db.transaction() as cur:
            await self._owned_for_update(cur, owner_id, item_id)  # first: a stranger learns nothing of the rules
            if not isinstance(order, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in order):
                raise InvalidInput("photo.bad_order", field="order")
            await cur.execute("SELECT id FROM item_photos WHERE item_id = %s", (item_id,))
            have = {r["id"] for r in await cur.fetchall()}
            if len(order) != len(have) or set(order) != have:
                raise InvalidInput("photo.bad_order", field="order")
            for position, photo_id in enumerate(order):
                await cur.execute("UPDATE item_photos SET position = %s WHERE id = %s", (position, photo_id))
        return await self.photos(item_id)

    async def photos(self, item_id: int) -> list[Photo]:
        rows = await self._db.fetchall(
            "SELECT id, position, object_key, thumb_key, width, height FROM item_photos"
            " WHERE item_id = %s ORDER BY position", (item_id,))
        return [Photo(r["id"], r["position"], r["object_key"], r["thumb_key"], r["width"], r["height"])
                for r in rows]

    async def _owned(self, owner_id: int, item_id: int) -> Row:
        row = await self._db.fetchone("SELECT id, owner_id FROM items WHERE id = %s AND status <> 'deleted'",
                                      (item_id,))
        if row is None:
            raise NotFound("item.not_found")
        if row["owner_id"] != owner_id:
            raise Forbidden("item.not_owner")
        return row

    # -- reading -----------------------------------------------------------------------------------
    async def detail(self, item_id: int, *, viewer_id: int | None = None, viewer_key: str | None = None,
                     count_view: bool = True) -> dict[str, Any]:
        """Everything a person sees on an item's page. A view counts once an hour per viewer, never the owner's."""
        row = await self._db.fetchone(
            f"SELECT {_CARD_COLUMNS}, i.description, u.nickname AS owner_nickname,"
            " u.profile_photo_key AS owner_photo_key FROM items i JOIN users u ON u.id = i.owner_id"
            " WHERE i.id = %s AND i.status <> 'deleted'", (item_id,))
        if row is None:
            raise NotFound("item.not_found")
        is_owner = viewer_id is not None and viewer_id == row["owner_id"]
        if row["status"] == "hidden" and not is_owner:
            raise NotFound("item.not_found")
        if count_view and not is_owner:
            who = f"u{viewer_id}" if viewer_id is not None else (viewer_key or "anon")
            if await self._redis.set(f"billi:viewed:{item_id}:{who}", "1", ex=_VIEW_DEDUPE_S, nx=True):
                await self._db.execute("UPDATE items SET view_count = view_count + 1 WHERE id = %s", (item_id,))
                row["view_count"] += 1
        wished = False
        if viewer_id is not None:
            wished = await self._db.fetchone("SELECT 1 FROM wishes WHERE user_id = %s AND item_id = %s",
                                             (viewer_id, item_id)) is not None
        await self._fill_dongs([row])
        out = self._card(row, exact=is_owner)
        out.update({
            "description": row["description"],
            "photos": [p.to_dict() for p in await self.photos(item_id)],
            "owner": {"id": row["owner_id"], "nickname": row["owner_nickname"],
                      "profile_photo": media_url(row["owner_photo_key"]),
                      # Filled by the reviews feature; present now so clients can rely on the shape.
                      "rating": {"score": None, "count": 0}},
            "wished_by_me": wished,
            "is_mine": is_owner,
        })
        return out

    async def cards(self, hits: list[Hit], rows: list[Row] | None = None, *,
                    owner_ratings: bool = False) -> list[dict[str, Any]]:
        """Cards for nearby hits, in the hits' order, each with its distance (``rows``: their card rows, when the
        nearby query read them already)."""
        if rows is None:
            cards = await self.cards_by_ids([h.item_id for h in hits], owner_ratings=owner_ratings)
        else:
            cards = await self.cards_from_rows([h.item_id for h in hits], rows)
        distance = {h.item_id: h.distance_m for h in hits}
        for card in cards:
            card["distance_m"] = shown_distance(distance[card["id"]])
        return cards

    async def cards_by_ids(self, item_ids: list[int], *, owner_ratings: bool = False,
                           rows: Mapping[int, Row] | None = None) -> list[dict[str, Any]]:
        """Cards for the given items, in the given order (missing ones left out); with ``owner_ratings`` each
        also has its owner's rating (``owner_rating``), read in the same query. ``rows``: card rows read already
        (with the same ``card_columns``), by item; only the others are read."""
        if not item_ids:
            return []
        known = [rows[i] for i in item_ids if rows and i in rows]
        missing = [i for i in item_ids if not rows or i not in rows]
        if missing:
            known += await self._db.fetchall(
                f"SELECT {card_columns(owner_ratings)} FROM items i WHERE i.id IN ({', '.join(['%s'] * len(missing))})",
                tuple(missing))
        return await self.cards_from_rows(item_ids, known)

    async def cards_from_rows(self, item_ids: list[int], rows: list[Row]) -> list[dict[str, Any]]:
        """Cards from rows read with ``card_columns``, in the order of ``item_ids`` (missing ones left out)."""
        rows = [_card_row(r) for r in rows]
        await self._fill_dongs(rows)
        by_id = {r["id"]: r for r in rows}
        cards = []
        for i in item_ids:
            if (row := by_id.get(i)) is not None:
                card = self._card(row)
                if "owner_reviews" in row:
                    card["owner_rating"] = person_rating(row["owner_reviews"], row["owner_stars"])
                cards.append(card)
        return cards

    async def owned_by(self, owner_id: int) -> list[dict[str, Any]]:
        rows = await self._db.fetchall(
            f"SELECT {_CARD_COLUMNS} FROM items i WHERE i.owner_id = %s AND i.status <> 'deleted'"
            " ORDER BY i.id DESC", (owner_id,))
        await self._fill_dongs(rows)
        return [self._card(r, exact=True) for r in rows]

    async def _fill_dongs(self, rows: list[Row]) -> None:
        """Name the 동 of items listed before 동 names were kept (``dong`` NULL), once, when they are first read."""
        for row in rows:
            if row["dong"] is None:
                row["dong"] = await asyncio.to_thread(dong_at, float(row["public_lat"]), float(row["public_lng"]))
                await self._db.execute("UPDATE items SET dong = %s, updated_at = updated_at"
                                       " WHERE id = %s AND dong IS NULL", (row["dong"], row["id"]))

    def _card(self, row: Row, *, exact: bool = False) -> dict[str, Any]:
        """An item as shown in lists. Everyone but its owner gets its public place — the centre of its ~250 m
        cell and that cell's 동 (the exact meeting place is for the two people of a paid rental, in their deal
        room)."""
        path = self._categories.path(row["category_id"])
        lat, lng = (row["lat"], row["lng"]) if exact else (row["public_lat"], row["public_lng"])
        return {
            "id": row["id"], "owner_id": row["owner_id"], "title": row["title"],
            "category": {"id": row["category_id"], "path": [c.name for c in path]},
            "price_per_day": row["price_per_day"], "deposit": row["deposit"], "condition": row["item_condition"],
            "lat": round(float(lat), 6), "lng": round(float(lng), 6),
            "place_name": row["place_name"], "dong": row["dong"],
            "available_from": row["available_from"].isoformat(),
            "available_until": row["available_until"].isoformat() if row["available_until"] else None,
            "status": row["status"], "view_count": row["view_count"], "wish_count": row["wish_count"],
            "thumbnail": media_url(row["thumb_key"]), "created_at": row["created_at"].isoformat(),
        }


def _wkt(lat: float, lng: float) -> str:
    # MariaDB's SRID-4326 WKT is (x=lng y=lat); values are validated floats, formatted, never user text.
    return f"POINT({lng:.7f} {lat:.7f})"


def _draft_from_row(row: Row) -> ItemDraft:
    return ItemDraft(row["title"], row["description"], row["category_id"], row["price_per_day"], row["deposit"],
                     row["item_condition"], float(row["lat"]), float(row["lng"]), row["place_name"],
                     row["available_from"], row["available_until"])
