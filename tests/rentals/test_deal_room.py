"""The deal room for two: every step goes to the person who acts, with their buttons, and the other hears a
one-line status; each new step retires the buttons before it; the deal is pinned on top for each person; and
the two agree on a hand-over appointment whose time the reminders and the no-show rule then follow."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.keys import MARKET
from market.clock import day_start
from market.errors import MarketError
from market.rentals.kdates import seoul_today
from market.service import Market
from tests.conftest import Chatter, sign_up
from tests.rentals.helpers import Bank, link, paid_rental

PLACEHOLDER = {"room", "seq", "id", "hidden", "unread"}


async def _said(c: Chatter, room: int, contains: str, after: int = 0) -> dict[str, Any]:
    for _ in range(300):
        for m in c.received("message", room):
            if not m.get("hidden") and contains in m.get("text", "") and m["seq"] > after:
                return m  # type: ignore[no-any-return]
        await asyncio.sleep(0.03)
    raise AssertionError(f"no {contains!r} in {[m.get('text') for m in c.received('message', room)]}")


def _labels(m: dict[str, Any]) -> list[str]:
    return [b["label"] for b in m.get("buttons") or []]


def _token(m: dict[str, Any], label: str) -> str:
    return next(b["token"] for b in m["buttons"] if b["label"].startswith(label))


async def _hidden_from(c: Chatter, room: int, seq: int) -> None:
    """``c`` holds only the place of message ``seq``."""
    for _ in range(300):
        got = [m for m in c.received("message", room) if m["seq"] == seq]
        if got:
            assert set(got[0]) == PLACEHOLDER, got[0]
            return
        await asyncio.sleep(0.03)
    raise AssertionError(f"seq {seq} never reached the other person")


async def _deal_room(client: TestClient, chatters: Any, owner_name: str, borrower_name: str, balance: int,
                     **item: Any) -> tuple[Any, Any, Chatter, Chatter, int, dict[str, Any]]:
    """Two people in a deal room (both connected and in it), the borrower with a linked account."""
    market = client.app[MARKET]
    owner, borrower = await sign_up(client, owner_name), await sign_up(client, borrower_name)
    made = await owner.new_item(**item)
    await link(market, Bank(market.config.bank_url), borrower.id, balance, borrower_name)
    o, b = await chatters(owner), await chatters(borrower)
    status, body = await borrower.call("POST", f"/api/items/{made['id']}/room")
    room = body["room"]["id"]
    for c in (o, b):
        await c.call("join", {"room": room})
    return owner, borrower, o, b, room, made


async def test_each_step_is_the_actors_and_the_other_hears_a_status_line(client: TestClient, chatters: Any) -> None:
    market = client.app[MARKET]
    owner, borrower, o, b, room, item = await _deal_room(client, chatters, "주인장", "빌림이", 100_000,
                                                          price_per_day=5000, deposit=30000)
    status, deal = await borrower.call("GET", f"/api/rooms/{room}/deal")
    assert deal["deal"]["chip"] == "문의 중" and deal["deal"]["contract"] is None

    # The date picker's total and words: the borrower sends them, and the owner reads a sentence, not a command.
    start = seoul_today() + timedelta(days=2)
    status, quote = await borrower.call("GET", f"/api/items/{item['id']}/quote",
                                        params={"start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat()})
    assert status == 200 and quote["quote"] == {"days": 2, "rent": 10000, "fee": 500, "deposit": 30000, "total": 40500}
    assert quote["message"].endswith(", 2일 빌리고 싶어요") and f"{start.month}월 {start.day}일(" in quote["message"]
    status, bad = await borrower.call("GET", f"/api/items/{item['id']}/quote", params={"start": "2020-01-01",
                                                                                        "end": "2020-01-02"})
    assert status == 400
    await b.call("message", {"room": room, "text": quote["message"]})
    assert (await _said(o, room, "빌리고 싶어요"))["sender"]["kind"] == "user"

    request = await _said(o, room, "빌림이님이 대여를 요청했어요")
    assert request["audience"] == owner.id and _labels(request) == ["수락", "거절"]
    await _hidden_from(b, room, request["seq"])
    waiting = await _said(b, room, "주인의 수락을 기다리고 있어요")
    assert waiting["audience"] == borrower.id and not waiting.get("buttons") and not waiting.get("cards")
    await _hidden_from(o, room, waiting["seq"])

    # 수락: the owner's used buttons retire (both of them, on the owner's clients and in history)
    assert (await o.call("action", {"room": room, "token": _token(request, "수락"), "seq": request["seq"]}))["ok"]
    for _ in range(100):
        retired = [u for u in o.received("message_update", room) if u["seq"] == request["seq"]]
        if retired and all(x.get("disabled") for x in retired[-1]["buttons"]):
            break
        await asyncio.sleep(0.03)
    assert all(x == {"label": x["label"], "disabled": True} for x in retired[-1]["buttons"])
    assert not [u for u in b.received("message_update", room) if u["seq"] == request["seq"]]  # not the borrower's
    page = {m["seq"]: m for m in (await o.call("history", {"room": room}))["messages"]}
    assert all(x.get("disabled") for x in page[request["seq"]]["buttons"])
    accepted = await _said(b, room, "주인이 수락했어요")
    assert _labels(accepted) == ["빌리페이로 결제 (40,500원)"]
    assert not (await _said(o, room, "수락했어요. 빌리는 분이")).get("buttons")

    status, deal = await borrower.call("GET", f"/api/rooms/{room}/deal")
    assert deal["deal"]["chip"] == "결제 대기" and [a["label"] for a in deal["deal"]["actions"]] == ["요청 취소"]
    assert deal["deal"]["contract"]["amount"] == 40500 and deal["deal"]["contract"]["amount_label"] == "결제 금액"
    status, deal = await owner.call("GET", f"/api/rooms/{room}/deal")
    assert deal["deal"]["contract"]["amount"] == 10000 and deal["deal"]["contract"]["amount_label"] == "받을 대여료"
    assert any(u["room"] == room for u in b.received("deal_update"))  # clients are told to fetch it again

    # 결제: one press; each gets their own hand-over button and 약속 잡기
    assert (await b.call("action", {"room": room, "token": _token(accepted, "빌리페이로"), "seq": accepted["seq"]}))["ok"]
    mine = await _said(b, room, "결제가 끝났어요 (40,500원)")
    theirs = await _said(o, room, "빌림이님이 결제했어요")
    assert _labels(mine) == ["약속 잡기", "수령 완료"] and _labels(theirs) == ["약속 잡기", "전달 완료"]
    assert "40,500" not in theirs["text"]

    # 약속 잡기: the borrower proposes; a wrong sheet is refused in the answer and changes nothing
    cid = deal["deal"]["contract"]["id"]
    sheet = next(x for x in mine["buttons"] if x["label"] == "약속 잡기")
    assert sheet["form"] == "appointment"
    meet = f"{start.isoformat()}T14:00"
    for wrong in ({"at": "2020-01-01T10:00", "place": "역삼역"}, {"at": meet, "place": ""}, {"at": "내일", "place": "역"},
                  {"at": meet, "place": "x" * 101}):
        refused = await b.call("action", {"room": room, "token": sheet["token"], "input": wrong})
        assert refused["ok"] is False and refused["error"]["message"], wrong
    assert (await market.rentals.get(cid)).appt_proposed_by is None
    sent = await b.call("action", {"room": room, "token": sheet["token"], "seq": mine["seq"],
                                   "input": {"at": meet, "place": "역삼역 3번 출구"}})
    assert sent == {"ok": True, "handled": True, "message": "약속을 제안했어요."}
    proposal = await _said(o, room, "빌림이님이 약속을 제안했어요")
    assert f"{start.month}월 {start.day}일" in proposal["text"] and "14:00, 역삼역 3번 출구" in proposal["text"]
    assert _labels(proposal) == ["이 약속으로 할게요", "다른 시간 제안", "전달 완료"]
    assert _labels(await _said(b, room, "약속을 제안했어요:")) == ["약속 잡기", "수령 완료"]  # no agreeing to oneself
    # a borrower cannot agree to their own proposal
    assert (await market.rentals.get(cid)).appt_proposed_by == borrower.id
    assert (await o.call("action", {"room": room, "token": _token(proposal, "이 약속으로"), "seq": proposal["seq"]}))["ok"]
    for c in (o, b):
        agreed = await _said(c, room, "약속이 정해졌어요")
        assert "14:00, 역삼역 3번 출구" in agreed["text"]
    for person in (owner, borrower):
        status, deal = await person.call("GET", f"/api/rooms/{room}/deal")
        assert deal["deal"]["chip"] == "예약됨" and deal["deal"]["contract"]["appointment"].endswith(
            "14:00 · 역삼역 3번 출구")
        status, rooms = await person.call("GET", "/api/rooms")
        assert next(r for r in rooms["rooms"] if r["id"] == room)["deal_chip"] == "예약됨"
    stranger = await sign_up(client, "구경꾼")
    assert (await stranger.call("GET", f"/api/rooms/{room}/deal"))[0] == 404


async def test_the_agreed_time_moves_the_reminder_and_the_no_show_rule(market: Market) -> None:
    assert market.config.bank_url
    bank = Bank(market.config.bank_url)
    cid, owner, borrower = await paid_rental(market, bank, start=0, length=2)  # today and tomorrow
    clock = market.rentals.clock
    tomorrow = seoul_today() + timedelta(days=1)
    await market.rentals.propose_appointment(borrower, cid, f"{tomorrow.isoformat()}T10:00", "역삼역 3번 출구")
    proposed = (await market.rentals.get(cid)).appt_proposed_at
    assert proposed is not None
    with pytest.raises(MarketError) as own:
        await market.rentals.agree_appointment(borrower, cid, proposed.isoformat())  # one's own proposal
    assert own.value.code == "rental.no_appointment"
    # the borrower proposes again (09:00); the owner's yes to the 10:00 proposal (an old tab) binds nobody
    await market.rentals.propose_appointment(borrower, cid, f"{tomorrow.isoformat()}T09:00", "역삼역 2번 출구")
    with pytest.raises(MarketError) as stale:
        await market.rentals.agree_appointment(owner, cid, proposed.isoformat())
    assert stale.value.code == "rental.no_appointment" and (await market.rentals.get(cid)).appointment_at is None
    await market.rentals.propose_appointment(borrower, cid, f"{tomorrow.isoformat()}T10:00", "역삼역 3번 출구")
    c = await market.rentals.agree_appointment(owner, cid, proposed.isoformat())
    assert c.appointment_at == day_start(tomorrow) + timedelta(hours=10) and c.appointment_place == "역삼역 3번 출구"
    assert c.appt_proposed_by is None
    # A day after the start day began the rental would have been a no-show; the agreed time is later.
    clock.offset = day_start(seoul_today()) + timedelta(hours=25) - clock.now() + clock.offset
    await market.rentals.tick()
    assert (await market.rentals.get(cid)).state == "PAID"
    # two hours before the meeting: one reminder
    clock.offset = day_start(tomorrow) + timedelta(hours=8, minutes=30) - clock.now() + clock.offset
    await market.rentals.tick()
    await market.rentals.tick()
    kinds = [e["kind"] for e in await market.rentals.events(cid)]
    assert kinds.count("appointment_soon") == 1
    # a day after the agreed time, nobody having handed over: no-show, all refunded
    clock.offset = day_start(tomorrow) + timedelta(hours=34, minutes=1) - clock.now() + clock.offset
    await market.rentals.tick()
    assert (await market.rentals.get(cid)).state == "CANCELLED"
    # an appointment after the return date is refused
    clock.offset = timedelta()
    cid2, owner2, borrower2 = await paid_rental(market, bank, start=1, length=1)
    late = f"{(seoul_today() + timedelta(days=3)).isoformat()}T10:00"
    with pytest.raises(MarketError) as after_end:
        await market.rentals.propose_appointment(borrower2, cid2, late, "역삼역")
    assert after_end.value.code == "rental.bad_appointment_time"
    assert (await market.rentals.get(cid2)).appt_proposed_by is None


async def test_an_announcement_repeated_after_a_crash_keeps_its_buttons_live(client: TestClient,
                                                                             chatters: Any) -> None:
    """The scheduler announces an event again when the first try stopped midway: the step's messages are stored
    once (the same seqs), and its buttons stay live — only the steps before it retire."""
    market = client.app[MARKET]
    owner, borrower = await sign_up(client, "다시주인"), await sign_up(client, "다시손님")
    item = await owner.new_item()
    c, _ = await market.rentals.request(borrower.id, item["id"], seoul_today() + timedelta(days=2),
                                        seoul_today() + timedelta(days=3))
    await market.rentals.accept(owner.id, c.id)
    accepted = [e for e in await market.rentals.events(c.id) if e["kind"] == "accepted"][0]
    last = await market.db.fetchval("SELECT last_seq FROM rooms WHERE id = %s", (c.room_id,))
    # the first try stopped after posting, before the event was marked announced: the scheduler announces it again
    await market.db.execute("UPDATE contract_events SET announced_at = NULL WHERE id = %s", (accepted["id"],))
    assert await market.rentals.flush(c.id) == 1
    assert await market.db.fetchval("SELECT last_seq FROM rooms WHERE id = %s", (c.room_id,)) == last
    page = (await market.chat.history(borrower.id, c.room_id))["messages"]
    pay = [m for m in page if not m.get("hidden") and "주인이 수락했어요" in m.get("text", "")]
    assert len(pay) == 1 and pay[0]["buttons"][0]["label"].startswith("빌리페이로 결제")
    assert not pay[0]["buttons"][0].get("disabled"), pay[0]["buttons"]
    request = [m for m in (await market.chat.history(owner.id, c.room_id))["messages"]
               if not m.get("hidden") and "대여를 요청했어요" in m.get("text", "")]
    assert all(b.get("disabled") for b in request[0]["buttons"])  # the step before it: retired


async def _announced(market: Market, cid: int, room: int) -> tuple[Any, list[tuple[int, int | None]], list[int]]:
    """The request event's announced_at, the room's messages (seq, audience) and its live buttons' seqs."""
    at = await market.db.fetchval("SELECT announced_at FROM contract_events WHERE contract_id = %s AND"
                                  " kind = 'requested'", (cid,))
    messages = [(r["seq"], r["audience_id"]) for r in await market.db.fetchall(
        "SELECT seq, audience_id FROM messages WHERE room_id = %s ORDER BY seq", (room,))]
    live = [r["seq"] for r in await market.db.fetchall(
        "SELECT seq FROM live_buttons WHERE room_id = %s AND topic = %s ORDER BY seq", (room, f"c{cid}"))]
    return at, messages, live


