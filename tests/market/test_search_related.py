"""Related words learned from the listings: pairs of title and category words, counted as listings come and go,
and the companions a word's listings use most (a brand → the kind of thing it makes)."""

from __future__ import annotations

from market.search.related import MIN_PAIR, SIMILAR_MIN_LISTINGS, listing_pairs, related_terms, similar_words
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


def test_words_used_in_the_same_kind_of_listings_instead_of_one_another_are_similar() -> None:
    foot = ["발", "피로", "회복", "거품", "온수"]
    listings = ([["각탕기", *foot]] * 4 + [["족욕기", *foot[1:]]] * 4 + [["드릴", "충전", "배터리", "공구"]] * 6
                + [["희귀어", "발"]] * (SIMILAR_MIN_LISTINGS - 1))
    learnt = similar_words(listings)
    # 각탕기 and 족욕기 never share a listing: the words around them make them alike, not a meeting.
    assert learnt["각탕기"][0][0] == "족욕기" and learnt["족욕기"][0][0] == "각탕기"
    assert all(b not in ("드릴", "충전", "배터리", "공구") for b, _ in learnt["각탕기"])
    assert "희귀어" not in learnt and all(b != "희귀어" for alike in learnt.values() for b, _ in alike)
    assert similar_words(list(reversed(listings))) == learnt  # (ties go by the words, not by the order)
    assert similar_words([]) == {}


async def _ice_machines_and_drills(market: Market) -> None:
    """Four 제빙기 and four 빙수기 listings with the same words around them, six drills: indexed."""
    owner = await market.accounts.sign_up({"email": "o@example.com", "nickname": "주인", "password": "rent4you"})
    for title in ("제빙기 대여", "빙수기 대여") * 4:
        await market.items.create(owner.user.id, item_fields(title=title, description="여름 파티에 얼음 카페 행사"))
    for _ in range(6):
        await market.items.create(owner.user.id, item_fields(title="전동 드릴", description="충전 배터리 공구",
                                                             category_id=DRILLS))
    await market.indexer.drain()


async def test_similar_words_are_learnt_by_one_node_a_turn_and_again_after_a_rebuild(market: Market) -> None:
    from market.search import EmbeddedSearch

    await _ice_machines_and_drills(market)
    one, other = market.search_backend, EmbeddedSearch(market.db, market.categories)
    learnt: list[str] = []
    for name, node in (("one", one), ("other", other)):
        real = node.learn_similar

        async def counted(name: str = name, real: object = real, **kw: bool) -> int:
            learnt.append(name)
            return await real(**kw)  # type: ignore[operator]
        node.learn_similar = counted  # type: ignore[method-assign]
    await one.refresh()
    await other.refresh()  # (the turn is the first node's for the next hour)
    assert learnt == ["one"]
    assert await market.db.fetchval("SELECT COUNT(*) FROM search_similar WHERE term = '제빙기'") == 1
    await one.refresh()  # (asked again at once: not even asked of MariaDB)
    assert learnt == ["one"]
    await other.clear()  # a rebuild: learnt at the refresh that ends it, whoever's turn it was
    assert await market.db.fetchval("SELECT COUNT(*) FROM search_similar") == 0
    await other.refresh()
    assert learnt == ["one", "other"]


async def test_a_turn_taken_by_a_rebuild_keeps_a_late_learning_out_and_a_failed_one_gives_the_turn_back(
        market: Market) -> None:
    from market.search import EmbeddedSearch

    await _ice_machines_and_drills(market)
    late, rebuild = market.search_backend, EmbeddedSearch(market.db, market.categories)
    assert await late._similar_turn(taken=False)  # (its hour starts)
    await rebuild._similar_turn(taken=True)  # a rebuild takes the turn meanwhile
    assert await late.learn_similar(own_turn=True) == 0  # its learning, from before, is not put in place
    assert await market.db.fetchval("SELECT COUNT(*) FROM search_similar") == 0
    assert await rebuild.learn_similar(own_turn=True) > 0

    async def broken(**_: bool) -> int:
        raise RuntimeError("the worker died")
    rebuild.learn_similar = broken  # type: ignore[method-assign]
    await market.db.execute("UPDATE leases SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE name = 'search_similar'")
    try:
        await rebuild.refresh()
    except RuntimeError:
        pass
    # the turn is given back at once: the next node to ask (within a minute) learns
    assert await late._similar_turn(taken=False)
