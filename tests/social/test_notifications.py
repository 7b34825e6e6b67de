"""Notifications: who is told what, muted kinds, the unread badge pushed to open clients and found on the
next connect, my page, and reviews written from the deal room's star buttons."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.keys import MARKET
from market.service import Market
from tests.conftest import Chatter, sign_up
from tests.rentals.helpers import Bank, days, item, link, settled, user


async def test_each_step_tells_the_right_person_unless_muted(market: Market) -> None:
    assert market.config.bank_url
    bank = Bank(market.config.bank_url)
    owner, borrower, fan = await user(market), await user(market), await user(market)
    iid = await item(market, owner)
    await market.wishes.add(fan, iid)
    await link(market, bank, borrower, 1_000_000)
    prefs = await market.notifications.set_prefs(borrower, {"request_declined": False})
    assert prefs["request_declined"] is False and prefs["request_accepted"] is True
    c, _ = await market.rentals.request(borrower, iid, *days(2, 2))
    await market.rentals.accept(owner, c.id)
    await market.rentals.pay_now(borrower, c.id)
    kinds = {(r["user_id"], r["kind"]) for r in await market.db.fetchall("SELECT user_id, kind FROM notifications")}
    assert kinds == {(owner, "new_inquiry"), (owner, "request_received"), (borrower, "request_accepted"),
                     (owner, "payment_received")}
    await market.rentals.cancel(borrower, c.id)  # the dates are free again: the fan hears about it
    assert (fan, "wish_available") in {(r["user_id"], r["kind"]) for r in await market.db.fetchall(
        "SELECT user_id, kind FROM notifications")}
    second, _ = await market.rentals.request(borrower, iid, *days(5, 1))
    await market.rentals.decline(owner, second.id)  # muted by the borrower
    assert await market.db.fetchval("SELECT COUNT(*) FROM notifications WHERE kind = 'request_declined'") == 0
    page = await market.notifications.page(owner)
    assert page["unread"] == 4 and "대여 요청이 왔어요" in page["notifications"][0]["text"]
    assert await market.notifications.mark_read(owner) == 0


async def _badge(c: Chatter, at_least: int) -> int:
    for _ in range(200):
        counts = [e["notifications"] for e in c.received("room_update") if "notifications" in e]
        if counts and counts[-1] >= at_least:
            return int(counts[-1])
        await asyncio.sleep(0.03)
    raise AssertionError(f"no badge ≥ {at_least}: {c.received('room_update')}")


async def test_the_badge_reaches_open_clients_and_waits_for_closed_ones(client: TestClient, chatters: Any) -> None:
    owner, borrower = await sign_up(client, "알림주인"), await sign_up(client, "알림손님")
    item_ = await owner.new_item()
    o = await chatters(owner)
    assert await _badge(o, 0) == 0  # sent on connect
    status, _ = await borrower.call("POST", "/api/contracts", json={"item_id": item_["id"], "dates": "내일부터 2일"})
    assert status == 201
    assert await _badge(o, 2) == 2  # new inquiry + request received
    b = await chatters(borrower)  # the borrower was offline: nothing for them yet
    assert await _badge(b, 0) == 0
    market = client.app[MARKET]
    contract = (await market.rentals.mine(borrower.id))[0]
    await market.rentals.accept(owner.id, contract.id)
    await o.close()
    assert await _badge(b, 1) == 1
    status, body = await owner.call("GET", "/api/me/notifications")
    assert body["unread"] == 2 and [n["kind"] for n in body["notifications"]] == ["request_received", "new_inquiry"]
    status, body = await owner.call("POST", "/api/me/notifications/read", json={"upto": body["notifications"][1]["id"]})
    assert body["unread"] == 1
    for bad in ({"no_such_kind": False}, {"due_today": "no"}, {}):
        status, _ = await owner.call("PUT", "/api/me/notifications/prefs", json=bad)
        assert status == 400
    again = await chatters(owner)  # back online: the count is there
    assert await _badge(again, 1) == 1


async def test_reviews_from_the_deal_room_and_my_page(client: TestClient, chatters: Any) -> None:
    market = client.app[MARKET]
    bank = Bank(market.config.bank_url)
    owner, borrower = await sign_up(client, "리뷰주인"), await sign_up(client, "리뷰손님")
    o, b = await chatters(owner), await chatters(borrower)
    cid, _, _ = await settled(market, bank, owner.id, borrower.id)
    room = (await market.rentals.get(cid)).room_id
    for c in (o, b):  # the room was made after they connected: joining brings its messages so far
        joined = await c.call("join", {"room": room})
        c.events.setdefault("message", []).extend(joined["messages"])

    async def bot(c: Chatter, words: str) -> dict[str, Any]:
        for _ in range(300):
            found = [m for m in c.received("message", room) if not m.get("hidden") and m["sender"]["kind"] == "bot" and words in m["text"]]
            if found:
                return found[-1]  # type: ignore[no-any-return]
            await asyncio.sleep(0.03)
        raise AssertionError(words)

    ask = await bot(b, "주인 리뷰주인님과의 거래는 어땠나요?")
    assert ask["audience"] == borrower.id  # the review prompt is the borrower's alone
    write = ask["buttons"][0]
    assert write["label"] == "후기 쓰기" and write["form"] == "review"
    assert (await o.call("action", {"room": room, "token": write["token"], "input": {"stars": 1}}))["error"][
        "code"] == "bot.button_not_yours"
    bad = await b.call("action", {"room": room, "token": write["token"], "input": {"stars": 9}})
    assert bad["ok"] is False and "1개부터 5개" in bad["error"]["message"]
    assert await market.db.fetchval("SELECT COUNT(*) FROM reviews") == 0
    # a refused sheet does not spend the button: the borrower corrects it and sends again
    written = await b.call("action", {"room": room, "token": write["token"], "seq": ask["seq"],
                                      "input": {"stars": 5, "text": "친절하고 물건도 깨끗했어요"}})
    assert written["ok"], written
    item_ask = await bot(b, "물건 자체는 어땠나요?")
    assert (await b.call("action", {"room": room, "token": item_ask["buttons"][0]["token"],
                                    "input": {"stars": 4}}))["ok"]
    # the words were never a message of the room, for either person
    for c in (o, b):
        assert "친절하고 물건도" not in str(c.received("message", room))
        assert "친절하고 물건도" not in str((await c.call("history", {"room": room}))["messages"])
    for _ in range(100):
        if await market.db.fetchval("SELECT COUNT(*) FROM reviews") == 2:
            break
        await asyncio.sleep(0.03)
    status, page = await owner.call("GET", "/api/me/page")
    assert page["reviews"]["received"] == []  # double-blind: the owner has not written theirs
    assistant = (await market.chat.assistant_room(owner.id)).id
    told = await market.chat.history(owner.id, assistant)
    assert any("새 리뷰가 도착했어요" in m["text"] for m in told["messages"])  # said in the owner's own room
    assert page["lent"]["past"][0]["state"] == "SETTLED" and page["bank_account"]["account"].endswith("****")
    status, body = await owner.call("POST", f"/api/contracts/{cid}/reviews",
                                    json={"about": "borrower", "stars": 5, "text": "또 빌려드릴게요"})
    assert status == 201
    status, page = await owner.call("GET", "/api/me/page")
    assert {r["about"] for r in page["reviews"]["received"]} == {"owner", "item"}
    assert page["rating"]["count"] == 1 and page["trust"]["completed"] == 1
    status, profile = await borrower.call("GET", f"/api/users/{owner.id}")
    assert profile["rating"]["stars"] > 4 and profile["reviews"][0]["text"] in ("친절하고 물건도 깨끗했어요", "")
    status, _ = await owner.call("POST", f"/api/contracts/{cid}/reviews", json={"about": "borrower", "stars": 1})
    assert status == 409
    await o.call("message", {"room": room, "text": "/내정보"})
    mine = await bot(o, "평점 새 이웃 · 후기 1개")  # one review: no figure yet
    assert "완료한 거래 1건" in mine["text"]
    # the owner's rating now shows on their item cards
    assistant = (await market.chat.assistant_room(borrower.id)).id
    await b.call("join", {"room": assistant})
    await b.call("message", {"room": assistant, "text": "/주변 역삼동"})
    for _ in range(300):
        found = [m for m in b.received("message", assistant) if m.get("cards")]
        if found:
            break
        await asyncio.sleep(0.03)
    fields = dict(map(tuple, found[-1]["cards"][0]["fields"]))
    assert fields["주인 평점"] == "새 이웃 · 후기 1개"  # not "★4.2 (1)", which reads as a bug


async def test_an_owner_hears_of_an_inquiry_and_a_request_in_their_language_unless_muted(market: Market) -> None:
    english, muted, borrower = await user(market), await user(market), await user(market, "영어손님")
    await market.accounts.update_profile(await market.accounts.get(english), {"locale": "en"})
    await market.notifications.set_prefs(muted, {"new_inquiry": False, "request_received": False})
    tent, chair = await item(market, english, title="텐트"), await item(market, muted)
    await market.rentals.request(borrower, tent, *days(2, 2))
    await market.rentals.request(borrower, chair, *days(2, 2))
    rows = await market.db.fetchall("SELECT user_id, kind, text FROM notifications ORDER BY id")
    assert [(r["user_id"], r["kind"], r["text"]) for r in rows] == [
        (english, "new_inquiry", "영어손님 asked about 텐트."), (english, "request_received", "A rental request for 텐트.")]
