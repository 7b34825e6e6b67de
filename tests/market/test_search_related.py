"""Related words learned from the listings: pairs of title and category words, counted as listings come and go,
and the companions a word's listings use most (a brand → the kind of thing it makes)."""

from __future__ import annotations

from market.search.related import MIN_PAIR, listing_pairs, related_terms
from market.service import Market
from tests.conftest import item_fields

TABLES, DRILLS = 8, 91


def test_a_word_s_companions_are_those_often_beside_it_and_likelier_there_than_anywhere() -> None:
    pairs = [("스노우피크", "테이블", 8), ("스노우피크", "캠핑", 10), ("스노우피크", "의자", MIN_PAIR - 1),
             ("스노우피크", "대여", 10)]
    listings = {"스노우피크": 10, "테이블": 30, "캠핑": 400, "의자": 60, "대여": 1000}
    # 의자: too few listings together; 대여: in every listing, so no likelier beside the brand.
    assert related_terms(pairs, listings, 1000) == ["테이블", "캠핑"]
    assert related_terms(pairs, listings, 1000, exclude=["테이블"]) == ["캠핑"]
    assert listing_pairs(["a", "b", "a"]) == {("a", "b"), ("b", "a")}


async def _pairs(market: Market) -> dict[tuple[str, str], int]:
    rows = await market.db.fetchall("SELECT a, b, n FROM search_pairs WHERE n > 0")
    return {(r["a"], r["b"]): int(r["n"]) for r in rows}


async def test_pair_counts_follow_the_listings_and_give_a_brand_its_kind_of_thing(market: Market) -> None:
    owner = (await market.accounts.sign_up({"email": "o@example.com", "nickname": "주인", "password": "rent4you"}))
    made = []
    for title in ("스노우피크 롤 테이블", "스노우피크 테이블 세트", "스노우피크 IGT 테이블", *["전동 드릴"] * 4):
        item = await market.items.create(owner.user.id, item_fields(
            title=title, description="깨끗해요.", category_id=DRILLS if "드릴" in title else TABLES))
        made.append(int(item["id"]))
    await market.indexer.drain()
    pairs = await _pairs(market)
    assert pairs[("스노우피크", "테이블")] == pairs[("테이블", "스노우피크")] == 3
    assert ("스노우피크", "드릴") not in pairs
    backend = market.search_backend
    related = await backend.related(["스노우피크"])  # type: ignore[attr-defined]
    assert {"캠핑테이블", "캠핑"} <= set(related) and "드릴" not in related  # the kind of thing the brand makes
    await market.items.update(owner.user.id, made[0], {"title": "스노우피크 의자"})
    await market.indexer.drain()
    assert (await _pairs(market))[("스노우피크", "의자")] == 1  # a word the listing gained
    await market.items.delete(owner.user.id, made[1])
    await market.indexer.drain()
    assert (await _pairs(market))[("스노우피크", "캠핑테이블")] == 2  # a listing gone
    await backend.clear()
    assert await _pairs(market) == {}


async def test_companions_tied_at_the_cut_do_not_depend_on_the_order_of_the_query_words(market: Market) -> None:
    # 300 companions of a common word and 5 of a rare one, all as frequent: which of them make the cut of the
    # second pass must be the same for "a b" and "b a", on a fresh read and from what was kept.
    rows = [("흔한말", f"짝{i:03d}", MIN_PAIR + 2) for i in range(300)]
    rows += [("드문말", f"벗{i}", MIN_PAIR + 2) for i in range(5)]
    await market.db.execute("INSERT INTO search_pairs (a, b, n) VALUES " + ", ".join(["(%s, %s, %s)"] * len(rows)),
                             tuple(x for r in rows for x in r))
    backend = market.search_backend
    kept = backend._kept_pairs  # type: ignore[attr-defined]
    forward = await kept(["흔한말", "드문말"])
    backend._companions.clear()  # type: ignore[attr-defined]
    backward = await kept(["드문말", "흔한말"])
    assert len(forward) == 300 and sorted(forward) == sorted(backward) == sorted(await kept(["드문말", "흔한말"]))
