"""Rentals in one gateway's chat: the request button and its date question, readings the bot asks about, taken
dates answered with free ones as buttons, paying before a bank account is linked, forged bank callbacks,
cancelling and extending by command and button."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.keys import MARKET
from market.rentals.kdates import seoul_today
from tests.conftest import Chatter, _clean, sign_up
from tests.rentals.helpers import Bank, link


async def _bot(c: Chatter, room: int, contains: str, after: int = 0) -> dict[str, Any]:
    for _ in range(300):
        for m in c.received("message", room):
            if not m.get("hidden") and m["sender"]["kind"] == "bot" and contains in m["text"] and m["seq"] > after:
                return m  # type: ignore[no-any-return]
        await asyncio.sleep(0.03)
    raise AssertionError(f"no {contains!r} in {[m.get('text') for m in c.received('message', room)]}")


async def _notice(c: Chatter, room: int, contains: str) -> dict[str, Any]:
    """A refusal for this person alone: a toast (``notice``), never a message in the room."""
    for _ in range(300):
        for n in c.received("notice", room):
            if contains in n["message"]:
                return n  # type: ignore[no-any-return]
        await asyncio.sleep(0.03)
    raise AssertionError(f"no notice {contains!r} in {c.received('notice', room)}")


def _token(message: dict[str, Any], label: str) -> str:
    return next(b["token"] for b in message["buttons"] if b["label"].startswith(label))


async def _setup(client: TestClient, chatters: Any) -> tuple[Any, Any, Chatter, Chatter, int, int]:
    owner, borrower = await sign_up(client, "빌려줄게"), await sign_up(client, "빌릴게")
    item = await owner.new_item(price_per_day=5000, deposit=30000)
    o, b = await chatters(owner), await chatters(borrower)
    status, body = await borrower.call("POST", f"/api/items/{item['id']}/room")
    room = body["room"]["id"]
    for c in (o, b):
        await c.call("join", {"room": room})
    return owner, borrower, o, b, room, item["id"]


async def test_asking_for_dates_and_confirming_a_doubtful_reading(client: TestClient, chatters: Any) -> None:
    owner, borrower, o, b, room, item_id = await _setup(client, chatters)
    bank = Bank(client.app[MARKET].config.bank_url)
    assert bank
    status, body = await borrower.call("POST", f"/api/items/{item_id}/room")  # the deal room exists already
    market = client.app[MARKET]
    await b.call("message", {"room": room, "text": "/대여"})  # no dates
    await _notice(b, room, "날짜를 알려 주세요")
    await b.call("message", {"room": room, "text": "/대여 12/24"})
    asked = await _bot(b, room, "하루만 빌리시는 거죠?")
    assert "12월 24일" in asked["text"]
    assert (await o.call("action", {"room": room, "token": _token(asked, "네")}))["error"]["code"] == \
        "bot.button_not_yours"
    assert (await b.call("action", {"room": room, "token": _token(asked, "네")}))["ok"]
    card = await _bot(o, room, "대여를 요청했어요")
    assert dict(card["cards"][0]["fields"])["일수"] == "1"
    assert await market.db.fetchval("SELECT COUNT(*) FROM contracts") == 1
    # people talking in the deal room are not answered by the bot
    await b.call("message", {"room": room, "text": "안녕하세요 내일 뵐게요"})
    await asyncio.sleep(0.3)
    assert not [m for m in b.received("message", room) if not m.get("hidden") and m["sender"]["kind"] == "bot" and "안녕" in m["text"]]


async def test_taken_dates_get_free_ones_as_buttons(client: TestClient, chatters: Any) -> None:
    owner, borrower, o, b, room, item_id = await _setup(client, chatters)
    other = await sign_up(client, "먼저온")
    status, _ = await other.call("POST", "/api/contracts", json={"item_id": item_id, "dates": "내일부터 3일"})
    assert status == 201
    await b.call("message", {"room": room, "text": "/대여 내일부터 2일"})
    taken = await _bot(b, room, "이미 예약이 있어요")
    assert len(taken["buttons"]) == 3
    assert (await b.call("action", {"room": room, "token": taken["buttons"][0]["token"]}))["ok"]
    await _bot(o, room, "대여를 요청했어요")
    status, body = await borrower.call("GET", "/api/contracts")
    assert status == 200 and len(body["contracts"]) == 1 and body["contracts"][0]["days"] == 2


async def test_paying_before_linking_a_bank_account(client: TestClient, chatters: Any) -> None:
    owner, borrower, o, b, room, item_id = await _setup(client, chatters)
    bank = Bank(client.app[MARKET].config.bank_url)
    await b.call("message", {"room": room, "text": "/대여 내일부터 2일"})
    request = await _bot(o, room, "대여를 요청했어요")
    assert (await o.call("action", {"room": room, "token": _token(request, "수락")}))["ok"]
    accepted = await _bot(b, room, "주인이 수락했어요")
    assert (await b.call("action", {"room": room, "token": _token(accepted, "빌리페이로 결제")}))["ok"]
    prompt = await _bot(b, room, "먼저 은행 계좌를 연결해")
    link = prompt["buttons"][0]["url"]
    person = await bank.person("빌릴게", 100_000)
    async with client.get(link, headers=owner.auth, allow_redirects=False) as resp:
        assert resp.status == 403  # the owner sees the borrower's button too, but cannot use it
    async with client.get(link, headers=borrower.auth, allow_redirects=False) as resp:
        assert resp.status == 302
        to_bank = resp.headers["Location"]
    forged = {"state": "x" * 32, "code": "whatever"}
    async with client.get("/billipay/callback", params=forged, headers=borrower.auth) as resp:
        assert resp.status == 400
    denied = await bank.consent(to_bank, person, deny=True)
    async with client.get("/billipay/callback", params=denied, headers=borrower.auth) as resp:
        assert resp.status == 400 and "취소" in await resp.text()
    assert await client.app[MARKET].billipay.account(borrower.id) is None
    # start again (the first ticket and state are spent) and consent this time
    await b.call("message", {"room": room, "text": "/결제 link"})
    again = await _bot(b, room, "계좌를 연결해", after=prompt["seq"])
    async with client.get(again["buttons"][0]["url"], headers=borrower.auth, allow_redirects=False) as resp:
        back = await bank.consent(resp.headers["Location"], person)
    async with client.get("/billipay/callback", params=back, headers=borrower.auth) as resp:
        assert resp.status == 200 and f"/app#room={room}" in await resp.text()
    await _bot(b, room, "빌리페이에 연결됐어요")
    status, body = await borrower.call("GET", "/api/billipay/account")
    assert body["account"]["account"].endswith("****")
    # a first payment with the new account: a confirmation card for the borrower alone, paid with one press
    check = await _bot(b, room, "처음 결제해요")
    assert (await b.call("action", {"room": room, "token": _token(check, "결제")}))["ok"]
    await _bot(o, room, "빌릴게님이 결제했어요")
    assert await bank.balance_of(person) == 100_000 - (10000 + 500 + 30000)
    # the owner never saw the prompts, the bank or the account: only the seqs of those messages
    for m in o.received("message", room):
        assert "계좌" not in str(m) and body["account"]["bank_name"] not in str(m), m


async def test_cancelling_by_command_asks_first(client: TestClient, chatters: Any) -> None:
    owner, borrower, o, b, room, item_id = await _setup(client, chatters)
    await b.call("message", {"room": room, "text": f"/대여 {item_id} 이번 주말" if seoul_today().weekday() < 5
                             else f"/대여 {item_id} 다음 주말"})
    await _bot(o, room, "대여를 요청했어요")
    await b.call("message", {"room": room, "text": "/취소"})
    ask = await _bot(b, room, "정말 취소할까요?")
    assert (await b.call("action", {"room": room, "token": _token(ask, "취소하기")}))["ok"]
    await _bot(o, room, "대여가 취소됐어요")
    status, body = await borrower.call("GET", "/api/contracts")
    assert body["contracts"][0]["state"] == "CANCELLED"
    status, detail = await owner.call("GET", f"/api/contracts/{body['contracts'][0]['id']}")
    assert [e["kind"] for e in detail["events"]] == ["requested", "cancelled"]
    stranger = await sign_up(client, "구경꾼")
    status, _ = await stranger.call("GET", f"/api/contracts/{body['contracts'][0]['id']}")
    assert status == 404
    for bad in ({"item_id": item_id, "dates": "어제부터 2일"}, {"item_id": item_id, "start": "2020-01-01",
                                                          "end": "2020-01-02"},
                {"item_id": item_id, "start": "nope"}, {"item_id": "1 OR 1=1", "dates": "내일"}):
        status, body = await borrower.call("POST", "/api/contracts", json=bad)
        assert status in (400, 404), body


async def test_first_payment_shows_the_account_privately_and_points_out_another_holder(
        client: TestClient, chatters: Any) -> None:
    owner, borrower, o, b, room, item_id = await _setup(client, chatters)
    market = client.app[MARKET]
    bank = Bank(market.config.bank_url)
    person = await link(market, bank, borrower.id, 100_000, "빌릴게", confirmed=False, holder="김가족")
    await b.call("message", {"room": room, "text": "/대여 내일부터 2일"})
    request = await _bot(o, room, "대여를 요청했어요")
    assert (await o.call("action", {"room": room, "token": _token(request, "수락")}))["ok"]
    accepted = await _bot(b, room, "주인이 수락했어요")
    assert (await b.call("action", {"room": room, "token": _token(accepted, "빌리페이로 결제")}))["ok"]
    check = await _bot(b, room, "처음 결제해요")
    fields = dict(check["cards"][0]["fields"])
    assert fields["예금주"] == "김가족 (회원님 이름과 달라요)" and fields["결제 금액"] == "40,500원"
    assert fields["계좌"].endswith("****") and "김가족" in check["text"] and "빌릴게" in check["text"]
    assert await bank.balance_of(person) == 100_000  # nothing charged before the press
    assert (await o.call("action", {"room": room, "token": _token(check, "결제")}))["error"]["code"] == \
        "bot.button_not_yours"
    assert (await b.call("action", {"room": room, "token": _token(check, "결제")}))["ok"]
    await _bot(o, room, "빌릴게님이 결제했어요")
    assert await bank.balance_of(person) == 100_000 - 40_500
    hidden = [m for m in o.received("message", room) if m.get("hidden")]
    assert check["seq"] in {m["seq"] for m in hidden}
    assert "김가족" not in str(o.received("message", room))


async def test_an_extension_from_a_newly_linked_account_is_checked_by_the_borrower_first(
        client: TestClient, chatters: Any) -> None:
    owner, borrower, o, b, room, cid, bank = await _paid_in_room(client, chatters)
    market = client.app[MARKET]
    family = await link(market, bank, borrower.id, 100_000, "빌릴게", confirmed=False, holder="김가족")
    await b.call("message", {"room": room, "text": "/연장 모레"})
    asked = await _bot(o, room, "연장을 요청했어요")
    assert (await o.call("action", {"room": room, "token": _token(asked, "연장 승인")}))["ok"]
    check = await _bot(b, room, "새로 연결한 계좌를 확인해")
    assert check["audience"] == borrower.id and "김가족" in str(check["cards"][0]["fields"])
    await _bot(o, room, "계좌를 확인하면 알려")
    assert await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE purpose = %s", (f"ext:{cid}",)) == 0
    assert (await b.call("action", {"room": room, "token": _token(check, "이 계좌가 맞아요")}))["ok"]
    again = await _bot(o, room, "연장을 승인할까요")
    assert again["audience"] == owner.id
    assert (await o.call("action", {"room": room, "token": _token(again, "연장 승인")}))["ok"]
    extended = await _bot(b, room, "연장됐어요")
    assert await bank.balance_of(family) < 100_000 and "추가로" in extended["text"]
    assert "김가족" not in str(o.received("message", room))


async def _paid_in_room(client: TestClient, chatters: Any, *, handed: int = 2
                           ) -> tuple[Any, Any, Chatter, Chatter, int, int, Bank]:
    """A rental (today, one day) whose borrower has a linked, confirmed account, paid; handed over by both
    (``handed`` 2: in use), the owner only (1), or nobody (0)."""
    owner, borrower, o, b, room, item_id = await _setup(client, chatters)
    market = client.app[MARKET]
    bank = Bank(market.config.bank_url)
    await link(market, bank, borrower.id, 100_000, "빌릴게")
    c, _ = await market.rentals.request(borrower.id, item_id, seoul_today(), seoul_today())
    await market.rentals.accept(owner.id, c.id)
    await market.rentals.pay_now(borrower.id, c.id)
    for who in (owner, borrower)[:handed]:
        await market.rentals.hand_over(who.id, c.id)
    return owner, borrower, o, b, room, c.id, bank


async def test_an_extension_from_an_old_unverified_link_fails_and_asks_the_borrower_to_link(
        client: TestClient, chatters: Any) -> None:
    owner, borrower, o, b, room, cid, bank = await _paid_in_room(client, chatters)
    market = client.app[MARKET]
    await market.db.execute("UPDATE bank_links SET verified_at = NULL WHERE user_id = %s", (borrower.id,))
    await b.call("message", {"room": room, "text": "/연장 모레"})
    asked = await _bot(o, room, "연장을 요청했어요")
    approved = await o.call("action", {"room": room, "token": _token(asked, "연장 승인")})
    assert approved["ok"] is False and "연장하지 못했어요" in approved["error"]["message"]  # it did not happen
    assert "다시 연결해" not in approved["error"]["message"]
    told = await _bot(o, room, "연장하지 못했어요")
    assert "다시 연결해" not in told["text"] and told["audience"] == owner.id  # the outcome, not the bank's reason
    failed = await _bot(b, room, "연장하지 못했어요")
    assert "다시 연결해" in failed["text"] and failed["audience"] == borrower.id  # the reason: the borrower's alone
    assert "다시 연결해" not in str([m.get("text") for m in o.received("message", room)])
    prompt = await _bot(b, room, "계좌를 연결해", after=failed["seq"])
    assert prompt["audience"] == borrower.id and prompt["buttons"][0]["url"].startswith("/billipay/link?ticket=")
    assert (await market.rentals.get(cid)).ext_end_date is None
    assert "계좌를 연결해" not in str([m.get("text") for m in o.received("message", room)])


async def test_a_link_made_while_an_extension_waits_is_checked_then_the_owner_approves(
        client: TestClient, chatters: Any) -> None:
    owner, borrower, o, b, room, cid, bank = await _paid_in_room(client, chatters)
    market = client.app[MARKET]
    await link(market, bank, borrower.id, 100_000, "빌릴게", confirmed=False)  # a new account, not yet checked
    await b.call("message", {"room": room, "text": "/연장 모레"})
    asked = await _bot(o, room, "연장을 요청했어요")
    assert (await o.call("action", {"room": room, "token": _token(asked, "연장 승인")}))["ok"]
    first_card = await _bot(b, room, "새로 연결한 계좌를 확인해")
    # Instead of pressing, the borrower links yet another account from the deal room.
    await b.call("message", {"room": room, "text": "/결제 link"})
    prompt = await _bot(b, room, "계좌를 연결해", after=first_card["seq"])
    third = await bank.person("빌릴게", 100_000)
    async with client.get(prompt["buttons"][0]["url"], headers=borrower.auth, allow_redirects=False) as resp:
        back = await bank.consent(resp.headers["Location"], third)
    async with client.get("/billipay/callback", params=back, headers=borrower.auth) as resp:
        assert resp.status == 200
    card = await _bot(b, room, "새로 연결한 계좌를 확인해", after=prompt["seq"])
    stale = await b.call("action", {"room": room, "token": _token(first_card, "이 계좌가 맞아요")})
    assert stale["ok"]  # the old card names another account: the new one's card comes again, nothing confirmed
    assert await market.billipay.first_use(borrower.id) is not None
    assert (await b.call("action", {"room": room, "token": _token(card, "이 계좌가 맞아요")}))["ok"]
    again = await _bot(o, room, "연장을 승인할까요")
    assert (await o.call("action", {"room": room, "token": _token(again, "연장 승인")}))["ok"]
    await _bot(b, room, "연장됐어요")
    assert await bank.balance_of(third) < 100_000


async def test_the_bot_names_the_configured_hours_and_percentages(config: Any, chatters: Any) -> None:
    await _clean(config)
    custom = config.replace(rental_claim_window_h=48, rental_late_cancel_percent=30, rental_free_cancel_h=12,
                            rental_return_confirm_h=12)
    async with TestClient(TestServer(create_app(custom))) as client:
        owner, borrower = await sign_up(client, "설정주인"), await sign_up(client, "설정손님")
        item_id = (await owner.new_item(price_per_day=5000, deposit=30000))["id"]
        market = client.app[MARKET]
        o = await Chatter(owner, str(client.make_url("/"))).connect()
        b = await Chatter(borrower, str(client.make_url("/"))).connect()
        try:
            await link(market, Bank(market.config.bank_url), borrower.id, 100_000, "설정손님")
            c, _ = await market.rentals.request(borrower.id, item_id, seoul_today(), seoul_today())
            await market.rentals.accept(owner.id, c.id)
            await market.rentals.pay_now(borrower.id, c.id)
            for who in (o, b):
                await who.call("join", {"room": c.room_id})
            await b.call("message", {"room": c.room_id, "text": "/취소"})
            ask = await _bot(b, c.room_id, "정말 취소할까요?")
            assert "30%" in ask["text"] and "절반" not in ask["text"]
            await market.rentals.hand_over(owner.id, c.id)
            await market.rentals.hand_over(borrower.id, c.id)
            await market.rentals.mark_returned(borrower.id, c.id)
            declared = await _bot(o, c.room_id, "돌려줬다고")
            assert "12시간" in declared["text"] and "24" not in declared["text"]
            await market.rentals.mark_returned(owner.id, c.id)
            returned = await _bot(o, c.room_id, "반납됐어요")
            assert "48시간" in returned["text"] and "72" not in returned["text"]
        finally:
            await o.close()
            await b.close()


async def test_both_hear_when_a_rental_nobody_handed_over_is_cancelled(client: TestClient, chatters: Any) -> None:
    owner, borrower, o, b, room, item_id = await _setup(client, chatters)
    market = client.app[MARKET]
    await link(market, Bank(market.config.bank_url), borrower.id, 100_000, "빌릴게")
    c, _ = await market.rentals.request(borrower.id, item_id, seoul_today(), seoul_today())
    await market.rentals.accept(owner.id, c.id)
    await market.rentals.pay_now(borrower.id, c.id)
    await market.db.execute("UPDATE contracts SET start_date = start_date - INTERVAL 2 DAY WHERE id = %s", (c.id,))
    await market.db.execute("UPDATE contract_events SET created_at = created_at - INTERVAL 2 DAY"
                            " WHERE contract_id = %s AND kind = 'paid'", (c.id,))
    await market.rentals.tick()
    told = await _bot(b, room, "전달을 확인하지 않아")
    assert f"{c.total:,}원" in told["text"] and told["audience"] == borrower.id  # the refund is the borrower's
    owners = await _bot(o, room, "전달을 확인하지 않아")
    assert f"{c.total:,}" not in owners["text"] and "모두 돌려드려요" in owners["text"]


async def test_the_owner_answers_a_declared_return_with_buttons_and_a_contested_hand_over_reaches_an_operator(
        client: TestClient, chatters: Any) -> None:
    owner, borrower, o, b, room, cid, bank = await _paid_in_room(client, chatters)
    market = client.app[MARKET]
    await link(market, bank, owner.id, 0, "빌려줄게")
    c = await market.rentals.get(cid)
    started = await _bot(b, room, "대여가 시작됐어요")
    assert (await b.call("action", {"room": room, "token": _token(started, "반납 완료")}))["ok"]
    declared = await _bot(o, room, "돌려줬다고 알렸어요")
    assert [x["label"] for x in declared["buttons"]] == ["반납 받음", "아직 못 받았어요"]
    assert (await b.call("action", {"room": room, "token": _token(declared, "아직 못 받았어요")}))["error"]["code"] \
        == "bot.button_not_yours"
    assert (await o.call("action", {"room": room, "token": _token(declared, "아직 못 받았어요")}))["ok"]
    told = await _bot(b, room, "아직 물건을 받지 못했다고")
    assert "연체료" in told["text"] and (await market.rentals.get(c.id)).state == "IN_USE"
    assert (await b.call("action", {"room": room, "token": _token(told, "반납 완료")}))["ok"]  # gave it back now
    again = await _bot(o, room, "돌려줬다고 알렸어요", after=told["seq"])
    assert (await o.call("action", {"room": room, "token": _token(again, "반납 받음")}))["ok"]
    await _bot(b, room, "반납이 확인됐어요")
    assert (await market.rentals.get(c.id)).state == "RETURNED"


async def test_a_contested_hand_over_tells_both_that_an_operator_is_looking(client: TestClient, chatters: Any) -> None:
    owner, borrower, o, b, room, cid, bank = await _paid_in_room(client, chatters, handed=1)
    market = client.app[MARKET]
    c = await market.rentals.get(cid)
    handed = await _bot(b, room, "주인이 물건을 전달했어요")
    assert (await b.call("action", {"room": room, "token": _token(handed, "아직 못 받았어요")}))["ok"]
    for who in (o, b):
        seen = await _bot(who, room, "운영자가 확인하고 있어요 · 보통 2일 안에")
        assert "받지 못했다고" in seen["text"] and not seen.get("buttons")
    assert (await market.rentals.get(c.id)).state == "DISPUTED"


async def test_a_refused_payments_reason_is_the_borrowers_alone(client: TestClient, chatters: Any) -> None:
    owner, borrower, o, b, room, item_id = await _setup(client, chatters)
    market = client.app[MARKET]
    await link(market, Bank(market.config.bank_url), borrower.id, 1_000, "빌릴게")  # far too little
    c, _ = await market.rentals.request(borrower.id, item_id, seoul_today(), seoul_today())
    await market.rentals.accept(owner.id, c.id)
    accepted = await _bot(b, room, "수락했어요")
    refused = await b.call("action", {"room": room, "token": _token(accepted, "빌리페이로 결제")})
    assert refused["ok"] is False and "잔액" in refused["error"]["message"]  # the outcome, truthfully, in the answer
    failed = await _bot(b, room, "결제가 되지 않았어요")
    assert failed["audience"] == borrower.id and "잔액" in failed["text"]
    assert [x["label"] for x in failed["buttons"]][0].startswith("빌리페이로 결제")  # try again, another account …
    told = await _bot(o, room, "빌리는 분의 결제가 아직 되지 않았어요")
    assert told["audience"] == owner.id
    assert "잔액" not in str([m.get("text") for m in o.received("message", room)])
    # nor does the contract's history tell the owner what the bank said
    for person, sees in ((owner, False), (borrower, True)):
        status, detail = await person.call("GET", f"/api/contracts/{c.id}")
        failed_events = [e for e in detail["events"] if e["kind"] == "payment_failed"]
        assert failed_events and all(("reason" in e["data"]) is sees for e in failed_events)


async def test_a_refusal_is_said_to_the_person_who_pressed_or_typed_alone(client: TestClient, chatters: Any) -> None:
    owner, borrower, o, b, room, item_id = await _setup(client, chatters)
    before = {m["seq"] for m in b.received("message", room)}
    await b.call("message", {"room": room, "text": "/결제"})  # nothing to pay yet
    await b.call("message", {"room": room, "text": "/반납"})  # no rental in this room
    await b.call("message", {"room": room, "text": "/대어"})  # a typo
    for text in ("결제할 대여가 없어요", "진행 중인 대여가 없어요", "명령어는 몰라요"):
        await _notice(b, room, text)
    await asyncio.sleep(0.3)
    # none of it is stored in the room (the sender's own three commands come back in their acks, not as events)
    new = [m for m in b.received("message", room) if m["seq"] not in before]
    assert new == [], new
    assert o.received("notice", room) == []  # nor does it reach the other person
    # a press the machine refuses answers the presser in the acknowledgement, and nothing is stored either
    await b.call("message", {"room": room, "text": "/대여 내일부터 2일"})
    request = await _bot(o, room, "대여를 요청했어요")
    count = len(b.received("message", room))
    await client.app[MARKET].rentals.cancel(borrower.id, (await client.app[MARKET].rentals.in_room(room)).id)
    late = await o.call("action", {"room": room, "token": _token(request, "수락")})
    assert late["ok"] is False and late["error"]["message"]
    await asyncio.sleep(0.3)
    assert all("hidden" in m or late["error"]["message"] not in m.get("text", "")
               for m in b.received("message", room)[count:] + o.received("message", room))


async def test_a_press_says_what_happened_refused_unreachable_or_still_unknown(client: TestClient,
                                                                             chatters: Any) -> None:
    """Three outcomes, three answers: the bank cannot be reached (nothing was sent), the bank has not answered
    (pending: the result inquiry will tell; do not pay again), the payment went through."""
    owner, borrower, o, b, room, item_id = await _setup(client, chatters)
    market = client.app[MARKET]
    bank = Bank(market.config.bank_url)
    person = await link(market, bank, borrower.id, 100_000, "빌릴게")
    c, _ = await market.rentals.request(borrower.id, item_id, seoul_today(), seoul_today())
    await market.rentals.accept(owner.id, c.id)
    accepted = await _bot(b, room, "수락했어요")
    pay = _token(accepted, "빌리페이로 결제")
    # The platform's own token is in hand (whether some job fetched it already depends on the hour): the bank
    # goes away between it and the payment, so the payment's transfer is written and fails.
    await market.billipay._platform_token()
    real = market.billipay.client._http
    market.billipay.client._http = httpx.AsyncClient(base_url="http://127.0.0.1:9", timeout=5)  # no bank there
    try:
        away = await b.call("action", {"room": room, "token": pay})
    finally:
        await market.billipay.client._http.aclose()
        market.billipay.client._http = real
    assert away["ok"] is False and "은행에 연결할 수 없어요" in away["error"]["message"]
    assert "거절" not in away["error"]["message"] and await bank.balance_of(person) == 100_000
    assert await market.db.fetchval("SELECT state FROM transfers WHERE contract_id = %s", (c.id,)) == "failed"
    again = await _bot(b, room, "결제가 되지 않았어요", after=accepted["seq"])
    await bank.fail("withdraw", "timeout", applied=True)  # sent, and the answer lost …
    await bank.fail("result", "5xx")  # … and the bank cannot say yet either
    slow = await b.call("action", {"room": room, "token": _token(again, "빌리페이로 결제")})
    assert slow["ok"] is True and slow["pending"] is True and "다시 결제하지 않아도 돼요" in slow["message"]
    assert (await market.rentals.get(c.id)).state == "ACCEPTED"
