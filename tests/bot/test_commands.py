"""The slash-command grammar: aliases, arguments, usage on bad input, typo suggestions; fuzzed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import commands, places
from bot.texts import distance, say, won


def test_commands_and_their_korean_aliases_parse_the_same() -> None:
    assert commands.parse("/search 캠핑 의자 3km") == commands.parse("/검색 캠핑 의자 3킬로") == commands.Command(
        "search", {"query": "캠핑 의자", "radius_m": 3000})
    assert commands.parse("/주변 역삼동 500m") == commands.Command("near", {"place": "역삼동", "radius_m": 500})
    assert commands.parse("/물품 #42") == commands.parse("/item 42") == commands.Command("item", {"item_id": 42})
    assert commands.parse("/찜 7번") == commands.Command("wish", {"item_id": 7})
    assert commands.parse("/찜목록") == commands.Command("wishes")
    assert commands.parse("/도움말 검색") == commands.Command("help", {"topic": "search"})
    assert commands.parse("/취소") == commands.Command("cancel")


def test_text_that_is_not_a_command_is_left_alone() -> None:
    for text in ["텐트 있나요?", "", "/", " ", None, 42, "//"]:
        assert commands.parse(text) is None or isinstance(commands.parse(text), commands.Unknown)
    assert commands.parse("텐트 있나요?") is None


def test_typos_get_a_suggestion_and_bad_arguments_the_usage() -> None:
    assert commands.parse("/serch 텐트") == commands.Unknown("/serch", "/search")
    assert commands.parse("/xyzzy") == commands.Unknown("/xyzzy", None)
    bad = commands.parse("/물품 텐트")
    assert isinstance(bad, commands.BadArgs) and bad.reason == "bad_item_number" and bad.spec.name == "item"
    assert isinstance(commands.parse("/검색"), commands.BadArgs)
    assert isinstance(commands.parse("/검색 텐트 900km"), commands.BadArgs)
    assert commands.parse("/주변") == commands.Command("near", {"place": None, "radius_m": None})  # my own 동네


def test_a_mistyped_korean_command_suggests_the_nearest_one_in_korean() -> None:
    assert commands.parse("/검삭 텐트") == commands.Unknown("/검삭", "/검색")
    assert commands.parse("/찜몽록") == commands.Unknown("/찜몽록", "/찜목록")
    assert commands.parse("/등룩") == commands.Unknown("/등룩", "/등록")
    assert say("unknown_command", given="/검삭", hint=say("did_you_mean", command="/검색")).startswith(
        "'/검삭' 명령어는 몰라요. /검색을 찾으셨나요?")


def test_places_and_formatting() -> None:
    assert places.find("역삼") == ("역삼동", places.PLACES["역삼동"])
    assert places.find("강남역")[0] == "강남역"  # type: ignore[index]
    assert places.find("화성") is None
    assert won(5000) == "5,000원" and distance(1234) == "1.2km" and distance(340) == "340m"
    assert say("wished", title="텐트") == "텐트를 찜했어요." and say("wished", title="캠핑의자 세트") == "캠핑의자 세트를 찜했어요."
    assert say("no_results", query="헬리녹스") == "'헬리녹스' 검색 결과가 없어요."
    assert say("wished", "en", title="tent") == "Added 'tent' to your wishes."


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=400), st.text(max_size=50).map(lambda t: "/" + t),
                 st.sampled_from(["/검색 ", "/주변 ", "/물품 ", "/찜 ", "/help "]).flatmap(
                     lambda head: st.text(max_size=300).map(lambda t: head + t))))
def test_the_parser_never_raises_and_always_answers_in_shape(text: str) -> None:
    parsed = commands.parse(text)
    assert parsed is None or isinstance(parsed, (commands.Command, commands.Unknown, commands.BadArgs))
    if isinstance(parsed, commands.Command) and parsed.name in ("item", "wish"):
        assert isinstance(parsed.args["item_id"], int) and parsed.args["item_id"] >= 0
    if isinstance(parsed, commands.Command) and parsed.args.get("radius_m") is not None:
        assert 100 <= parsed.args["radius_m"] <= 50_000
    if isinstance(parsed, commands.BadArgs):
        assert say(parsed.reason) and parsed.spec.usage("ko").startswith("/")
