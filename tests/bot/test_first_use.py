"""A newcomer's first minutes with the bot: the welcome and its chips, one's 동네 remembered for /주변 and searches,
chips that run commands without showing them, result rows, a mistyped command's suggestion, and the Korean of the
replies (each sentence here was once wrong)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from aiohttp.test_utils import TestClient

from bot.texts import distance
from gateway.keys import CHAT, MARKET
from market.messages import particle
from tests.bot.test_bot_chat import _ask_bot, _assistant_room, _refused
from tests.conftest import Chatter, sign_up
from tests.rentals.test_rental_chat import _bot


async def _until_found(c: Chatter, room: int, text: str, want: int = 1, command: str | None = None
                       ) -> dict[str, Any]:
    """Ask until the gateway's indexer has caught up with the items just listed."""
    reply: dict[str, Any] = {}
    for _ in range(100):
        reply = await _chip(c, room, text, command) if command else await _ask_bot(c, room, text)
        if len(reply.get("cards", [])) >= want:
            return reply
        await asyncio.sleep(0.1)
    raise AssertionError(reply)


async def _chip(c: Chatter, room: int, label: str, command: str) -> dict[str, Any]:
    """Press a chip the way the widget does: its words are the message, its command goes beside them."""
    before = len([m for m in c.received("message", room) if m["sender"]["kind"] == "bot"])
    ack = await c.call("message", {"room": room, "text": label, "command": command})
    assert ack["ok"], ack
    for _ in range(200):
        replies = [m for m in c.received("message", room) if m["sender"]["kind"] == "bot"]
        if len(replies) > before:
            return replies[before]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no answer to the chip {label!r}")


