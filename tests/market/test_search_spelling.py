"""Typos: a query word one keystroke off an indexed word is searched as that word, and the answer says so."""

from __future__ import annotations

import pytest

from market.search import korean
from market.search.spelling import Speller, corrected_text, keystroke_distance, keystrokes
from market.service import Market
from tests.conftest import item_fields

WORDS = [("텐트", 50), ("캠핑", 90), ("캠핑의자", 40), ("의자", 60), ("유모차", 30), ("자전거", 30),
         ("아이스박스", 10), ("플레이스테이션5", 20), ("a7m3", 5), ("보드게임", 5), ("카시트", 7), ("소니", 12),
         ("텐션", 1)]
TENTS, CHAIRS, STROLLERS = 3, 7, 78


@pytest.mark.parametrize(("typed", "meant"), [
    ("캠핑의지", "캠핑의자"),  # a vowel changed
    ("유모치", "유모차"),
    ("텐드", "텐트"),  # a consonant changed
    ("자저넉", "자전거"),  # two keys swapped across syllables
    ("아이습ㄱ스", "아이스박스"),  # a key dropped, leaving a lone letter
    ("캠ㅍ이 의자", "캠핑 의자"),  # two keys swapped, leaving a lone letter
    ("보득임", "보드게임"),
    ("테늩를 빌리고 싶어요", "텐트 빌리고 싶어요"),  # the word's term is corrected (the particle goes)
    ("소니 w7m3", "소니 a7m3"),
    ("px5", "ps5"),  # another spelling of an indexed word, corrected as written
])
def test_a_word_one_keystroke_off_is_corrected_to_the_indexed_word(typed: str, meant: str) -> None:
    speller = Speller(WORDS, korean.aliases())
    assert corrected_text(speller, typed) == meant


@pytest.mark.parametrize("typed", ["텐트", "캠핑 의자", "유모차 대여", "ps5", "화성탐사선", "ㅋ", "텐"])
def test_a_right_word_an_unknown_far_word_or_a_tiny_word_is_left_alone(typed: str) -> None:
    assert corrected_text(Speller(WORDS, korean.aliases()), typed) is None


def test_the_most_common_of_several_words_one_key_away_wins() -> None:
    assert corrected_text(Speller([("텐트", 50), ("텐투", 3), ("덴트", 9)]), "텐츠") == "텐트"


def test_keystroke_distance_counts_a_swap_as_one_edit() -> None:
    assert keystroke_distance(keystrokes("자전거"), keystrokes("자저넉")) == 1
    assert keystroke_distance(keystrokes("과자"), keystrokes("고자")) == 1  # ㅘ is two keys: ㅗ + ㅏ
    assert keystroke_distance(keystrokes("텐트"), keystrokes("캠핑")) == 2  # capped


async def _listed(market: Market, owner: int, **over: object) -> int:
    item = await market.items.create(owner, item_fields(**over))
    await market.indexer.drain()
    return int(item["id"])


async def test_a_typo_finds_the_intended_items_on_the_first_page_and_offers_the_correction(market: Market) -> None:
    owner = (await market.accounts.sign_up({"email": "o@example.com", "nickname": "주인", "password": "rent4you"}))
    chair = await _listed(market, owner.user.id, title="캠핑의자 빌려드려요", description="가벼워요.",
                          category_id=CHAIRS)
    stroller = await _listed(market, owner.user.id, title="휴대용 유모차", description="접이식이에요.",
                             category_id=STROLLERS)
    for typed, meant, item in (("캠핑의지", "캠핑의자", chair), ("유모치", "유모차", stroller)):
        result = await market.search({"q": typed})
        assert [c["id"] for c in result["items"]] == [item]
        assert result["did_you_mean"] == meant and result["corrected"] is True
    plain = await market.search({"q": "유모차"})
    assert [c["id"] for c in plain["items"]] == [stroller] and plain["did_you_mean"] is None


async def test_a_word_just_indexed_is_not_corrected_away_by_a_speller_that_has_not_seen_it(market: Market) -> None:
    owner = (await market.accounts.sign_up({"email": "o@example.com", "nickname": "주인", "password": "rent4you"}))
    await _listed(market, owner.user.id, title="원터치 텐트", description="설치가 쉬워요.", category_id=TENTS)
    assert (await market.search({"q": "텐트"}))["items"]  # the speller is built now, without 텐드
    odd = await _listed(market, owner.user.id, title="텐드 캠핑 매트", description="두꺼워요.", category_id=TENTS)
    result = await market.search({"q": "텐드"})
    assert [c["id"] for c in result["items"]] == [odd] and result["did_you_mean"] is None
