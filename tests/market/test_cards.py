"""A list's card (nearby, search, wishes) says what the item's own page says about the same facts, whatever the
item holds: times with and without milliseconds, open-ended dates, words JSON has to escape."""

from __future__ import annotations

from typing import Any

from market.items import card_columns
from market.public_place import snap
from market.search import SearchQuery
from market.service import Market


async def _items(market: Market) -> list[int]:
    async with market.db.transaction() as cur:
        await cur.execute("INSERT INTO users (email, nickname) VALUES ('cards@example.com', '카드')")
        owner = int(cur.lastrowid)
        ids = []
        for k, (title, created, until) in enumerate([
                ('텐트 "대형" \\ 4인용', "2026-03-01 09:10:11.000", None),
                ("의자\t캠핑 🏕️", "2026-03-02 23:59:59.123", "2026-12-31"),
                ("렌즈", "2026-03-03 00:00:00.500", "2026-04-01")]):
            lat, lng = 37.5 + k / 1000, 127.03 + k / 1000
            plat, plng = snap(lat, lng)
            await cur.execute(
                "INSERT INTO items (owner_id, title, description, category_id, cat1_id, cat2_id, cat3_id,"
                " price_per_day, deposit, item_condition, location, public_location, place_name, available_from,"
                " available_until, created_at, wish_count)"
                " VALUES (%s, %s, '설명', 7, 1, 2, 7, 12000, 50000, '중', ST_GeomFromText(%s, 4326),"
                " ST_GeomFromText(%s, 4326), '강남역 앞', '2026-03-01', %s, %s, %s)",
                (owner, title, f"POINT({lng:.7f} {lat:.7f})", f"POINT({plng:.7f} {plat:.7f})", until, created, k))
            ids.append(int(cur.lastrowid))
    return ids


async def test_a_list_card_says_what_the_item_page_says(market: Market) -> None:
    ids = await _items(market)
    cards = await market.items.cards_by_ids(list(reversed(ids)), owner_ratings=True)
    assert [c["id"] for c in cards] == list(reversed(ids))
    near = await market.nearby({"lat": "37.5", "lng": "127.03", "radius_m": "2000"}, owner_ratings=True)
    assert sorted(c["id"] for c in near["items"]) == sorted(ids)
    # A search near a point reads its page's cards with its postings: the same cards.
    await market.indexer.index_items(ids)
    found = []
    for word in ("텐트", "의자", "렌즈"):
        page = await market.search({"q": word, "lat": "37.5", "lng": "127.03", "radius_m": "2000"}, owner_ratings=True)
        found += page["items"]
    assert {c["id"] for c in found} == set(ids)  # (each word's page filled up with the others: like its hit)
    if market.search_backend.name == "embedded":  # its statement brought the text match's row (no read of its own)
        q = SearchQuery.parse({"q": "텐트", "lat": "37.5", "lng": "127.03", "radius_m": "2000"})
        page = await market.search_backend.search(q, columns=card_columns(True))
        assert page.hits[0].item_id == ids[0] and page.rows is not None and set(page.rows) == {ids[0]}
    for card in [*cards, *near["items"], *found]:
        page: dict[str, Any] = await market.items.detail(card["id"], count_view=False)
        shown = {k: v for k, v in card.items() if k not in ("distance_m", "owner_rating")}
        assert shown == {k: page[k] for k in shown}
        assert card["owner_rating"] == await market.reviews.rating(card["owner_id"])
    assert {c["created_at"] for c in cards} == {"2026-03-01T09:10:11", "2026-03-02T23:59:59.123000",
                                                "2026-03-03T00:00:00.500000"}
