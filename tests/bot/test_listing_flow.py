"""Listing an item entirely in chat (/등록): every step, a photo, validation, edit from the preview, restart."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient

from bot.flows.listing import parse_dates, parse_location, parse_won
from market.items import today as listing_today
from tests.bot.test_bot_chat import _ask_bot, _assistant_room
from tests.conftest import image_bytes, sign_up


def test_money_places_and_dates_are_read_the_way_people_write_them() -> None:
    assert parse_won("5,000원") == parse_won("5천원") == parse_won("5000") == 5000
    assert parse_won("1만 5천원") == 15000 and parse_won("만원") == 10000 and parse_won("0") == 0
    assert parse_won("오천원") is None and parse_won("") is None and parse_won("5e3") is None
    assert parse_location("역삼동")["place_name"] == "역삼동"  # type: ignore[index]
    assert parse_location("37.5, 127.03") == {"lat": 37.5, "lng": 127.03, "place_name": ""}
    assert parse_location("0, 0") is None and parse_location("달나라") is None
    now = date(2026, 11, 24)
    assert parse_dates("12/24~12/31", now) == ("2026-12-24", "2026-12-31")
    assert parse_dates("12월 24일부터", now) == ("2026-12-24", None)
    assert parse_dates("1/3~1/5", now) == ("2027-01-03", "2027-01-05")
    assert parse_dates("오늘부터", now) == ("2026-11-24", None)
    for bad in ["12/31~12/24", "2/30~3/1", "어제", "2026-01-01~2026-01-02", "13/1~13/2"]:
        assert parse_dates(bad, now) is None, bad


async def _press(chatter: Any, room: int, message: dict[str, Any], label: str) -> None:
    token = next(b["token"] for b in message["buttons"] if b["label"] == label)
    ack = await chatter.call("action", {"room": room, "token": token})
    assert ack["ok"], ack


async def _next_bot(chatter: Any, room: int, after_seq: int) -> dict[str, Any]:
    import asyncio

    for _ in range(200):
        for m in chatter.received("message", room):
            if m["sender"]["kind"] == "bot" and m["seq"] > after_seq:
                return m  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError("no bot message")


async def test_an_owner_lists_an_item_through_the_chat_with_a_photo(client: TestClient, chatters: Any) -> None:
    owner = await sign_up(client)
    c = await chatters(owner)
    room = await _assistant_room(owner)
    await c.call("join", {"room": room})

    q = await _ask_bot(c, room, "/등록")
    assert "제목" in q["text"]
    q = await _ask_bot(c, room, "x")  # too short: explained (a toast, not stored), asked again
    assert "제목" in q["text"]
    assert "제목" in (await c.wait_for("notice", room=room))[-1]["message"]
    q = await _ask_bot(c, room, "스노우피크 캠핑 의자")
    assert q["text"] == "카테고리를 골라 주세요." and any(b["label"] == "캠핑/레저" for b in q["buttons"])
    await _press(c, room, q, "캠핑/레저")
    q = await _next_bot(c, room, q["seq"])
    await _press(c, room, q, "캠핑가구")
    q = await _next_bot(c, room, q["seq"])
    await _press(c, room, q, "캠핑의자")
    q = await _next_bot(c, room, q["seq"])
    assert "설명" in q["text"]
    q = await _ask_bot(c, room, "가볍고 튼튼해요.\n2개 있어요.")
    assert "사진" in q["text"]
    form = FormData()
    form.add_field("photo", image_bytes(), filename="chair.jpg", content_type="image/jpeg")
    status, body = await owner.call("POST", f"/api/rooms/{room}/images", data=form)
    assert status == 201, body
    q = await _next_bot(c, room, body["message"]["seq"])
    assert "사진 1장" in q["text"]
    await _press(c, room, q, "다음")
    q = await _next_bot(c, room, q["seq"])
    assert "대여료" in q["text"]
    q = await _ask_bot(c, room, "비싸요")
    assert "대여료" in q["text"]
    assert "5,000원" in (await c.wait_for("notice", 2, room=room))[-1]["message"]
    q = await _ask_bot(c, room, "5천원")
    assert "보증금" in q["text"]
    q = await _ask_bot(c, room, "3만원")
    assert "어디" in q["text"]
    q = await _ask_bot(c, room, "역삼동")
    assert "언제부터" in q["text"]
    await _press(c, room, q, "건너뛰기")
    preview = await _next_bot(c, room, q["seq"])
    assert preview["text"] == "이렇게 등록할까요?"
    fields = dict(map(tuple, preview["cards"][0]["fields"]))
    assert fields["일 대여료"] == "5,000원" and fields["보증금"] == "30,000원" and fields["사진"] == "1장"
    today = listing_today()
    assert fields["대여 가능"] == f"{today.month}월 {today.day}일부터"  # (it said "2026-11-30 ~ 계속")

    await _press(c, room, preview, "대여료 수정")  # edit one field, then back to the preview
    q = await _next_bot(c, room, preview["seq"])
    q = await _ask_bot(c, room, "7000")
    assert q["text"] == "이렇게 등록할까요?"
    assert ["일 대여료", "7,000원"] in q["cards"][0]["fields"]
    stale = next(b["token"] for b in preview["buttons"] if b["label"] == "등록하기")
    await _press(c, room, q, "등록하기")
    done = await _next_bot(c, room, q["seq"])
    assert "등록을 마쳤어요" in done["text"]
    refused = await c.call("action", {"room": room, "token": stale})
    assert refused["ok"] is False  # an old preview's button cannot publish twice

    status, mine = await owner.call("GET", "/api/me/items")
    assert len(mine["items"]) == 1
    item = mine["items"][0]
    assert item["title"] == "스노우피크 캠핑 의자" and item["price_per_day"] == 7000 and item["deposit"] == 30000
    assert item["category"]["id"] == 7 and item["place_name"] == "역삼동" and item["thumbnail"]
    ending = "이에요" if str(item["id"])[-1] in "013678" else "예요"  # 일, 삼, 영… end in a consonant; 이, 사 do not
    assert done["text"].endswith(f"물건 번호는 #{item['id']}{ending}.")
    status, detail = await owner.call("GET", f"/api/items/{item['id']}")
    assert detail["item"]["description"] == "가볍고 튼튼해요.\n2개 있어요." and len(detail["item"]["photos"]) == 1


async def test_cancel_and_help_inside_a_flow(client: TestClient, chatters: Any) -> None:
    owner = await sign_up(client)
    c = await chatters(owner)
    room = await _assistant_room(owner)
    await c.call("join", {"room": room})
    await _ask_bot(c, room, "/등록")
    q = await _ask_bot(c, room, "캠핑 의자")
    again = await _ask_bot(c, room, "/도움말")
    assert again["text"] == q["text"]  # what this step needs
    bye = await _ask_bot(c, room, "/취소")
    assert "멈췄어요" in bye["text"]
    search = await _ask_bot(c, room, "캠핑 의자")  # no flow any more: free text searches
    assert "검색 결과가 없어요" in search["text"]
    status, mine = await owner.call("GET", "/api/me/items")
    assert mine["items"] == []


async def test_my_page_edits_and_deletes_my_items(client: TestClient, chatters: Any) -> None:
    owner = await sign_up(client)
    item = await owner.new_item(title="원터치 텐트", category_id=3)
    c = await chatters(owner)
    room = await _assistant_room(owner)
    await c.call("join", {"room": room})
    page = await _ask_bot(c, room, "/내정보")
    assert "올린 물건 1개" in page["text"] and "빌리페이 계좌: 연결 안 됨" in page["text"] and page["cards"][0]["item_id"] == item["id"]
    card = page["cards"][0]
    await _press(c, room, card, "수정")
    preview = await _next_bot(c, room, page["seq"])
    assert preview["text"] == "이렇게 등록할까요?"
    await _press(c, room, preview, "제목 수정")
    q = await _next_bot(c, room, preview["seq"])
    q = await _ask_bot(c, room, "4인용 원터치 텐트")
    await _press(c, room, q, "등록하기")
    done = await _next_bot(c, room, q["seq"])
    assert "고쳤어요" in done["text"]
    status, detail = await owner.call("GET", f"/api/items/{item['id']}")
    assert detail["item"]["title"] == "4인용 원터치 텐트" and detail["item"]["price_per_day"] == item["price_per_day"]
    await _press(c, room, card, "삭제")
    gone = await _next_bot(c, room, done["seq"])
    assert gone["text"] == "4인용 원터치 텐트를 내렸어요."  # (once: it said the title twice)
    status, mine = await owner.call("GET", "/api/me/items")
    assert mine["items"] == []
