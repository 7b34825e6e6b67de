"""The Korean analyser: what a title, a description or a query turns into."""

from __future__ import annotations

from market.search import korean


def test_particles_and_endings_are_dropped_and_compounds_kept_whole_and_split() -> None:
    assert korean.analyze("캠핑의자를 빌리고 싶어요") == ["캠핑", "의자", "캠핑의자"]
    assert set(korean.analyze("접이식자전거 팝니다")) == {"접이식", "자전거", "접이식자전거"}


def test_latin_and_numbers_are_normalised_and_synonyms_meet() -> None:
    assert korean.query_terms("PS5") == korean.query_terms("ps5") == korean.query_terms("플스5")
    assert "플레이스테이션5" in korean.query_terms("플레이스테이션5")
    assert korean.query_terms("체어") == korean.query_terms("의자") == ["의자"]
    assert korean.query_terms("스트롤러") == ["유모차"]
    assert "a7m3" in korean.query_terms("소니 A7M3")


def test_a_known_head_noun_is_found_inside_a_word_the_analyser_keeps_whole() -> None:
    assert "의자" in korean.analyze("릴렉스체어")
    assert "침낭" in korean.analyze("노르디스크 슬리핑 백")  # a two-word name


def test_words_every_listing_uses_carry_no_weight() -> None:
    assert korean.query_terms("대여 렌탈 하루 가능") == []
    assert korean.query_terms("텐트 대여해요") == ["텐트"]


def test_broader_terms_for_a_listing() -> None:
    assert "게임기" in korean.related(["플레이스테이션5"])
    assert korean.related(["텐트", "캠핑"]) == []  # nothing it already has


def test_odd_input_gives_no_terms_and_no_error() -> None:
    for text in ["", "   ", "😀🎉", "!!!", "\x00\x01", "ㅋㅋㅋ"]:
        assert korean.query_terms(text) == []
    assert len(korean.analyze("텐트 " * 10_000)) <= 5000  # long text is cut, not choked on


def test_the_head_of_a_phrase_is_its_last_word() -> None:
    assert korean.head_terms("휴대용 유모차") == ["유모차"]
    assert korean.head_terms("캠핑 랜턴 있나요") == ["랜턴"]
