"""The bot through real Socket.IO clients against the running gateway: commands, cards, buttons, deal rooms."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.keys import MARKET
from market.people import locale as locale_copy
from tests.conftest import Chatter, Person, sign_up


async def _assistant_room(person: Person) -> int:
    status, body = await person.call("GET", "/api/rooms")
    assert status == 200
    room = body["rooms"][0]
    assert room["kind"] == "assistant"
    return int(room["id"])


async def _ask_bot(chatter: Chatter, room: int, text: str) -> dict[str, Any]:
    """Send a message and return the bot's next reply in that room."""
    before = len([m for m in chatter.received("message", room) if m["sender"]["kind"] == "bot"])
    ack = await chatter.call("message", {"room": room, "text": text})
    assert ack["ok"], ack
    for _ in range(200):
        replies = [m for m in chatter.received("message", room) if m["sender"]["kind"] == "bot"]
        if len(replies) > before:
            return replies[before]
        await asyncio.sleep(0.05)
    raise AssertionError(f"the bot did not answer {text!r}")


async def _refused(chatter: Chatter, room: int, text: str) -> str:
    """Send a command the bot refuses: the refusal is a toast for the sender (``notice``), never a message."""
    messages, before = len(chatter.received("message", room)), len(chatter.received("notice", room))
    ack = await chatter.call("message", {"room": room, "text": text})
    assert ack["ok"], ack
    for _ in range(200):
        notices = chatter.received("notice", room)
        if len(notices) > before:
            await asyncio.sleep(0.1)
            assert len(chatter.received("message", room)) == messages  # nothing stored in the room
            return str(notices[before]["message"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no refusal for {text!r}")


async def test_find_nearby_wish_and_ask_the_owner(client: TestClient, chatters: Any) -> None:
    owner = await sign_up(client, nickname="민지")
    borrower = await sign_up(client, nickname="준호")
    item = await owner.new_item(title="원터치 텐트", description="4인용이에요.", category_id=3)
    o, b = await chatters(owner), await chatters(borrower)
    room = await _assistant_room(borrower)
    assert (await b.call("join", {"room": room}))["ok"]

    reply = await _ask_bot(b, room, "/주변 역삼동 2km")
    assert "역삼동 주변 2km" in reply["text"]
    card = next(c for c in reply["cards"] if c["item_id"] == item["id"])
    assert card["title"] == f"#{item['id']} 원터치 텐트"
    assert ["일 대여료", "5,000원"] in card["fields"] and any(f[0] == "거리" for f in card["fields"])
    wish, ask = card["buttons"]

    ack = await b.call("action", {"room": room, "token": wish["token"], "seq": reply["seq"]})
    # shown as a toast; the count goes with it, for the card to show
    assert ack == {"ok": True, "handled": True, "message": "원터치 텐트를 찜했어요.", "item": item["id"], "wishes": 1}
    # the spent 찜 button is disabled in place on every client, and in history; 문의하기 stays live
    update = (await b.wait_for("message_update", room=room))[-1]
    redrawn = next(c for c in update["cards"] if c["item_id"] == item["id"])
    assert redrawn["buttons"][0] == {"label": wish["label"], "disabled": True}
    assert redrawn["buttons"][1]["token"] == ask["token"]
    page = await b.call("history", {"room": room})
    kept = next(m for m in page["messages"] if m["seq"] == reply["seq"])
    assert next(c for c in kept["cards"] if c["item_id"] == item["id"])["buttons"][0].get("disabled") is True
    status, detail = await borrower.call("GET", f"/api/items/{item['id']}")
    assert detail["item"]["wish_count"] == 1
    replay = await b.call("action", {"room": room, "token": wish["token"]})
    assert replay["ok"] is False and replay["error"]["code"] == "bot.button_used"
    assert "이미" in replay["error"]["message"]
    owner_room = await _assistant_room(owner)
    stolen = await o.call("action", {"room": owner_room, "token": ask["token"]})
    assert stolen["ok"] is False and stolen["error"]["code"] == "bot.button_not_yours"

    asked = await b.call("action", {"room": room, "token": ask["token"]})
    # 문의하기 opens the deal room at once, with a first message to suggest
    assert asked["ok"] and asked["suggest"] == "안녕하세요! 원터치 텐트 빌릴 수 있을까요?"
    updates = await o.wait_for("room_update")
    deal_room = next(u["room"] for u in updates if u.get("new"))
    assert asked["open_room"] == deal_room
    joined = await o.call("join", {"room": deal_room})  # a client joins a room it hears about
    inquiry = [m for m in joined["messages"] if not m.get("hidden")][0]
    assert inquiry["text"].startswith("준호님이 이 물건에 대해 문의했어요.\n준호님 평점 새 이웃")
    assert inquiry["cards"][0]["item_id"] == item["id"] and not inquiry["cards"][0]["buttons"]
    assert inquiry["audience"] == owner.id
    welcome = [m for m in (await b.call("join", {"room": deal_room}))["messages"] if not m.get("hidden")][0]
    buttons = welcome["cards"][0]["buttons"]  # the borrower's alone; the owner never sees them
    request_button = next(x for x in buttons if x["label"] == "대여 요청")
    assert all(x["form"] == "dates" for x in buttons) and any(x.get("dates") for x in buttons)  # 이번 주말, 다음 주말
    assert request_button["label"] == "대여 요청" and request_button["form"] == "dates"
    assert request_button["token"] not in str(joined)
    refused = await o.call("action", {"room": deal_room, "token": request_button["token"]})
    assert refused["error"]["code"] == "bot.button_not_yours"
    status, body = await borrower.call("GET", "/api/rooms")
    assert any(r["id"] == deal_room and r["kind"] == "deal" for r in body["rooms"])


async def test_free_text_searches_and_mistakes_get_help(client: TestClient, chatters: Any) -> None:
    owner = await sign_up(client)
    borrower = await sign_up(client)
    for n in range(7):
        await owner.new_item(title=f"캠핑 의자 {n}호", category_id=7)
    b = await chatters(borrower)
    room = await _assistant_room(borrower)
    await b.call("join", {"room": room})
    reply: dict[str, Any] = {}
    for _ in range(100):  # the gateway's indexer catches up on its own
        reply = await _ask_bot(b, room, "캠핑의자 있나요")
        if reply.get("cards"):
            break
        await asyncio.sleep(0.1)
    assert len(reply["cards"]) == 5 and reply["buttons"][0]["label"] == "더 보기"
    more = reply["buttons"][0]["token"]
    assert (await b.call("action", {"room": room, "token": more}))["ok"]
    for _ in range(100):
        last = [m for m in b.received("message", room) if m["sender"]["kind"] == "bot"][-1]
        if last["seq"] > reply["seq"]:
            break
        await asyncio.sleep(0.05)
    assert len(last["cards"]) == 2 and not last.get("buttons")
    shown = {c["item_id"] for c in reply["cards"]} | {c["item_id"] for c in last["cards"]}
    assert len(shown) == 7

    typo = await _refused(b, room, "/serch 텐트")
    assert "/search" in typo
    usage = await _refused(b, room, "/물품 텐트")
    assert "사용법: /물품 <번호>" in usage
    unknown_item = await _refused(b, room, "/대여 999999 내일부터 3일")
    assert "물건을 찾을 수 없어요" in unknown_item
    no_dates = await _refused(b, room, "/대여 1 언젠가")
    assert "날짜를 알아듣지 못했어요" in no_dates
    here = await _ask_bot(b, room, "/주변 37.4979,127.0276 1km")
    assert "이곳 주변 1km" in here["text"] and len(here["cards"]) == 5
    nowhere = await _refused(b, room, "/주변 화성")
    assert "어디인지 모르겠어요" in nowhere
    missing = await _refused(b, room, "/물품 999999")
    assert "999999번 물건은 없거나" in missing
    helps = await _ask_bot(b, room, "/도움말")
    assert "/검색" in helps["text"] and "/주변" in helps["text"]
    html = await _ask_bot(b, room, "<script>alert(1)</script>")
    assert "검색 결과가 없어요" in html["text"] and "<script>" in html["text"]  # plain text, shown as text


async def test_people_talking_in_a_deal_room_do_not_wake_the_bot(client: TestClient, chatters: Any) -> None:
    owner = await sign_up(client)
    borrower = await sign_up(client)
    item = await owner.new_item(title="원터치 텐트", category_id=3)
    status, body = await borrower.call("POST", f"/api/items/{item['id']}/room")
    room = body["room"]["id"]
    b = await chatters(borrower)
    await b.call("join", {"room": room})
    await b.call("message", {"room": room, "text": "텐트 주말에 빌릴 수 있을까요?"})
    reply = await _ask_bot(b, room, "/찜 " + str(item["id"]))
    assert reply["text"] == "원터치 텐트를 찜했어요."
    bot_messages = [m for m in b.received("message", room) if m["sender"]["kind"] == "bot"]
    assert len(bot_messages) == 1


async def test_categories_and_filter_buttons_narrow_the_results(client: TestClient, chatters: Any) -> None:
    owner = await sign_up(client)
    borrower = await sign_up(client)
    cheap = await owner.new_item(title="캠핑 의자", category_id=7, price_per_day=3000)
    await owner.new_item(title="릴렉스 체어", category_id=7, price_per_day=20000)
    camera_chair = await owner.new_item(title="촬영용 의자", category_id=42, price_per_day=4000)
    b = await chatters(borrower)
    room = await _assistant_room(borrower)
    await b.call("join", {"room": room})
    reply: dict[str, Any] = {}
    for _ in range(100):
        reply = await _ask_bot(b, room, "/검색 의자")
        if len(reply.get("cards", [])) == 3:
            break
        await asyncio.sleep(0.1)
    labels = [x["label"] for x in reply["buttons"]]
    assert "5,000원 이하" in labels and "캠핑/레저" in labels and "디지털/가전" in labels
    token = next(x["token"] for x in reply["buttons"] if x["label"] == "5,000원 이하")
    assert (await b.call("action", {"room": room, "token": token}))["ok"]
    for _ in range(100):
        last = [m for m in b.received("message", room) if m["sender"]["kind"] == "bot"][-1]
        if last["seq"] > reply["seq"]:
            break
        await asyncio.sleep(0.05)
    assert {c["item_id"] for c in last["cards"]} == {cheap["id"], camera_chair["id"]}

    narrowed = await _ask_bot(b, room, "/검색 의자 캠핑의자")
    assert {c["item_id"] for c in narrowed["cards"]} == {cheap["id"], cheap["id"] + 1}
    browse = await _ask_bot(b, room, "/카테고리 캠핑의자")
    assert "cards" in browse, browse["text"]
    assert {c["item_id"] for c in browse["cards"]} == {cheap["id"], cheap["id"] + 1}
    tops = await _ask_bot(b, room, "/카테고리")
    assert "캠핑/레저" in [x["label"] for x in tops["buttons"]]
    unknown = await _refused(b, room, "/카테고리 우주선")
    assert "'우주선' 카테고리는 없어요" in unknown


async def test_a_search_with_a_typo_shows_the_corrected_results_and_says_so(client: TestClient, chatters: Any) -> None:
    owner = await sign_up(client)
    borrower = await sign_up(client)
    stroller = await owner.new_item(title="휴대용 유모차", category_id=78)
    b = await chatters(borrower)
    room = await _assistant_room(borrower)
    await b.call("join", {"room": room})
    reply: dict[str, Any] = {}
    for _ in range(100):
        reply = await _ask_bot(b, room, "/검색 유모치")
        if reply.get("cards"):
            break
        await asyncio.sleep(0.1)
    assert reply["text"] == "'유모치' 대신 '유모차' 검색 결과예요."
    assert [c["item_id"] for c in reply["cards"]] == [stroller["id"]]
    chip = next(x for x in reply["buttons"] if x["label"] == "#유모차")  # what the search is about, to browse
    assert (await b.call("action", {"room": room, "token": chip["token"]}))["ok"]


async def test_a_command_is_answered_in_the_language_just_chosen(client: TestClient, chatters: Any) -> None:
    """A typed command reads its person's language with its flood count (a copy in Redis): a change of language
    is heard by the very next command, both ways."""
    person = await sign_up(client)
    p = await chatters(person)
    room = await _assistant_room(person)
    assert (await p.call("join", {"room": room}))["ok"]
    assert "역삼동 주변 1km" in (await _ask_bot(p, room, "/주변 역삼동 1km"))["text"]  # the copy is made here
    for locale, heading in (("en", "No items within 1km of 역삼동"), ("ko", "역삼동 주변 1km"),
                            ("en", "No items within 1km of 역삼동")):
        status, body = await person.call("PATCH", "/api/me", json={"locale": locale})
        assert status == 200 and body["user"]["locale"] == locale
        assert heading in (await _ask_bot(p, room, "/주변 역삼동 1km"))["text"]


async def test_two_changes_of_language_racing_leave_no_stale_copy(client: TestClient, monkeypatch: Any) -> None:
    """Ko then en, committed in that order, but ko's copy written last: the copy must not outlive the record."""
    market = client.app[MARKET]
    person = await sign_up(client)
    user = await market.accounts.get(person.id)
    changed = locale_copy.changed

    async def late_for_ko(redis: Any, user_id: int, locale: str) -> None:
        if locale == "ko":
            await asyncio.sleep(0.5)  # a slow hop between ko's commit and its copy
        await changed(redis, user_id, locale)

    monkeypatch.setattr(locale_copy, "changed", late_for_ko)

    async def en_meanwhile() -> Any:
        await asyncio.sleep(0.1)
        return await market.accounts.update_profile(user, {"locale": "en"})

    await asyncio.gather(market.accounts.update_profile(user, {"locale": "ko"}), en_meanwhile())
    assert await market.db.fetchval("SELECT locale FROM users WHERE id = %s", (person.id,)) == "en"
    assert await market.redis.get(locale_copy.key(person.id)) in (None, "en")


async def test_a_command_waits_while_another_node_answers_in_the_room(client: TestClient, chatters: Any) -> None:
    """A typed command claims its room's lock with its count; when another node holds it, the command waits for
    it to be given back, then is answered (counted once)."""
    person = await sign_up(client)
    p = await chatters(person)
    room = await _assistant_room(person)
    assert (await p.call("join", {"room": room}))["ok"]
    redis = client.app[MARKET].redis
    await redis.set(f"bot:room:{room}", "another-node", px=30_000)
    answer = asyncio.create_task(_ask_bot(p, room, "/주변 역삼동 1km"))
    await asyncio.sleep(1)
    assert not answer.done()  # nothing said while the other node holds the room
    await redis.delete(f"bot:room:{room}")
    assert "역삼동 주변 1km" in (await answer)["text"]
    assert await redis.get(f"bot:room:{room}") is None  # given back


async def test_a_bot_request_refused_in_a_deal_room_it_opened_shows_the_room_to_both(
        client: TestClient, chatters: Any) -> None:
    """/대여 from the assistant room, for dates already taken: the asker is told privately where they can be free,
    and the deal room the request opened all the same (it stays, for talking) reaches both people's room lists."""
    owner, first, second = await sign_up(client), await sign_up(client), await sign_up(client)
    item = await owner.new_item(title="4인용 텐트")
    status, _ = await first.call("POST", "/api/contracts", json={"item_id": item["id"], "dates": "내일부터 2일"})
    assert status == 201
    o, b = await chatters(owner), await chatters(second)
    room = await _assistant_room(second)
    await b.call("join", {"room": room})
    reply = await _ask_bot(b, room, f"/대여 {item['id']} 내일부터 2일")
    assert reply["text"].startswith("그 날짜에는 이미 예약이 있어요")
    deal = await client.app[MARKET].db.fetchval("SELECT id FROM rooms WHERE unique_key = %s",
                                                (f"deal:{item['id']}:{second.id}",))
    assert deal is not None
    for chat in (o, b):
        assert {"room": deal, "new": True} in await chat.wait_for("room_update", room=deal)