async def _said_after(c: Chatter, room: int, seq: int) -> dict[str, Any]:
    """The bot's next message in the room after ``seq`` (a command that answers in two messages: the second)."""
    for _ in range(200):
        later = [m for m in c.received("message", room) if m["sender"]["kind"] == "bot" and m["seq"] > seq]
        if later:
            return later[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing said after {seq}")


async def test_the_welcome_offers_chips_in_korean_and_asks_for_my_neighbourhood_once(client: TestClient,
                                                                                      chatters: Any) -> None:
    person = await sign_up(client, nickname="새이웃")
    c = await chatters(person)
    room = await _assistant_room(person)
    joined = await c.call("join", {"room": room, "welcome": True})
    assert joined["ok"]
    [welcome] = [m for m in joined["messages"] if m["sender"]["kind"] == "bot"]
    assert welcome["text"].startswith("안녕하세요, 새이웃님! 빌리마켓 도우미 빌리예요.")
    assert [q["label"] for q in welcome["quick_replies"]] == ["캠핑의자 찾기", "내 주변 물건", "카테고리", "물건 올리기"]
    assert welcome["form"] == "home" and "내 동네" in welcome["text"]
    again = await c.call("join", {"room": room, "welcome": True})
    assert [m["seq"] for m in again["messages"]] == [welcome["seq"]]  # said once
    other = await chatters(await sign_up(client))
    plain = await other.call("join", {"room": await _assistant_room(other.person), "welcome": False})
    assert plain["messages"] == []  # only the widget asks for it


async def test_my_neighbourhood_is_remembered_for_near_and_for_searches(client: TestClient, chatters: Any) -> None:
    owner, person = await sign_up(client), await sign_up(client)
    near = await owner.new_item(title="캠핑의자 (역삼)", category_id=7, lat=37.5006, lng=127.0364)
    far = await owner.new_item(title="해운대 캠핑의자", category_id=7, lat=35.1587, lng=129.1604, place_name="우동")
    stroller = await owner.new_item(title="휴대용 유모차", category_id=7, lat=35.1587, lng=129.1604, place_name="우동")
    c = await chatters(person)
    room = await _assistant_room(person)
    await c.call("join", {"room": room, "welcome": True})
    asked = await _chip(c, room, "내 주변 물건", "/주변")  # no 동네 yet: the question, with the place to set it
    assert asked["text"].startswith("어느 동네 주변을 볼까요?") and asked["form"] == "home"
    status, body = await person.call("GET", f"/api/rooms/{room}/messages")
    assert "/주변" not in str([m["text"] for m in body["messages"]])  # the chip's words were stored, not its command

    set_home = await _chip(c, room, "내 동네: 역삼", "/동네 역삼")
    assert set_home["text"].startswith("내 동네를 역삼동으로 정했어요.")
    # then what is near it, in a message of its own: each next question's answer is the one after it
    assert (await _said_after(c, room, set_home["seq"]))["text"] == "역삼동 주변 3km 안의 물건이에요."
    nearby = await _until_found(c, room, "내 주변 물건", command="/주변")
    assert nearby["text"] == "역삼동 주변 3km 안의 물건이에요."
    assert [card["item_id"] for card in nearby["cards"]] == [near["id"]]
    found = await _until_found(c, room, "캠핑의자")  # a search starts from my 동네 too
    assert [card["item_id"] for card in found["cards"]] == [near["id"]] and "거리" in str(found["cards"][0]["fields"])
    nothing_near = await _ask_bot(c, room, "해운대")  # nothing near: the whole market, not "no results"
    assert [card["item_id"] for card in nothing_near["cards"]] == [far["id"]]
    assert nothing_near["text"] == "내 동네 근처에는 없어서 전체에서 찾은 '해운대' 검색 결과예요."  # and says so
    corrected = await _ask_bot(c, room, "유모치")  # also when a typo was corrected on the way
    assert [card["item_id"] for card in corrected["cards"]] == [stroller["id"]]
    assert corrected["text"] == "내 동네 근처에는 없어서 전체에서 '유모치' 대신 '유모차'(으)로 찾은 결과예요."

    located = await _chip(c, room, "내 위치", "/동네 37.49181,127.01374")  # the browser's location, kept as its 동
    assert located["text"].startswith("내 동네를 서초동으로 정했어요.")
    kept = await client.app[MARKET].db.fetchone("SELECT home_place, home_lat, home_lng FROM users WHERE id = %s",
                                                (person.id,))
    assert kept == {"home_place": "서초동", "home_lat": Decimal("37.49200"), "home_lng": Decimal("127.01400")}


async def _in_a_deal_room(client: TestClient, chatters: Any) -> tuple[Chatter, int]:
    """Someone who asked about another person's tent: connected, in the deal room (its id)."""
    owner, person = await sign_up(client), await sign_up(client)
    item = await owner.new_item(title="원터치 텐트", category_id=3)
    status, body = await person.call("POST", f"/api/items/{item['id']}/room")
    assert status == 201, body
    c = await chatters(person)
    await c.call("join", {"room": body["room"]["id"]})
    return c, int(body["room"]["id"])


async def test_a_chip_runs_its_command_only_in_my_own_assistant_room(client: TestClient, chatters: Any) -> None:
    c, deal = await _in_a_deal_room(client, chatters)
    await c.call("message", {"room": deal, "text": "네 좋아요", "command": "/내정보"})
    await asyncio.sleep(0.5)
    assert not [m for m in c.received("message", deal) if m["sender"]["kind"] == "bot"]  # the words alone count


async def test_a_mistyped_command_suggests_the_nearest_in_korean(client: TestClient, chatters: Any) -> None:
    person = await sign_up(client)
    c = await chatters(person)
    room = await _assistant_room(person)
    await c.call("join", {"room": room})
    said = await _refused(c, room, "/검삭 텐트")
    assert said.startswith("'/검삭' 명령어는 몰라요. /검색을 찾으셨나요?")  # (it suggested nothing: "검삭" ≠ "검색")


async def test_result_rows_mark_my_own_items_and_carry_what_a_row_shows(client: TestClient, chatters: Any) -> None:
    person, other = await sign_up(client), await sign_up(client)
    mine = await person.new_item(title="캠핑 랜턴", category_id=7, price_per_day=5000, deposit=30000)
    theirs = await other.new_item(title="캠핑 랜턴 큰 것", category_id=7, price_per_day=7000, deposit=0)
    c = await chatters(person)
    room = await _assistant_room(person)
    await c.call("join", {"room": room})
    reply = await _until_found(c, room, "캠핑 랜턴", want=2)
    rows = {card["item_id"]: card for card in reply["cards"]}
    own, their = rows[mine["id"]], rows[theirs["id"]]
    assert own["row"]["mine"] is True and own["row"]["mine_label"] == "내 물건" and own["buttons"] == []
    assert their["row"]["mine"] is False and [b["label"] for b in their["buttons"]] == ["♡ 찜", "문의하기"]
    assert own["row"]["title"] == "캠핑 랜턴" and own["row"]["price"] == "하루 5,000원"
    assert own["row"]["deposit"] == "보증금 30,000원" and own["row"]["wishes"] == 0
    assert own["row"]["posted_at"].endswith("Z") and own["row"]["place"] == own["subtitle"]
    assert their["row"]["rating"] == "새 이웃"  # the market's rating words (rating_label), shown as they come


async def test_the_korean_that_was_wrong(client: TestClient, chatters: Any) -> None:
    owner, person = await sign_up(client), await sign_up(client)
    await owner.new_item(title="캠핑 의자", category_id=7)
    c = await chatters(person)
    room = await _assistant_room(person)
    await c.call("join", {"room": room})
    typed = await _ask_bot(c, room, "ㅁㄴㅇㄹ")
    assert typed["text"] == "'ㅁㄴㅇㄹ' 검색 결과가 없어요."  # (it said "ㅁㄴㅇㄹ(으)로 찾은 물건이 없어요")
    assert particle("ㅁㄴㅇㄹ", "으로") == "로" and particle("ㅁㄴㅇ", "으로") == "으로"
    assert particle("201", "이에요") == "이에요" and particle("202", "이에요") == "예요"
    await _until_found(c, room, "캠핑 의자")  # (listed and indexed)
    await c.call("message", {"room": room, "text": "/카테고리 캠핑/레저"})  # its sub-categories, then its items
    browse = await _bot(c, room, "카테고리의 물건")
    assert browse["text"] == "캠핑/레저 카테고리의 물건이에요." and browse["cards"]  # (it said "'캠핑/레저' 검색 결과예요")
    near = await _until_found(c, room, "/주변 역삼동 1km")
    assert near["text"] == "역삼동 주변 1km 안의 물건이에요."  # (it said 1.0km)
    assert [distance(m) for m in (950, 994, 1000, 1049, 2500, 3000)] == ["950m", "990m", "1km", "1km", "2.5km", "3km"]


async def test_the_request_card_says_its_dates_once(client: TestClient, chatters: Any) -> None:
    owner, person = await sign_up(client, "빌려줄게"), await sign_up(client, "빌릴게")
    item = await owner.new_item(price_per_day=5000, deposit=30000)
    o, b = await chatters(owner), await chatters(person)
    status, body = await person.call("POST", f"/api/items/{item['id']}/room")
    room = body["room"]["id"]
    for x in (o, b):
        await x.call("join", {"room": room})
    await b.call("message", {"room": room, "text": "/대여 12/24~12/26"})
    card = await _bot(o, room, "대여를 요청했어요")
    shown = str(card["cards"][0].get("subtitle", "")) + str(card["cards"][0]["fields"])
    assert shown.count("12월 24일") == 1, shown  # (the subtitle and the 기간 line both said it)


async def test_in_a_deal_room_near_asks_for_a_place_without_the_form_that_would_post_it_there(
        client: TestClient, chatters: Any) -> None:
    c, deal = await _in_a_deal_room(client, chatters)
    for typed in ("/주변", "/동네"):
        asked = await _ask_bot(c, deal, typed)
        assert asked["text"].startswith("어느 동네 주변을 볼까요?") and "도우미 방" in asked["text"], asked
        assert asked.get("form") is None  # what the 동네 form sends would be a message the owner reads
    help_ = await _ask_bot(c, deal, "/도움말")
    assert all(q["send"].startswith("/") for q in help_["quick_replies"])  # no chip posts a bare word


async def test_the_welcome_comes_after_notices_but_never_to_someone_who_has_used_the_room(
        client: TestClient, chatters: Any) -> None:
    person, old_hand = await sign_up(client, nickname="알림먼저"), await sign_up(client)
    engine = client.app[CHAT].bot
    assert engine is not None
    room = await _assistant_room(person)
    await engine.tell([(person.id, "계좌가 연결됐어요.")])  # a notice before the first visit
    c = await chatters(person)
    joined = await c.call("join", {"room": room, "welcome": True})
    assert [m["text"][:12] for m in joined["messages"]] == ["계좌가 연결됐어요.", "안녕하세요, 알림먼저님"[:12]]

    o = await chatters(old_hand)
    mine = await _assistant_room(old_hand)
    await o.call("join", {"room": mine})
    await _ask_bot(o, mine, "/도움말")
    again = await o.call("join", {"room": mine, "welcome": True})  # a new browser of someone who used the room
    assert not [m for m in again["messages"] if m["text"].startswith("안녕하세요")]