async def test_a_request_is_marked_announced_with_its_messages_and_a_failed_store_leaves_it_to_the_scheduler(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request's first event is marked announced in the transaction that stores its two lines (and keeps the
    owner's buttons live): if that transaction fails, none of it is written, and the scheduler's announcement
    stores them once, marked; if the lines were stored already (a process that stopped before marking them), the
    repeat finds them, marks the event and keeps their buttons live."""
    market = client.app[MARKET]
    owner, borrower = await sign_up(client, "표시주인"), await sign_up(client, "표시손님")
    item = await owner.new_item()
    start = seoul_today() + timedelta(days=2)
    c, _ = await market.rentals.request(borrower.id, item["id"], start, start + timedelta(days=1))
    at, messages, live = await _announced(market, c.id, c.room_id)
    assert at is not None and messages == [(1, owner.id), (2, borrower.id)] and live == [1]

    # the writer's transaction fails: the request stands, unannounced, with no message and no live button
    writer = market.chat.writer
    real = writer._commit_with_retry
    failures = []

    async def failing(batch: Any) -> Any:
        failures.append(len(batch))
        raise RuntimeError("the database went away mid-commit")

    monkeypatch.setattr(writer, "_commit_with_retry", failing)
    other = await sign_up(client, "표시손님2")
    c2, _ = await market.rentals.request(other.id, item["id"], start + timedelta(days=4), start + timedelta(days=5))
    monkeypatch.setattr(writer, "_commit_with_retry", real)
    assert failures and (await market.rentals.get(c2.id)).state == "REQUESTED"
    assert await _announced(market, c2.id, c2.room_id) == (None, [], [])
    assert await market.rentals.flush(c2.id) == 1  # the scheduler's announcement (unannounced events)
    at, messages, live = await _announced(market, c2.id, c2.room_id)
    assert at is not None and messages == [(1, owner.id), (2, other.id)] and live == [1]

    # stored, but neither marked nor kept live (a process from before they went together stopped there)
    await market.db.execute("UPDATE contract_events SET announced_at = NULL WHERE contract_id = %s", (c2.id,))
    await market.db.execute("DELETE FROM live_buttons WHERE room_id = %s", (c2.room_id,))
    event = [e for e in await market.rentals.events(c2.id) if e["kind"] == "requested"][0]
    assert await market.rentals.flush(c2.id, fresh=[{**event, "contract": c2}]) == 1
    at, messages, live = await _announced(market, c2.id, c2.room_id)
    assert at is not None and messages == [(1, owner.id), (2, other.id)] and live == [1]


async def test_what_one_person_types_in_a_deal_room_is_answered_to_them_alone(client: TestClient,
                                                                              chatters: Any) -> None:
    market = client.app[MARKET]
    owner, borrower, o, b, room, item = await _deal_room(client, chatters, "조용주인", "조용손님", 50_000)
    await b.call("message", {"room": room, "text": "/내정보"})  # the borrower's bank account is in the answer
    mine = await _said(b, room, "평점")
    assert mine["audience"] == borrower.id
    await _hidden_from(o, room, mine["seq"])
    await b.call("message", {"room": room, "text": f"/물품 {item['id']}"})
    card = await _said(b, room, "물건 정보")
    assert card["audience"] == borrower.id
    await _hidden_from(o, room, card["seq"])
    # the date picker in English: its exact dates make the request, whatever its words
    await market.db.execute("UPDATE users SET locale = 'en' WHERE id = %s", (borrower.id,))
    start = seoul_today() + timedelta(days=3)
    status, quote = await borrower.call("GET", f"/api/items/{item['id']}/quote", headers={"Accept-Language": "en"},
                                        params={"start": start.isoformat(), "end": start.isoformat()})
    await b.call("message", {"room": room, "text": quote["message"],
                             "dates": {"start": start.isoformat(), "end": start.isoformat()}})
    asked = await _said(o, room, "조용손님님이 대여를 요청했어요")  # each reads their own language
    assert asked["audience"] == owner.id
    assert "Request sent" in (await _said(b, room, "Waiting for the owner"))["text"]
    c = await market.rentals.in_room(room)
    assert c is not None and (c.start_date, c.end_date) == (start, start)
    status, acct = await borrower.call("GET", "/api/billipay/account")
    number = acct["account"]["account"]
    assert number in mine["text"]
    for person in (owner, borrower):  # the owner's history never holds the borrower's /내정보 answer
        status, page = await person.call("GET", f"/api/rooms/{room}/messages")
        assert (number in str(page)) is (person is borrower)


async def test_each_persons_lines_arrive_in_seq_order_so_no_client_sees_a_gap(client: TestClient,
                                                                               chatters: Any) -> None:
    """An announcement's two lines (the owner's with buttons, the borrower's without) are stored together and
    reach every client in seq order: a later seq first would look like a gap and send the widget catching up."""
    owner, borrower, o, b, room, item = await _deal_room(client, chatters, "순서주인", "순서빌림", 100_000,
                                                          price_per_day=5000, deposit=30000)
    start = seoul_today() + timedelta(days=2)
    status, quote = await borrower.call("GET", f"/api/items/{item['id']}/quote",
                                        params={"start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat()})
    await b.call("message", {"room": room, "text": quote["message"]})
    request = await _said(o, room, "님이 대여를 요청했어요")
    waiting = await _said(b, room, "주인의 수락을 기다리고 있어요")
    assert waiting["seq"] == request["seq"] + 1  # stored in one transaction, the owner's first
    for c in (o, b):
        await _hidden_from(c, room, (waiting if c is o else request)["seq"])
        seqs = [m["seq"] for m in c.received("message", room)]
        assert seqs == sorted(seqs), seqs


async def test_words_typed_in_a_deal_room_answer_the_bot_only_for_whom_it_asked(client: TestClient,
                                                                                chatters: Any) -> None:
    """The bot reads what people type to each other only when it asked that person something there (whether it
    did rides with the message's send check): the borrower's dates answer its question, the owner's same words are
    just chat."""
    market = client.app[MARKET]
    owner, borrower, o, b, room, item = await _deal_room(client, chatters, "물음주인", "물음손님", 50_000)
    card = None
    for _ in range(300):
        card = next((m for m in b.received("message", room) for c in m.get("cards") or []
                     if any(x["label"] == "대여 요청" for x in c.get("buttons") or [])), None)
        if card is not None:
            break
        await asyncio.sleep(0.03)
    assert card is not None
    request = next(x for c in card["cards"] for x in c["buttons"] if x["label"] == "대여 요청")
    assert (await b.call("action", {"room": room, "token": request["token"]}))["ok"]
    asked = await _said(b, room, "언제 빌릴까요")
    assert asked["audience"] == borrower.id
    said = await o.call("message", {"room": room, "text": "내일부터 2일"})  # the owner was asked nothing
    assert said["ok"]
    await b.call("message", {"room": room, "text": "내일부터 2일"})
    await _said(o, room, "물음손님님이 대여를 요청했어요", after=said["message"]["seq"])
    c = await market.rentals.in_room(room)
    tomorrow = seoul_today() + timedelta(days=1)
    assert c is not None and c.borrower_id == borrower.id and (c.start_date, c.end_date) == (
        tomorrow, tomorrow + timedelta(days=1))
    # nothing of the bot's answered the owner's words: every bot line after them is about the borrower's request
    after = [m for m in o.received("message", room) if m["seq"] > said["message"]["seq"] and not m.get("hidden")
             and m["sender"]["kind"] == "bot"]
    assert after and all("요청" in m["text"] for m in after), [m["text"] for m in after]
