"""The embedded search's own index: map cells, bookkeeping, and the early stop that must change nothing."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.filters import le
from market.items import card_columns
from market.search import (
    EARTH_RADIUS_M,
    EmbeddedSearch,
    SearchDoc,
    SearchQuery,
    cell_of,
    cell_ranges,
    embedded,
    filler,
    nationwide,
    postings_of,
    term_key,
)
from market.service import Market
from tests.conftest import GANGNAM


def _destination(lat: float, lng: float, bearing: float, metres: float) -> tuple[float, float]:
    """The point ``metres`` from (lat, lng) along ``bearing`` on the sphere."""
    d = metres / EARTH_RADIUS_M
    p1, l1, b = math.radians(lat), math.radians(lng), math.radians(bearing)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), math.degrees(l2)


@settings(max_examples=300, deadline=None)
@given(lat=st.floats(33.0, 38.6), lng=st.floats(124.5, 131.0), radius=st.integers(100, 50_000),
       bearing=st.floats(0, 360), share=st.floats(0, 1))
def test_the_cells_of_a_circle_hold_every_point_in_it(lat: float, lng: float, radius: int, bearing: float,
                                                      share: float) -> None:
    ranges = cell_ranges(lat, lng, radius)
    p = _destination(lat, lng, bearing, radius * share)
    c = cell_of(*p)
    assert any(first <= c <= last for first, last in ranges), (p, radius)
    # One range per row of cells crossed (rows are ~556 m), none wider than the circle needs.
    assert len(ranges) <= 2 * radius / 555 + 3
    widest_deg = math.degrees(radius / EARTH_RADIUS_M / math.cos(math.radians(abs(lat) + 1)))
    assert all(last - first <= 2 * widest_deg / 0.005 + 2 for first, last in ranges)


def test_a_posting_weighs_where_the_term_is() -> None:
    doc = _doc(1, ["텐트", "텐트", "텐트"], ["텐트", "의자"], ["캠핑"], *GANGNAM, 0)
    assert postings_of(doc) == {"텐트": (1, 2 * (3 * 2 + 1)), "의자": (0, 2), "캠핑": (0, 1)}
    long = "가" * 30  # 90 bytes: kept as a hash
    assert term_key(long).startswith("#") and list(postings_of(_doc(2, [long], [], [], *GANGNAM, 0))) == [term_key(long)]


# -- against MariaDB ---------------------------------------------------------------------------------------

VOCAB = ["텐트", "의자", "캠핑", "랜턴", "테이블", "침낭", "버너", "타프"]
COMMON = ["캠핑"]  # in most listings, as the category is


def _doc(item_id: int, title: list[str], body: list[str], related: list[str], lat: float, lng: float,
         age: int) -> SearchDoc:
    return SearchDoc(item_id=item_id, title="제목", title_terms=title, body_terms=body, related_terms=related,
                     lat=lat, lng=lng, cat_ids=(1, 2, 3), price_per_day=1000, deposit=0, condition="상",
                     available_from=date(2026, 1, 1), available_until=None, status="available",
                     created_at=datetime(2026, 1, 1) + timedelta(minutes=age))


def _random_doc(rng: random.Random, item_id: int, places: list[tuple[float, float]]) -> SearchDoc:
    title = rng.sample(VOCAB, rng.choice([1, 1, 2, 3]))
    if rng.random() < 0.2:
        title.append(title[0])  # said twice
    body = rng.sample(VOCAB, rng.choice([0, 1, 2]))
    related = [t for t in COMMON if rng.random() < 0.7 and t not in title]
    lat, lng = rng.choice(places) if places and rng.random() < 0.15 else (GANGNAM[0] + rng.gauss(0, 0.03),
                                                               GANGNAM[1] + rng.gauss(0, 0.03))
    return _doc(item_id, title, body, related, lat, lng, rng.randrange(0, 3))  # ages collide: ties


async def test_the_early_stop_finds_exactly_what_reading_every_posting_finds(market: Market) -> None:
    rng = random.Random(11)
    # Some listings share a place (a shop with many), so whole groups tie on score and distance.
    places = [(GANGNAM[0] + rng.uniform(-0.02, 0.02), GANGNAM[1] + rng.uniform(-0.02, 0.02)) for _ in range(5)]
    docs = [_random_doc(rng, i, places) for i in range(1, 601)]
    quick, slow = EmbeddedSearch(market.db), EmbeddedSearch(market.db, early_stop=False)
    await quick.clear()
    await quick.index(docs)
    compared = 0
    for _ in range(120):
        terms = tuple(rng.sample(VOCAB, rng.choice([1, 2, 2, 3])))
        head = (terms[-1],) if len(terms) > 1 and rng.random() < 0.5 else ()
        centre = places[0] if rng.random() < 0.3 else (GANGNAM[0] + rng.uniform(-0.03, 0.03),
                                                        GANGNAM[1] + rng.uniform(-0.03, 0.03))
        q = SearchQuery(text=" ".join(terms), terms=terms, head=head, lat=centre[0], lng=centre[1],
                        radius_m=rng.choice([300, 1500, 3000, 6000]), limit=rng.choice([5, 20]),
                        offset=rng.choice([0, 0, 5, 20]))
        a, b = await quick.search(q), await slow.search(q)
        assert [(h.item_id, h.score) for h in a.hits] == [(h.item_id, h.score) for h in b.hits], q
        assert [h.distance_m for h in a.hits] == [h.distance_m for h in b.hits]
        assert a.next_cursor == b.next_cursor
        # Asked for the page's rows too (the tie-breaks then come with the postings): the same page.
        c = await quick.search(q, columns=card_columns(True))
        assert (c.hits, c.next_cursor) == (a.hits, a.next_cursor), q
        compared += len(a.hits)
    assert compared > 500
    # Most searches were settled early (in a round or two), not by reading everything (a narrow one's second pass,
    # filling its page, reads in one statement of its own: market/search/filler.py).
    early = sum(n for rounds, n in quick.rounds.items() if rounds > 0)
    assert early > 0.8 * sum(quick.rounds.values()) and quick.rounds[1] > 0
    assert slow.rounds[0] == sum(slow.rounds.values()) >= 120


async def test_a_narrow_search_fills_its_page_alike_with_its_hits_words_read_with_them_or_after(
        market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(23)
    places = [(GANGNAM[0] + rng.uniform(-0.02, 0.02), GANGNAM[1] + rng.uniform(-0.02, 0.02)) for _ in range(5)]
    docs = [_random_doc(rng, i, places) for i in range(1, 601)]
    queries = []
    for _ in range(60):
        terms = tuple(rng.sample(VOCAB, rng.choice([1, 1, 2, 3])))
        centre = places[0] if rng.random() < 0.5 else (GANGNAM[0] + rng.uniform(-0.03, 0.03),
                                                        GANGNAM[1] + rng.uniform(-0.03, 0.03))
        queries.append(SearchQuery(text=" ".join(terms), terms=terms, head=(), lat=centre[0], lng=centre[1],
                                   radius_m=rng.choice([300, 600]), limit=rng.choice([5, 20]),
                                   offset=rng.choice([0, 0, 5])))
    with_hits = _Counting(market.db)
    backend = EmbeddedSearch(with_hits)  # type: ignore[arg-type]
    await backend.clear()
    await backend.index(docs)
    pages = [(await backend.search(q), await backend.search(q, columns=card_columns(True))) for q in queries]
    hit_reads = sum("SELECT item_id, title_terms" in sql for sql in with_hits.statements)
    monkeypatch.setattr(embedded, "SMALL_CIRCLE_M", 0)  # the hits' words read by a statement of their own
    after = _Counting(market.db)
    backend = EmbeddedSearch(after)  # type: ignore[arg-type]
    unfilled = EmbeddedSearch(market.db, feedback=False)
    filled = 0
    for q, (a, c) in zip(queries, pages):
        b = await backend.search(q)
        assert (a.hits, a.next_cursor) == (b.hits, b.next_cursor), q
        assert (c.hits, c.next_cursor) == (b.hits, b.next_cursor), q
        filled += len(b.hits) > len((await unfilled.search(q)).hits)
    assert filled >= 10
    assert hit_reads < sum("SELECT item_id, title_terms" in sql for sql in after.statements) / 3


async def test_the_bookkeeping_follows_every_change(market: Market) -> None:
    rng = random.Random(5)
    backend = EmbeddedSearch(market.db)
    await backend.clear()
    current: dict[int, SearchDoc] = {}
    for step in range(40):
        if current and rng.random() < 0.3:
            gone = rng.sample(sorted(current), min(len(current), rng.randint(1, 4)))
            await backend.remove(gone + [10_000 + step])  # and one never indexed
            for i in gone:
                del current[i]
        else:
            batch = [_random_doc(rng, rng.randint(1, 60), []) for _ in range(rng.randint(1, 8))]
            await backend.index(batch)
            current.update({d.item_id: d for d in batch})
    db = market.db
    want = {(k, tier, cell_of(round(d.lat, 7), round(d.lng, 7)), d.item_id, w)
            for d in current.values() for k, (tier, w) in postings_of(d).items()}
    have = {(r["term"], r["tier"], r["cell"], r["item_id"], r["weight"])
            for r in await db.fetchall("SELECT term, tier, cell, item_id, weight FROM search_postings")}
    assert have == want
    counts: dict[str, int] = {}
    for d in current.values():
        for k in postings_of(d):
            counts[k] = counts.get(k, 0) + 1
    stored = {r["term"]: int(r["docs"]) for r in await db.fetchall("SELECT term, docs FROM search_terms")}
    assert {k: n for k, n in stored.items() if n} == counts
    assert int(await db.fetchval("SELECT docs FROM search_stats WHERE id = 1")) == len(current)
    bands: dict[tuple[str, int, int], int] = {}
    for d in current.values():
        for k, (tier, w) in postings_of(d).items():
            bands[(k, tier, w)] = bands.get((k, tier, w), 0) + 1
    assert {(r["term"], r["tier"], r["weight"]): int(r["docs"])
            for r in await db.fetchall("SELECT term, tier, weight, docs FROM search_bands WHERE docs <> 0")} == bands
    words: dict[str, int] = {}
    for d in current.values():
        for w in set(d.title_terms) | set(d.body_terms):
            words[w] = words.get(w, 0) + 1
    vocab = {r["term"]: int(r["df"]) for r in await db.fetchall("SELECT term, df FROM search_vocab WHERE df > 0")}
    assert vocab == words


class _Counting:
    """The database, noting each statement a search sends."""

    def __init__(self, db: Any) -> None:
        self.db, self.statements = db, list[str]()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    async def fetchall(self, sql: str, args: Any = ()) -> Any:
        self.statements.append(sql)
        return await self.db.fetchall(sql, args)


def _near(*terms: str, limit: int = 20) -> SearchQuery:
    return SearchQuery(text=" ".join(terms), terms=terms, head=(), lat=GANGNAM[0], lng=GANGNAM[1], radius_m=6000,
                       limit=limit, offset=0)


async def test_a_process_searching_from_the_statistics_it_kept_sees_what_another_process_changed(
        market: Market) -> None:
    db = _Counting(market.db)
    here, there = EmbeddedSearch(db), EmbeddedSearch(market.db)  # type: ignore[arg-type]
    await there.clear()
    await there.index([_doc(i, ["의자"], ["텐트"], [], GANGNAM[0] + i * 1e-4, GANGNAM[1], 0) for i in range(1, 31)])
    first = await here.search(_near("텐트"))
    assert len(first.hits) == 20 and {h.item_id for h in first.hits} <= set(range(1, 31))
    assert not (await here.search(_near("버너"))).hits
    # Searching again, this process reads no statistics on their own: they come with the postings.
    db.statements.clear()
    assert await here.search(_near("텐트")) == first
    assert db.statements and all("search_postings" in s for s in db.statements)
    # Elsewhere a listing gets 텐트 in its title (a list this process knew empty) and another gets 버너.
    await there.index([_doc(100, ["텐트"], [], [], GANGNAM[0] + 0.02, GANGNAM[1], 0),
                       _doc(101, ["버너"], [], [], GANGNAM[0], GANGNAM[1] + 0.01, 0)])
    assert (await here.search(_near("텐트"))).hits[0].item_id == 100
    assert [h.item_id for h in (await here.search(_near("버너"))).hits] == [101]
    await there.remove(list(range(1, 31)) + [100])
    assert not (await here.search(_near("텐트"))).hits


async def test_searches_from_kept_statistics_match_fresh_ones_while_listings_change(market: Market) -> None:
    rng = random.Random(23)
    here, writer = EmbeddedSearch(market.db), EmbeddedSearch(market.db)
    await writer.clear()
    await writer.index([_random_doc(rng, i, []) for i in range(1, 201)])
    for step in range(40):
        if rng.random() < 0.3:
            await writer.remove(rng.sample(range(1, 260), 5))
        else:  # new listings and changed ones, some with words said more often than ever before
            docs = [_random_doc(rng, rng.randint(1, 260), []) for _ in range(rng.randint(1, 6))]
            if rng.random() < 0.3:
                docs[0] = _doc(docs[0].item_id, [rng.choice(VOCAB)] * 2, [rng.choice(VOCAB)] * 2, [],
                               docs[0].lat, docs[0].lng, 0)
            await writer.index(docs)
        for _ in range(3):
            q = _near(*rng.sample(VOCAB, rng.choice([1, 2])), limit=rng.choice([5, 20]))
            fresh = await EmbeddedSearch(market.db, early_stop=False).search(q)
            assert await here.search(q) == fresh, (step, q)
    assert sum(here.rounds.values()) == 120 and here.rounds[0] < 20


async def test_a_crowd_of_equal_listings_at_one_place_comes_newest_first(market: Market) -> None:
    # A shop lists many of the same thing: equal scores, equal distances; only age orders them.
    quick, slow = EmbeddedSearch(market.db), EmbeddedSearch(market.db, early_stop=False)
    shop = (GANGNAM[0] + 0.01, GANGNAM[1])
    for crowd in (25, 70):
        await quick.clear()
        ages = random.Random(crowd).sample(range(1000), crowd)
        await quick.index([_doc(i + 1, ["텐트"], [], [], *shop, age) for i, age in enumerate(ages)]
                          + [_doc(500, ["텐트"], [], [], GANGNAM[0] + 0.03, GANGNAM[1], 2000)])
        newest = [i + 1 for i, _ in sorted(enumerate(ages), key=lambda x: -x[1])]
        for offset in (0, 20):
            q = SearchQuery(text="텐트", terms=("텐트",), head=(), lat=GANGNAM[0], lng=GANGNAM[1], radius_m=6000,
                            limit=20, offset=offset)
            page = await quick.search(q)
            assert [h.item_id for h in page.hits] == (newest + [500])[offset:offset + 20], (crowd, offset)
            assert page == await slow.search(q)
            with_rows = await quick.search(q, columns=card_columns(True))
            assert (with_rows.hits, with_rows.next_cursor) == (page.hits, page.next_cursor)


async def test_a_price_or_dates_filter_is_settled_early_and_finds_what_reading_every_posting_finds(
        market: Market) -> None:
    rng = random.Random(31)
    docs = [replace(_random_doc(rng, i, []), price_per_day=rng.randrange(1000, 50000, 1000),
                    available_from=date(2026, 1, 1) + timedelta(days=rng.randrange(0, 20)),
                    available_until=rng.choice([None, date(2026, 1, 10), date(2026, 2, 1)]))
            for i in range(1, 501)]
    quick, slow = EmbeddedSearch(market.db), EmbeddedSearch(market.db, early_stop=False)
    await quick.clear()
    await quick.index(docs)
    for _ in range(60):
        terms = tuple(rng.sample(VOCAB, rng.choice([1, 2])))
        filters = rng.choice([{"price_max": 20000}, {"price_min": 30000},
                              {"available_from": date(2026, 1, 8), "available_until": date(2026, 1, 12)}])
        q = replace(_near(*terms, limit=rng.choice([5, 20])), radius_m=rng.choice([1500, 6000]), **filters)
        a, b = await quick.search(q), await slow.search(q)
        assert [(h.item_id, h.score, h.distance_m) for h in a.hits] == [(h.item_id, h.score, h.distance_m)
                                                                        for h in b.hits], q
        assert a.hits and a.next_cursor == b.next_cursor
        kept = {d.item_id: d for d in docs}
        for h in a.hits:
            d = kept[h.item_id]
            assert d.price_per_day <= filters.get("price_max", 10**9)
            assert d.price_per_day >= filters.get("price_min", 0)
            if "available_from" in filters:
                assert d.available_from <= filters["available_from"]
                assert d.available_until is None or d.available_until >= filters["available_until"]
    assert sum(n for rounds, n in quick.rounds.items() if rounds > 0) > 0.8 * sum(quick.rounds.values())


class _Reading(_Counting):
    """The database, noting how many postings each statement read (in transactions too);
    ``after_chunk`` runs after each statement reading postings best first."""

    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self.rows = 0
        self.after_chunk: Callable[[], Awaitable[None]] | None = None

    async def fetchall(self, sql: str, args: Any = ()) -> Any:
        rows = await super().fetchall(sql, args)
        await self.saw(sql, rows)
        return rows

    async def saw(self, sql: str, rows: Any) -> None:
        if "search_postings" in sql:  # a nationwide chunk's rows say how many postings it read
            self.rows += sum(int(r["taken"]) if r.get("from_end") == 1 else 0 if "taken" in r else 1 for r in rows)
        if "ix_search_postings_top" in sql and self.after_chunk is not None:
            await self.after_chunk()

    @asynccontextmanager
    async def transaction(self, **kw: Any) -> AsyncIterator[Any]:
        async with self.db.transaction(**kw) as cur:
            yield _ReadingCursor(cur, self)


class _ReadingCursor:
    def __init__(self, cur: Any, reading: _Reading) -> None:
        self.cur, self.reading, self.sql = cur, reading, ""

    async def execute(self, sql: str, args: Any = ()) -> Any:
        self.sql = sql
        return await self.cur.execute(sql, args)

    async def fetchall(self) -> Any:
        rows = await self.cur.fetchall()
        await self.reading.saw(self.sql, rows)
        return rows


async def test_a_search_without_a_point_reads_best_first_and_finds_what_reading_every_posting_finds(
        market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nationwide, "WHOLE_SHARE", math.inf)  # best first however much it reads (a small index)
    rng = random.Random(41)
    docs = [replace(_random_doc(rng, i, []), price_per_day=rng.randrange(1000, 50000, 1000),
                    lat=rng.uniform(33.5, 38.0), lng=rng.uniform(126.0, 129.5)) for i in range(1, 701)]
    # A crowd of one shop's equal listings (equal scores everywhere: only their numbers order them).
    docs += [_doc(i, ["그늘막", "모기장"], ["텐트"], [], 35.1 + i * 1e-5, 129.0, 0) for i in range(701, 1001)]
    reading = _Reading(market.db)
    quick = EmbeddedSearch(reading)  # type: ignore[arg-type]
    slow = EmbeddedSearch(market.db, early_stop=False)
    await slow.clear()
    await slow.index(docs)
    read = postings = 0
    for _ in range(150):
        terms = tuple(rng.sample(VOCAB, rng.choice([1, 2, 2, 3])))
        head = (terms[-1],) if len(terms) > 1 and rng.random() < 0.5 else ()
        extra = rng.choice([{}, {}, {"price_max": 20000}, {"price_min": 40000}])
        q = SearchQuery(text=" ".join(terms), terms=terms, head=head, lat=None, lng=None, radius_m=None,
                        limit=rng.choice([5, 20]), offset=rng.choice([0, 0, 5, 20]), **extra)
        reading.rows = 0
        a, b = await quick.search(q), await slow.search(q)
        assert [(h.item_id, h.score) for h in a.hits] == [(h.item_id, h.score) for h in b.hits], q
        assert a.hits and all(h.distance_m is None for h in a.hits)
        assert a.next_cursor == b.next_cursor
        read += reading.rows
        postings += sum(1 for d in docs for k in postings_of(d) if k in {term_key(t) for t in terms})
    assert read < 0.5 * postings  # best first: most postings are never read
    # The weight bands only plan the reading: counts that are wrong change no answer.
    await market.db.execute("UPDATE search_bands SET docs = MOD(CRC32(term) + weight, 50)")
    for _ in range(30):
        terms = tuple(rng.sample(VOCAB, rng.choice([1, 2, 3])))
        q = SearchQuery(text=" ".join(terms), terms=terms, head=(), lat=None, lng=None, radius_m=None, limit=20,
                        offset=rng.choice([0, 20]))
        assert (await quick.search(q)).hits == (await slow.search(q)).hits, q
    # Equal listings come newest (highest number) first, a chunk at a time.
    reading.rows = 0
    page = await quick.search(SearchQuery(text="그늘막 모기장", terms=("그늘막", "모기장"), head=(), lat=None,
                                          lng=None, radius_m=None, limit=20, offset=0))
    assert [h.item_id for h in page.hits] == list(range(1000, 980, -1))
    assert reading.rows <= 2 * 64  # a first chunk of each word's list, of the 300 each has


@pytest.mark.parametrize("whole_share", [nationwide.WHOLE_SHARE, math.inf])  # read whole at last, or best first
async def test_a_search_without_a_point_reads_one_snapshot_while_a_listing_changes(
        market: Market, monkeypatch: pytest.MonkeyPatch, whole_share: float) -> None:
    monkeypatch.setattr(nationwide, "WHOLE_SHARE", whole_share)
    # Listing 120's word weighs more after the search read its first chunk: in the postings read so far now, in
    # the search's snapshot still where it was.
    slow = EmbeddedSearch(market.db, early_stop=False)
    await slow.clear()
    await slow.index([_doc(i, ["그늘막"], [], [], 35.1, 129.0, 0) for i in range(1, 201)])
    q = SearchQuery(text="그늘막", terms=("그늘막",), head=(), lat=None, lng=None, radius_m=None, limit=30, offset=60)
    before = await slow.search(q)
    assert 120 in [h.item_id for h in before.hits]
    reading = _Reading(market.db)

    async def edit() -> None:
        reading.after_chunk = None
        await slow.index([_doc(120, ["그늘막", "그늘막"], [], [], 35.1, 129.0, 0)])

    reading.after_chunk = edit
    assert await EmbeddedSearch(reading).search(q) == before  # type: ignore[arg-type]
    assert (await slow.search(replace(q, offset=0))).hits[0].item_id == 120  # the change is there after


async def test_a_search_without_a_point_that_would_read_most_postings_reads_them_whole(market: Market) -> None:
    # Two common words that few listings share, those few the oldest: best first would read nearly everything.
    slow = EmbeddedSearch(market.db, early_stop=False)
    await slow.clear()
    await slow.index([_doc(i, ["그늘막", "모기장"], [], [], 35.1, 129.0, 0) for i in range(1, 11)]
                     + [_doc(i, ["그늘막" if i % 2 else "모기장"], [], [], 35.1, 129.0, 0) for i in range(11, 1211)])
    reading = _Reading(market.db)
    q = SearchQuery(text="그늘막 모기장", terms=("그늘막", "모기장"), head=(), lat=None, lng=None, radius_m=None,
                    limit=20, offset=0)
    page = await EmbeddedSearch(reading).search(q)  # type: ignore[arg-type]
    assert page == await slow.search(q)
    assert [h.item_id for h in page.hits][:10] == list(range(10, 0, -1))
    assert reading.rows < 600  # a first chunk of each list, then one statement reading them whole


@pytest.mark.parametrize("small_circle_rows", [filler.SMALL_CIRCLE_ROWS, 3])
async def test_the_second_pass_s_one_statement_ranks_as_reading_every_posting_by_the_best_single_word(
        market: Market, monkeypatch: pytest.MonkeyPatch, small_circle_rows: int) -> None:
    # (a small circle's postings read whole, or, past that many rows, the first ``want`` of each word's list)
    monkeypatch.setattr(filler, "SMALL_CIRCLE_ROWS", small_circle_rows)
    rng = random.Random(47)
    shop = (GANGNAM[0] + 0.002, GANGNAM[1])
    docs = [replace(_random_doc(rng, i, [shop]), price_per_day=rng.randrange(1000, 50000, 1000))
            for i in range(1, 601)]
    docs += [_doc(i, ["그늘막"], ["텐트"], [], *shop, 0) for i in range(601, 641)]  # equal scores at one place
    backend = EmbeddedSearch(market.db)
    await backend.clear()
    await backend.index(docs)
    words = [*VOCAB, "그늘막"]
    for _ in range(200):
        terms = rng.sample(words, rng.choice([1, 2, 3, 5]))
        weights = {term_key(t): rng.choice([100, 100, 250, 1000, 2300]) for t in terms}  # equal worths: ties
        place = rng.choice([None, (*shop, 300), (GANGNAM[0] + rng.uniform(-0.02, 0.02), GANGNAM[1], 1500)])
        narrowed = rng.choice([None, None, le("i.price_per_day", 20000)])
        exclude = tuple(rng.sample(range(1, 641), rng.choice([0, 0, 5, 40])))
        want = rng.choice([1, 5, 21, 60])
        args = (market.db, weights, want, place, narrowed, exclude)
        quick = await filler.best_by_one_word(*args)
        assert quick == await filler.best_by_one_word_whole(*args), (terms, place, want)
        if place is None:  # the definition, in Python: nationwide, equal scores newest (highest number) first
            kept = {d.item_id: d for d in docs if d.item_id not in exclude
                    and (narrowed is None or d.price_per_day <= 20000)}
            best = {i: max((weights[k] * w for k, (_, w) in postings_of(d).items() if k in weights), default=0)
                    for i, d in kept.items()}
            expected = sorted(((i, s) for i, s in best.items() if s > 0), key=lambda x: (-x[1], -x[0]))[:want]
            assert [(i, s) for i, s, _ in quick] == expected
