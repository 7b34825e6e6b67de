"""A search near a point reads its first page's cards and its ties' order in its own statement: the page and the
cards must be those read without it, whatever the ties, the words, the page or changes behind the index's back."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from market.items import card_columns
from market.public_place import snap
from market.search import EmbeddedSearch, SearchDoc, SearchQuery
from market.service import Market
from tests.conftest import GANGNAM

NEAR = {"lat": "37.5", "lng": "127.03", "radius_m": "2000"}
VOCAB = ["텐트", "의자", "캠핑", "랜턴", "테이블", "침낭"]


async def _items(market: Market, titles: list[str], places: list[tuple[float, float]],
                 created: list[str]) -> list[int]:
    async with market.db.transaction() as cur:
        await cur.execute("INSERT INTO users (email, nickname) VALUES ('rows@example.com', '행')")
        owner = int(cur.lastrowid)
        ids = []
        for title, (lat, lng), at in zip(titles, places, created, strict=True):
            plat, plng = snap(lat, lng)
            await cur.execute(
                "INSERT INTO items (owner_id, title, description, category_id, cat1_id, cat2_id, cat3_id,"
                " price_per_day, deposit, item_condition, location, public_location, place_name, available_from,"
                " available_until, created_at)"
                " VALUES (%s, %s, '설명', 7, 1, 2, 7, 12000, 50000, '중', ST_GeomFromText(%s, 4326),"
                " ST_GeomFromText(%s, 4326), '집 앞', '2026-03-01', NULL, %s)",
                (owner, title, f"POINT({lng:.7f} {lat:.7f})", f"POINT({plng:.7f} {plat:.7f})", at))
            ids.append(int(cur.lastrowid))
    return ids


async def test_a_search_card_is_the_card_read_on_its_own(market: Market) -> None:
    ids = await _items(market, [f"텐트 {k}" for k in range(6)],
                       [(37.5 + k / 2000, 127.03 + k / 2000) for k in range(6)], ["2026-03-01 10:00:00"] * 6)
    await market.indexer.index_items(ids)
    for ratings in (False, True):
        got = await market.search({"q": "텐트", **NEAR}, owner_ratings=ratings)
        assert sorted(c["id"] for c in got["items"]) == sorted(ids)
        alone = {c["id"]: c for c in await market.items.cards_by_ids(ids, owner_ratings=ratings)}
        for card in got["items"]:
            assert {k: v for k, v in card.items() if k != "distance_m"} == alone[card["id"]]
    if market.search_backend.name == "embedded":  # (else this test proves nothing about the search's statement)
        page = await market.search_backend.search(SearchQuery.parse({"q": "텐트", **NEAR}),
                                                  columns=card_columns(True))
        assert page.rows is not None and set(page.rows) == set(ids)


async def test_a_listing_hidden_deleted_or_gone_since_it_was_indexed_is_not_shown(market: Market) -> None:
    ids = await _items(market, [f"텐트 {k}" for k in range(6)],
                       [(37.5 + k / 2000, 127.03 + k / 2000) for k in range(6)], ["2026-03-01 10:00:00"] * 6)
    await market.indexer.index_items(ids)
    hidden, deleted, gone = ids[0], ids[1], ids[2]
    # Changed behind the index's back (the indexer has not caught up yet).
    await market.db.execute("UPDATE items SET status = 'hidden' WHERE id = %s", (hidden,))
    await market.db.execute("UPDATE items SET status = 'deleted' WHERE id = %s", (deleted,))
    await market.db.execute("DELETE FROM items WHERE id = %s", (gone,))
    for ratings in (False, True):
        got = await market.search({"q": "텐트", **NEAR}, owner_ratings=ratings)
        assert sorted(c["id"] for c in got["items"]) == sorted(ids[3:]), ratings
    if market.search_backend.name == "embedded":
        page = await market.search_backend.search(SearchQuery.parse({"q": "텐트", **NEAR}),
                                                  columns=card_columns(True))
        assert gone in [h.item_id for h in page.hits]  # still in the index
        assert page.rows is not None and gone not in page.rows  # no card of nulls for it


async def test_a_crowd_at_one_place_gets_the_same_pages_and_cards_with_the_search_statement(market: Market) -> None:
    if market.search_backend.name != "embedded":
        pytest.skip("the embedded backend's own statement")
    rng = random.Random(7)
    shops = [(37.5 + k / 1000, 127.03 + k % 3 / 1000) for k in range(12)]
    n = 80
    titles = [" ".join(rng.sample(["텐트", "의자", "랜턴"], rng.choice([1, 2, 3]))) for _ in range(n)]
    created = [f"2026-03-0{rng.choice([1, 2])} 10:00:00" for _ in range(n)]  # ages collide: ids order the rest
    ids = await _items(market, titles, [rng.choice(shops) for _ in range(n)], created)
    await market.indexer.index_items(ids)
    slow = EmbeddedSearch(market.db, early_stop=False)
    for text in ("텐트", "텐트 의자", "의자 랜턴 텐트"):
        for offset, limit in ((0, 1), (0, 5), (0, 20), (3, 5), (20, 20), (50, 20)):
            q = replace(SearchQuery.parse({"q": text, **NEAR, "limit": str(limit)}), offset=offset)
            fresh = await slow.search(q)
            page = await market.search_backend.search(q, columns=card_columns(True))
            assert (page.hits, page.next_cursor) == (fresh.hits, fresh.next_cursor), q
            assert set(page.rows or {}) <= {h.item_id for h in page.hits}
            on_page = [h.item_id for h in page.hits]
            assert (await market.items.cards_by_ids(on_page, owner_ratings=True, rows=page.rows)
                    == await market.items.cards_by_ids(on_page, owner_ratings=True)), q


def _doc(rng: random.Random, item_id: int, places: list[tuple[float, float]]) -> SearchDoc:
    title = rng.sample(VOCAB, rng.choice([1, 1, 2]))
    if rng.random() < 0.3:
        title.append(title[0])
    body = rng.sample(VOCAB, rng.choice([0, 1]))
    lat, lng = rng.choice(places) if rng.random() < 0.6 else (GANGNAM[0] + rng.gauss(0, 0.01),
                                                              GANGNAM[1] + rng.gauss(0, 0.01))
    return SearchDoc(item_id=item_id, title="제목", title_terms=title, body_terms=body, related_terms=[],
                     lat=lat, lng=lng, cat_ids=(1, 2, 3), price_per_day=rng.choice([1000, 2000, 5000]), deposit=0,
                     condition="상", available_from=date(2026, 1, 1), available_until=None, status="available",
                     created_at=datetime(2026, 1, 1) + timedelta(minutes=rng.randrange(0, 2)),
                     owner_rating=rng.choice([None, 4.0, 5.0]))


async def test_the_search_statement_with_rows_finds_what_reading_everything_finds_on_tie_heavy_data(
        market: Market) -> None:
    # Few places, colliding ages and ratings, tiny pages, offsets, exclusions, filters.
    for seed in (1, 2, 3):
        rng = random.Random(seed)
        places = [(GANGNAM[0] + rng.uniform(-0.01, 0.01), GANGNAM[1] + rng.uniform(-0.01, 0.01)) for _ in range(3)]
        quick = EmbeddedSearch(market.db, feedback=False)
        slow = EmbeddedSearch(market.db, early_stop=False, feedback=False)
        await quick.clear()
        await quick.index([_doc(rng, i, places) for i in range(1, 401)])
        for n in range(150):
            terms = tuple(rng.sample(VOCAB, rng.choice([1, 2, 3])))
            head = (terms[-1],) if len(terms) > 1 and rng.random() < 0.5 else ()
            centre = rng.choice(places) if rng.random() < 0.5 else (GANGNAM[0] + rng.uniform(-0.01, 0.01),
                                                                    GANGNAM[1] + rng.uniform(-0.01, 0.01))
            q = SearchQuery(text=" ".join(terms), terms=terms, head=head, lat=centre[0], lng=centre[1],
                            radius_m=rng.choice([300, 1500, 3000]), limit=rng.choice([1, 2, 3, 5, 20]),
                            offset=rng.choice([0, 0, 1, 3, 5, 20, 40]))
            if rng.random() < 0.3:
                q = replace(q, exclude=tuple(sorted(rng.sample(range(1, 401), 30))))
            if rng.random() < 0.2:
                q = replace(q, price_max=2000)
            a = await slow.search(q)
            b = await quick.search(q)
            c = await quick.search(q, columns=card_columns(True))
            assert (b.hits, b.next_cursor) == (a.hits, a.next_cursor), (seed, n, q)
            assert (c.hits, c.next_cursor) == (a.hits, a.next_cursor), (seed, n, q)
            assert not c.rows  # no items rows in this test: nothing read, nothing invented
