"""One contract for every search backend: the same tests run against the embedded MariaDB backend and, where
``BILLI_ELASTICSEARCH_URL`` points at a cluster, against Elasticsearch.

Items are listed through the market (so the outbox is written in the item's transaction) and reach the
index through the indexer, as in production.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from market.config import Config
from market.errors import InvalidInput
from market.items import today as market_today
from market.service import Market
from tests.conftest import GANGNAM, _clean, item_fields

ES_URL = Config.from_env().elasticsearch_url
# Leaf categories of the seeded tree.
TENTS, CHAIRS, TABLES, DSLR, PLAYSTATION, DEHUMIDIFIERS, STROLLERS, DRILLS = 3, 7, 8, 42, 47, 69, 78, 91


@pytest.fixture(params=["embedded", "elasticsearch"])
async def shop(request: pytest.FixtureRequest, config: Config) -> AsyncIterator[Shop]:
    if request.param == "elasticsearch":
        if not ES_URL:
            pytest.skip("BILLI_ELASTICSEARCH_URL is not set: no Elasticsearch cluster to test against")
        config = config.replace(elasticsearch_url=ES_URL, elasticsearch_index=f"billi-test-{uuid.uuid4().hex[:8]}")
    else:
        config = config.replace(elasticsearch_url=None)
    await _clean(config)
    async with Market.open(config, run_migrations=False) as market:
        await market.search_backend.clear()
        owner = await market.accounts.sign_up({"email": "owner@example.com", "nickname": "주인",
                                              "password": "rent4you"})
        yield Shop(market, owner.user.id)


class Shop:
    def __init__(self, market: Market, owner_id: int) -> None:
        self.market = market
        self.owner_id = owner_id

    async def list(self, **over: Any) -> int:
        over.setdefault("category_id", TENTS)
        item = await self.market.items.create(self.owner_id, item_fields(**over))
        return int(item["id"])

    async def sync(self) -> None:
        await self.market.indexer.drain()
        await self.market.search_backend.refresh()

    async def ids(self, q: str, **params: Any) -> list[int]:
        result = await self.market.search({"q": q, **{k: str(v) for k, v in params.items()}})
        return [card["id"] for card in result["items"]]


async def test_morphology_finds_compounds_across_spacing_and_particles(shop: Shop) -> None:
    spaced = await shop.list(title="캠핑 의자 빌려드려요", description="접이식이에요.", category_id=CHAIRS)
    joined = await shop.list(title="캠핑의자 대여", description="가벼워요.", category_id=CHAIRS)
    tent = await shop.list(title="원터치 텐트", description="4인용이에요.")
    drill = await shop.list(title="전동 드릴", description="깨끗해요.", category_id=DRILLS)
    await shop.sync()
    # The chairs first; other camping gear (the tent is in 캠핑/레저) after them, as related; never the drill.
    for query in ("캠핑의자를", "캠핑 의자 있나요?"):
        found = await shop.ids(query)
        assert set(found[:2]) == {spaced, joined} and found[2:] == [tent], query
    # Only the chairs say 의자; the embedded backend fills the page below them with things like them (the tent,
    # also camping gear), never the drill.
    found = await shop.ids("의자")
    assert set(found[:2]) == {spaced, joined} and set(found[2:]) <= {tent}
    assert drill not in await shop.ids("캠핑의자") and drill not in found


async def test_synonyms_and_latin_variants_meet(shop: Shop) -> None:
    ps5 = await shop.list(title="PS5 디스크 에디션", description="패드 2개 드려요.", category_id=PLAYSTATION)
    chair = await shop.list(title="헬리녹스 체어원", description="가벼워요.", category_id=CHAIRS)
    stroller = await shop.list(title="스트롤러 대여", description="접으면 작아요.", category_id=STROLLERS)
    await shop.sync()
    assert await shop.ids("플스5") == [ps5]
    assert await shop.ids("ps5") == [ps5]
    assert await shop.ids("플레이스테이션 5") == [ps5]
    assert await shop.ids("게임기") == [ps5]  # a broader term
    assert await shop.ids("체어") == [chair]
    assert await shop.ids("유모차") == [stroller]


async def test_title_outranks_description_and_no_text_match_returns_nothing(shop: Shop) -> None:
    in_body = await shop.list(title="캠핑 테이블", description="텐트 옆에 두기 좋아요.", category_id=TABLES)
    in_title = await shop.list(title="원터치 텐트", description="설치가 쉬워요.")
    await shop.sync()
    assert await shop.ids("텐트") == [in_title, in_body]
    assert await shop.ids("냉장고") == []
    assert await shop.ids("빌려요") == []  # words every listing uses find nothing rather than everything


async def test_distance_then_freshness_break_ties(shop: Shop) -> None:
    far = await shop.list(title="원터치 텐트", description="설치가 쉬워요.", lat=GANGNAM[0] + 0.02)
    near = await shop.list(title="원터치 텐트", description="설치가 쉬워요.", lat=GANGNAM[0] + 0.001)
    older_same_place = await shop.list(title="원터치 텐트", description="설치가 쉬워요.", lat=GANGNAM[0] + 0.03)
    newer_same_place = await shop.list(title="원터치 텐트", description="설치가 쉬워요.", lat=GANGNAM[0] + 0.03)
    await shop.sync()
    here = {"lat": GANGNAM[0], "lng": GANGNAM[1]}
    assert await shop.ids("텐트", **here) == [near, far, newer_same_place, older_same_place]
    without_point = await shop.ids("텐트")
    assert without_point[0] == newer_same_place  # no point: the newest first


async def test_filters_radius_category_price_and_availability(shop: Shop) -> None:
    today = market_today()
    gangnam = await shop.list(title="원터치 텐트", description="깨끗해요.", price_per_day=5000,
                              available_from=today.isoformat())
    busan = await shop.list(title="원터치 텐트", description="깨끗해요.", lat=35.1796, lng=129.0756)
    pricey = await shop.list(title="대형 텐트", description="깨끗해요.", price_per_day=50000, lat=GANGNAM[0] + 0.01)
    later = await shop.list(title="텐트", description="깨끗해요.", available_from=(today + timedelta(days=30)).isoformat(),
                            available_until=(today + timedelta(days=40)).isoformat())
    camera = await shop.list(title="텐트 촬영용 카메라", description="깨끗해요.", category_id=DSLR)
    await shop.sync()
    here = {"lat": GANGNAM[0], "lng": GANGNAM[1]}
    assert set(await shop.ids("텐트", **here)) == {gangnam, pricey, later, camera}
    assert busan in await shop.ids("텐트")
    assert set(await shop.ids("텐트", **here, radius_m=500)) == {gangnam, later, camera}
    assert set(await shop.ids("텐트", **here, price_max=10000)) == {gangnam, later, camera}
    assert await shop.ids("텐트", **here, category=40) == [camera]  # a top-level category holds its leaves
    assert set(await shop.ids("텐트", **here, category=1)) == {gangnam, pricey, later}  # a one-digit id too
    assert set(await shop.ids("텐트", **here, category=TENTS)) == {gangnam, pricey, later}
    soon = {"available_from": today.isoformat(), "available_until": (today + timedelta(days=2)).isoformat()}
    assert later not in await shop.ids("텐트", **here, **soon)
    assert gangnam in await shop.ids("텐트", **here, **soon)


async def test_paging_walks_all_results_once(shop: Shop) -> None:
    made = {await shop.list(title=f"텐트 {n}호", description="깨끗해요.") for n in range(7)}
    await shop.sync()
    seen: list[int] = []
    cursor = None
    while True:
        params = {"q": "텐트", "limit": "3", **({"cursor": cursor} if cursor else {})}
        page = await shop.market.search(params)
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(made)


async def test_edits_and_deletes_reach_the_index_through_the_outbox(shop: Shop) -> None:
    item = await shop.list(title="원터치 텐트", description="깨끗해요.")
    await shop.sync()
    assert await shop.ids("텐트") == [item]
    await shop.market.items.update(shop.owner_id, item, {"title": "캠핑 의자", "category_id": CHAIRS})
    assert await shop.ids("텐트") == [item]  # not yet drained: the index still has the old words
    await shop.sync()
    assert await shop.ids("텐트") == []
    assert await shop.ids("의자") == [item]
    await shop.market.items.update(shop.owner_id, item, {"status": "hidden"})
    await shop.sync()
    assert await shop.ids("의자") == []
    await shop.market.items.update(shop.owner_id, item, {"status": "available"})
    await shop.sync()
    assert await shop.ids("의자") == [item]
    await shop.market.items.delete(shop.owner_id, item)
    await shop.sync()
    assert await shop.ids("의자") == []


async def test_indexing_is_at_least_once_and_idempotent(shop: Shop) -> None:
    item = await shop.list(title="원터치 텐트", description="깨끗해요.")
    # An indexer that indexed but died before clearing the outbox: the next drain does it again, harmlessly.
    await shop.market.indexer.index_items([item])
    assert int(await shop.market.db.fetchval("SELECT COUNT(*) FROM search_outbox")) == 1
    await shop.sync()
    await shop.market.indexer.index_items([item])
    await shop.sync()
    assert await shop.ids("텐트") == [item]
    assert int(await shop.market.db.fetchval("SELECT COUNT(*) FROM search_outbox")) == 0
    assert await shop.market.indexer.reindex() == 1
    await shop.market.search_backend.refresh()
    assert await shop.ids("텐트") == [item]


@pytest.mark.parametrize("query", [
    "", "   ", "😀🎉🔥", "ㅋㅋㅋㅋ", "텐트" * 5000, "'; DROP TABLE items; --", "텐트' OR '1'='1",
    "+텐트 -의자", '"텐트', "텐트*", "@4 텐트", "(텐트) ~의자 <텐트 >의자", "<script>alert(1)</script> 텐트",
    "\\ 텐트 %", "MATCH AGAINST(*)",
])
async def test_odd_queries_are_answered_without_error_or_injection(shop: Shop, query: str) -> None:
    tent = await shop.list(title="원터치 텐트", description="의자는 없어요.")
    await shop.sync()
    result = await shop.market.search({"q": query})
    ids = [c["id"] for c in result["items"]]
    assert ids in ([], [tent])
    if "텐트" in query:
        assert ids == [tent]
    assert int(await shop.market.db.fetchval("SELECT COUNT(*) FROM items")) == 1


async def test_bad_parameters_are_refused_clearly(shop: Shop) -> None:
    for params in ({"q": "텐트", "cursor": "nonsense"}, {"q": "텐트", "lat": "91", "lng": "127"},
                   {"q": "텐트", "limit": "1000"}, {"q": "텐트", "price_min": "9", "price_max": "1"},
                   {"q": ["텐트"]}):
        with pytest.raises(InvalidInput):
            await shop.market.search(params)


async def test_did_you_mean_offers_a_spelling_or_spacing_that_finds_something(shop: Shop) -> None:
    tent = await shop.list(title="원터치 텐트", description="깨끗해요.")
    await shop.list(title="제습기 빌려드려요", description="깨끗해요.", category_id=DEHUMIDIFIERS)
    await shop.sync()
    assert (await shop.market.search({"q": "텐트"}))["did_you_mean"] is None
    typo = await shop.market.search({"q": "텐드"})
    assert typo["did_you_mean"] == "텐트"
    # The embedded backend searches for the correction at once; Elasticsearch only suggests it.
    corrected = shop.market.search_backend.name == "embedded"
    assert [c["id"] for c in typo["items"]] == ([tent] if corrected else []) and typo["corrected"] is corrected
    assert (await shop.market.search({"q": "제습 기"}))["did_you_mean"] == "제습기"
    assert (await shop.market.search({"q": "화성탐사선"}))["did_you_mean"] is None


async def test_autocomplete_offers_titles_for_what_is_typed(shop: Shop) -> None:
    await shop.list(title="헬리녹스 체어원", description="깨끗해요.", category_id=CHAIRS)
    await shop.list(title="캠핑 의자 세트", description="깨끗해요.", category_id=CHAIRS)
    await shop.list(title="원터치 텐트", description="깨끗해요.")
    await shop.list(title="소니 카메라", description="깨끗해요.", category_id=DSLR)
    await shop.sync()
    assert await shop.market.complete("헬리") == ["헬리녹스 체어원"]
    assert "캠핑 의자 세트" in await shop.market.complete("캠핑 의")
    assert "헬리녹스 체어원" in await shop.market.complete("체어")
    started = await shop.market.complete("캠")  # the start of 캠핑 (not 캠, a synonym of 카메라)
    assert set(started) == {"캠핑 의자 세트"}
    assert await shop.market.complete("원터") == ["원터치 텐트"]
    assert await shop.market.complete("세트 헬리") == []  # the words before the last must all be there
    assert await shop.market.complete("ㅋ") == []
    assert await shop.market.complete("") == []
    assert await shop.market.complete("+* \"") == []


async def test_a_search_mostly_in_one_category_names_it_for_a_chip(shop: Shop) -> None:
    for title in ("캠핑 의자", "릴렉스 체어", "헬리녹스 체어원"):
        await shop.list(title=title, description="깨끗해요.", category_id=CHAIRS)
    await shop.list(title="촬영용 의자", description="깨끗해요.", category_id=DSLR)
    await shop.sync()
    assert (await shop.market.search({"q": "의자"}))["category"] == {"id": CHAIRS, "name": "캠핑의자"}
    assert (await shop.market.search({"q": "촬영용 의자"}))["category"] is not None  # still mostly chairs
    assert (await shop.market.search({"q": "의자", "category": str(CHAIRS)}))["category"] is None  # chosen already
    assert (await shop.market.search({"q": "우주선"}))["category"] is None
