"""Words the analyser may have misread (an unknown brand or loanword, a particle read inside a word, a word read as
a noun and a particle) also match as the bigrams of the word as written — and only those words get bigrams."""

from __future__ import annotations

from market.search import korean
from market.service import Market
from tests.conftest import item_fields


def test_only_words_the_analyser_may_have_misread_give_bigrams() -> None:
    assert korean.word_grams("발뮤다 토스터") == ["~발뮤", "~뮤다"]  # an unknown brand; 토스터 is known
    assert korean.word_grams("다이슨에어랩") == ["~다이", "~이슨", "~슨에", "~에어", "~어랩"]  # 다이슨 + 에 + 어 + 랩
    assert korean.word_grams("마이크로 SD카드") == ["~마이", "~이크", "~크로"]  # 마이크 + 로, also one noun
    assert korean.word_grams("한솔로 피규어") == ["~한솔", "~솔로"]  # a name read as determiner 한 + 솔로
    # Known words, with or without a particle, give none: the index grows only where the analysis may be wrong.
    assert korean.word_grams("캠핑의자를 빌리고 싶어요") == []
    assert korean.word_grams("노트북을 빌려요 보증금은 없어요") == []
    assert korean.word_grams("새 텐트 한 달 빌려요") == []  # a determiner written as a word of its own
    assert korean.word_grams("새제품 한세트 여러개 첫사용") == []  # written as one word, and read so with no doubt
    assert korean.word_grams("") == []


async def _listed(market: Market, owner: int, title: str) -> int:
    item = await market.items.create(owner, item_fields(title=title, description="깨끗해요."))
    return int(item["id"])


async def test_a_word_the_analyser_split_wrongly_still_finds_its_listing(market: Market) -> None:
    owner = (await market.accounts.sign_up({"email": "o@example.com", "nickname": "주인", "password": "rent4you"}))
    # The analyser reads 다이슨에어랩 as 다이슨 + 에 + 어 + 랩: the word 에어랩 alone is never one of its terms.
    airwrap = await _listed(market, owner.user.id, "다이슨에어랩 스타일러")
    await _listed(market, owner.user.id, "전동 드릴")
    await market.indexer.drain()
    assert korean.analyze("다이슨에어랩") == ["다이슨", "랩"]
    r = await market.search({"q": "에어랩"})
    assert [c["id"] for c in r["items"]] == [airwrap]


async def test_a_name_read_as_a_determiner_and_a_noun_still_finds_its_listing(market: Market) -> None:
    owner = (await market.accounts.sign_up({"email": "o@example.com", "nickname": "주인", "password": "rent4you"}))
    # Alone, 온프로 is read as the determiner 온 and the bound noun 프로: no term at all.
    camera = await _listed(market, owner.user.id, "온프로 카메라 대여")
    await _listed(market, owner.user.id, "전동 드릴")
    await market.indexer.drain()
    assert korean.analyze("온프로") == []
    assert [c["id"] for c in (await market.search({"q": "온프로"}))["items"]] == [camera]


async def test_a_retitled_listing_leaves_no_bigram_of_its_old_title(market: Market) -> None:
    owner = (await market.accounts.sign_up({"email": "o@example.com", "nickname": "주인", "password": "rent4you"}))
    item = await _listed(market, owner.user.id, "발뮤다 토스터")
    await market.indexer.drain()
    assert [c["id"] for c in (await market.search({"q": "발뮤다토스터기"}))["items"]] == [item]
    await market.items.update(owner.user.id, item, {"title": "전기 토스터"})
    await market.indexer.drain()
    assert (await market.search({"q": "발뮤다토스터기"}))["items"] == []
    assert await market.db.fetchval("SELECT COUNT(*) FROM search_postings WHERE term LIKE %s", ("~%",)) == 0
