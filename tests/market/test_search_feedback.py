"""A narrow search fills its page, below every text match, with listings like its best hits (pseudo-relevance
feedback): the same kind of thing, the same category — never something unrelated."""

from __future__ import annotations

from market.search.feedback import FeedbackDoc, feedback_terms, shared_words
from market.service import Market
from tests.conftest import item_fields

TENTS, CHAIRS, DRILLS = 3, 7, 91


def test_the_words_the_best_hits_share_are_chosen_rarest_first_and_the_query_s_own_are_not() -> None:
    docs = [FeedbackDoc(title=["헬리녹스", "의자"], body=["가벼워요"], related=["캠핑"]),
            FeedbackDoc(title=["헬리녹스", "체어원", "의자"], body=[], related=["캠핑"]),
            FeedbackDoc(title=["헬리녹스"], body=["의자", "드릴"], related=["캠핑"])]
    listings = {"헬리녹스": 3, "의자": 40, "캠핑": 400, "체어원": 2, "드릴": 30, "가벼워요": 0}
    # 드릴 is in one description of three hits (a quarter each): not shared enough; 체어원 in one title of three
    # is, and rare; 캠핑 in every category but common.
    assert feedback_terms(shared_words(docs), listings, 1000, exclude={"헬리녹스"}) == ["의자", "체어원", "캠핑"]
    assert feedback_terms(shared_words([]), listings, 1000, exclude=set()) == []
    # Only the words enough of the hits share are candidates (their statistics are all the second pass reads).
    assert set(shared_words(docs)) == {"헬리녹스", "의자", "체어원", "캠핑"}


async def _listed(market: Market, owner: int, title: str, category_id: int) -> int:
    item = await market.items.create(owner, item_fields(title=title, description="깨끗해요.", category_id=category_id))
    return int(item["id"])


async def test_a_narrow_search_is_filled_with_listings_like_its_hits_below_them(market: Market) -> None:
    owner = (await market.accounts.sign_up({"email": "o@example.com", "nickname": "주인", "password": "rent4you"}))
    brand = [await _listed(market, owner.user.id, "헬리녹스 체어원", CHAIRS) for _ in range(2)]
    chairs = {await _listed(market, owner.user.id, title, CHAIRS) for title in ("캠핑 의자", "릴렉스 체어")}
    await _listed(market, owner.user.id, "전동 드릴", DRILLS)
    await market.indexer.drain()
    result = await market.search({"q": "헬리녹스"})
    ids = [c["id"] for c in result["items"]]
    assert ids[:2] == sorted(brand, reverse=True) and set(ids[2:]) == chairs  # no drill
    first = await market.search({"q": "헬리녹스", "limit": "2"})
    assert [c["id"] for c in first["items"]] == ids[:2] and first["next_cursor"]
    second = await market.search({"q": "헬리녹스", "limit": "2", "cursor": first["next_cursor"]})
    assert [c["id"] for c in second["items"]] == ids[2:]
    assert (await market.search({"q": "드릴"}))["items"][0]["title"] == "전동 드릴"


def test_a_compound_s_halves_are_two_nouns_as_the_index_holds_them() -> None:
    from market.search import korean

    assert korean.halves("에어바운스") == ("에어", "바운스")
    assert korean.halves("캠핑체어") == ("캠핑", "의자")  # (each half as its canonical term)
    assert korean.halves("미러리스") == ()  # a word of our own tables is whole
    assert korean.halves("중고노트북") == ()  # (중고 tells nothing: no pair)
    assert korean.halves("가나다라" * 50) == () and korean.halves("ps5") == () and korean.halves("텐트") == ()


async def test_a_compound_the_listings_write_as_two_words_finds_them(market: Market) -> None:
    """에어바운스 (one noun to the analyser, in no table of ours) also finds the listings that write 에어 바운스: a
    narrow search's second pass looks for the compound's two halves, below every text match."""
    owner = (await market.accounts.sign_up({"email": "o@example.com", "nickname": "주인", "password": "rent4you"}))

    async def listed(title: str, description: str, category_id: int) -> int:
        fields = item_fields(title=title, description=description, category_id=category_id)
        return int((await market.items.create(owner.user.id, fields))["id"])

    whole = await listed("에어바운스 빌려드려요", "거실에 두기 좋아요.", CHAIRS)
    # (nothing else in common with the text match: not its category, not a word of its description)
    apart = {await listed("에어 바운스 대여해요", "튼튼합니다.", TENTS),
             await listed("바운스 놀이기구", "무거워요.", TENTS)}
    await listed("전동 드릴", "충전식이에요.", DRILLS)
    await market.indexer.drain()
    ids = [c["id"] for c in (await market.search({"q": "에어바운스"}))["items"]]
    assert ids[0] == whole and set(ids[1:]) == apart  # (the text match first; no drill)


async def test_a_narrow_search_is_filled_with_the_words_listings_use_instead_of_its_own(market: Market) -> None:
    """In a small circle, the one 제빙기 found says nothing more of itself; elsewhere many listings show that 빙수기
    listings are the same kind of thing (the same words around them, never the same listing): the second pass
    finds the 빙수기 nearby."""
    owner = (await market.accounts.sign_up({"email": "o@example.com", "nickname": "주인", "password": "rent4you"}))
    here, far = (37.5665, 126.9780), (35.1796, 129.0756)  # (Seoul, Busan)

    async def listed(title: str, description: str, category_id: int, at: tuple[float, float]) -> int:
        fields = item_fields(title=title, description=description, category_id=category_id, lat=at[0], lng=at[1])
        return int((await market.items.create(owner.user.id, fields))["id"])

    hit = await listed("제빙기 대여", "상태 좋아요.", CHAIRS, here)
    near = await listed("빙수기 대여", "깨끗해요.", TENTS, (here[0] + 0.001, here[1]))
    await listed("전동 드릴", "충전 배터리 공구", DRILLS, (here[0], here[1] + 0.001))
    for _ in range(4):
        await listed("제빙기 대여", "여름 파티에 얼음 가득 카페 행사", CHAIRS, far)
        await listed("빙수기 대여", "여름 파티에 얼음 가득 카페 행사", TENTS, far)
    for _ in range(6):
        await listed("전동 드릴", "충전 배터리 공구", DRILLS, far)
    await market.indexer.drain()
    place = {"lat": str(here[0]), "lng": str(here[1]), "radius_m": "300"}
    assert [c["id"] for c in (await market.search({"q": "제빙기", **place}))["items"]] == [hit]  # (not learnt yet)
    assert await market.search_backend.learn_similar() > 0
    assert [c["id"] for c in (await market.search({"q": "제빙기", **place}))["items"]] == [hit, near]  # no drill
