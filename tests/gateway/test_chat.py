"""Chat over Socket.IO with real clients: rooms, durable ordered messages, catch-up, receipts, limits."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
import socketio
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from gateway.keys import MARKET
from market.service import Market
from tests.conftest import Person, image_bytes, sign_up


async def _deal(client: TestClient) -> tuple[Person, Person, dict[str, Any], int]:
    owner = await sign_up(client, nickname="민지")
    borrower = await sign_up(client, nickname="준호")
    item = await owner.new_item(title="4인용 텐트")
    # The chat alone (no bot introductions): a deal room whose first message is one both members see.
    chat = client.app[MARKET].chat
    room, created = await chat.open_deal_room(item["id"], borrower.id)
    assert created
    await chat.post(room.id, "준호님이 이 물건을 문의했어요.", kind="system")
    return owner, borrower, item, room.id


async def test_a_socket_without_a_session_is_refused_with_a_reason(client: TestClient) -> None:
    reasons: list[Any] = []
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("connect_error", lambda data: reasons.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(str(client.make_url("/")), auth={"token": "forged"}, transports=["websocket"])
    assert reasons == [{"message": "로그인이 필요해요. 다시 로그인해 주세요.", "data": {"code": "chat.login_required"}}]


async def test_an_inquiry_opens_one_deal_room_that_the_owner_hears_about(client: TestClient, chatters: Any) -> None:
    owner = await sign_up(client, nickname="민지")
    borrower = await sign_up(client, nickname="준호")
    item = await owner.new_item(title="4인용 텐트")
    owner_chat = await chatters(owner)
    status, body = await borrower.call("POST", f"/api/items/{item['id']}/room")
    assert status == 201 and body["created"] is True
    room = body["room"]
    assert room["kind"] == "deal" and room["role"] == "borrower" and room["other"]["nickname"] == "민지"
    assert room["item"]["title"] == "4인용 텐트"
    for n in range(1, 5):  # besides the unread-notification badges (on connect, and for the inquiry)
        updates = [u for u in await owner_chat.wait_for("room_update", n) if "room" in u]
        if updates:
            break
    assert updates == [{"room": room["id"], "new": True}]
    badges = [u["notifications"] for u in owner_chat.received("room_update") if "notifications" in u]
    assert set(badges) <= {0, 1} and 1 in badges
    assert body["suggest"] == "안녕하세요! 4인용 텐트 빌릴 수 있을까요?"  # a first message to offer the asker
    joined = await owner_chat.call("join", {"room": room["id"]})
    assert joined["ok"] and joined["kind"] == "deal"
    # Each person is introduced privately: the owner hears who asks (and their record), the asker gets the item
    # with the 대여 요청 button; neither sees the other's.
    mine, hidden = [m for m in joined["messages"] if not m.get("hidden")], [m for m in joined["messages"] if m.get("hidden")]
    card = mine[0]
    assert card["sender"]["kind"] == "bot" and card["text"].startswith("준호님이 이 물건에 대해 문의했어요.")
    assert card["cards"][0]["title"].endswith("4인용 텐트") and not card["cards"][0]["buttons"]
    assert len(mine) == 1 and len(hidden) == 1 and set(hidden[0]) == {"room", "seq", "id", "hidden"}
    again = await borrower.call("POST", f"/api/items/{item['id']}/room")
    assert again[0] == 200 and again[1]["room"]["id"] == room["id"] and again[1]["created"] is False
    status, mine = await owner.call("POST", f"/api/items/{item['id']}/room")
    assert status == 409 and mine["error"]["code"] == "chat.own_item"
    assert (await borrower.call("POST", "/api/items/99999/room"))[0] == 404


async def test_a_message_is_stored_with_the_next_seq_and_reaches_the_other_member(
        client: TestClient, chatters: Any) -> None:
    owner, borrower, _, room = await _deal(client)
    o, b = await chatters(owner), await chatters(borrower)
    ack = await b.call("message", {"room": room, "text": "안녕하세요! 이번 주말에 빌릴 수 있을까요?", "client_msg_id": "m-1"})
    assert ack["ok"] and ack["duplicate"] is False
    receipt = ack["message"]
    assert receipt == {"room": room, "seq": 2, "id": f"{room}:2", "ts": receipt["ts"], "client_msg_id": "m-1"}
    assert receipt["ts"].endswith("Z")
    got = (await o.wait_for("message", room=room))[-1]
    assert got["unread"] == {str(owner.id): 2, str(borrower.id): 0}  # each member's badge after this message
    assert got["sender"] == {"id": borrower.id, "kind": "user", "name": "준호"}
    assert got["text"] == "안녕하세요! 이번 주말에 빌릴 수 있을까요?"
    assert {k: got[k] for k in receipt} == receipt
    assert b.received("message", room) == []  # the sender has the ack instead


async def test_a_retried_send_is_stored_and_delivered_once(client: TestClient, chatters: Any, market: Market) -> None:
    owner, borrower, _, room = await _deal(client)
    o, b = await chatters(owner), await chatters(borrower)
    first = await b.call("message", {"room": room, "text": "같은 메시지", "client_msg_id": "retry-7"})
    second = await b.call("message", {"room": room, "text": "같은 메시지", "client_msg_id": "retry-7"})
    assert second["duplicate"] is True and second["message"]["seq"] == first["message"]["seq"]
    await b.call("message", {"room": room, "text": "다음 메시지", "client_msg_id": "retry-8"})
    await o.wait_for("message", 2, room=room)
    assert [m["text"] for m in o.received("message", room)] == ["같은 메시지", "다음 메시지"]
    assert await market.db.fetchval("SELECT COUNT(*) FROM messages WHERE room_id = %s", (room,)) == 3


async def test_concurrent_senders_get_gap_free_unique_seqs(client: TestClient, chatters: Any, market: Market) -> None:
    owner, borrower, _, room = await _deal(client)
    o, b = await chatters(owner), await chatters(borrower)
    acks = await asyncio.gather(*[c.call("message", {"room": room, "text": f"{c.person.id}-{n}",
                                                     "client_msg_id": f"c{n}"})
                                  for n in range(15) for c in (o, b)])
    seqs = sorted(a["message"]["seq"] for a in acks)
    assert seqs == list(range(2, 32))
    rows = await market.db.fetchall("SELECT seq FROM messages WHERE room_id = %s ORDER BY seq", (room,))
    assert [r["seq"] for r in rows] == list(range(1, 32))


async def test_a_client_that_reconnects_receives_exactly_what_it_missed(client: TestClient, chatters: Any) -> None:
    owner, borrower, _, room = await _deal(client)
    o, b = await chatters(owner), await chatters(borrower)
    joined = await o.call("join", {"room": room})
    last_seen = joined["messages"][-1]["seq"]
    await o.close()
    for n in range(5):
        await b.call("message", {"room": room, "text": f"놓친 메시지 {n}"})
    o2 = await chatters(owner)
    caught = await o2.call("join", {"room": room, "after_seq": last_seen})
    assert [m["text"] for m in caught["messages"]] == [f"놓친 메시지 {n}" for n in range(5)]
    assert [m["seq"] for m in caught["messages"]] == list(range(last_seen + 1, last_seen + 6))
    assert caught["has_more"] is False and caught["unread"] == 6


async def test_other_peoples_and_unknown_rooms_are_refused_and_nothing_changes(
        client: TestClient, chatters: Any, market: Market) -> None:
    _, _, _, room = await _deal(client)
    stranger = await chatters(await sign_up(client))
    for event, data in [("join", {"room": room}), ("message", {"room": room, "text": "끼어들기"}),
                        ("history", {"room": room}), ("read", {"room": room, "seq": 1}), ("typing", {"room": room}),
                        ("join", {"room": 987654}), ("message", {"room": "abc", "text": "x"}),
                        ("message", {"room": None, "text": "x"}), ("action", {"room": room, "token": "t"})]:
        ack = await stranger.call(event, data)
        assert ack["ok"] is False, (event, data)
        assert ack["error"]["code"] == "chat.unknown_room", (event, ack)
        assert ack["error"]["message"] == "없는 대화방이거나 들어갈 수 없는 대화방이에요."
    assert await market.db.fetchval("SELECT last_seq FROM rooms WHERE id = %s", (room,)) == 1


async def test_malformed_events_get_clear_errors(client: TestClient, chatters: Any, market: Market) -> None:
    _, borrower, _, room = await _deal(client)
    b = await chatters(borrower)
    cases = [
        ("message", "just a string", "chat.bad_event"),
        ("message", ["room", room], "chat.bad_event"),
        ("message", {"room": room}, "input.required"),
        ("message", {"room": room, "text": "   "}, "input.required"),
        ("message", {"room": room, "text": 12345}, "input.not_text"),
        ("message", {"room": room, "text": "가" * 10_000}, "input.text_too_long"),
        ("message", {"room": room, "text": "hi", "client_msg_id": "x" * 65}, "chat.bad_client_msg_id"),
        ("history", {"room": room, "before_seq": -3}, "input.number_range"),
        ("history", {"room": room, "before_seq": 5, "after_seq": 1}, "chat.bad_range"),
        ("read", {"room": room, "seq": "many"}, "input.not_integer"),
        ("action", {"room": room, "token": 42}, "chat.bad_event"),
    ]
    for event, data, code in cases:
        ack = await b.call(event, data)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, data, ack)
        assert ack["error"]["message"]
    assert await market.db.fetchval("SELECT last_seq FROM rooms WHERE id = %s", (room,)) == 1


async def test_html_in_a_message_is_stored_and_sent_as_plain_text(client: TestClient, chatters: Any) -> None:
    owner, borrower, _, room = await _deal(client)
    o, b = await chatters(owner), await chatters(borrower)
    text = "<img src=x onerror=alert(1)> <script>fetch('/api/me')</script>"
    ack = await b.call("message", {"room": room, "text": text})
    assert ack["ok"]
    assert (await o.wait_for("message", room=room))[-1]["text"] == text
    history = await b.call("history", {"room": room})
    assert history["messages"][-1]["text"] == text


async def test_a_flood_gets_a_polite_refusal_and_only_the_allowed_messages_are_kept(
        client: TestClient, chatters: Any, market: Market, config: Any) -> None:
    _, borrower, _, room = await _deal(client)
    b = await chatters(borrower)
    acks = [await b.call("message", {"room": room, "text": f"도배 {n}"}) for n in range(config.chat_rate_limit + 5)]
    refused = [a for a in acks if not a["ok"]]
    assert len(refused) == 5
    assert refused[0]["error"] == {"code": "chat.too_fast",
                                   "message": "메시지를 너무 빨리 보내고 있어요. 잠시 뒤에 다시 보내 주세요.",
                                   "retry_after": config.chat_rate_window_s}  # a queue waits this long, then goes on
    assert await market.db.fetchval("SELECT COUNT(*) FROM messages WHERE room_id = %s AND sender_kind = 'user'",
                                    (room,)) == config.chat_rate_limit


async def test_read_receipts_and_unread_counts_per_member(client: TestClient, chatters: Any) -> None:
    owner, borrower, _, room = await _deal(client)
    o, b = await chatters(owner), await chatters(borrower)
    for n in range(3):
        await b.call("message", {"room": room, "text": f"메시지 {n}"})
    rooms = {r["id"]: r for r in (await owner.call("GET", "/api/rooms"))[1]["rooms"]}
    assert rooms[room]["unread"] == 4 and rooms[room]["last_message"]["text"] == "메시지 2"
    assert (await borrower.call("GET", "/api/rooms"))[1]["rooms"][1]["unread"] == 0  # own messages are read
    ack = await o.call("read", {"room": room, "seq": 3})
    assert ack == {"ok": True, "room": room, "seq": 3, "unread": 1, "last_seq": 4}
    receipt = (await b.wait_for("read", room=room))[-1]
    assert receipt == {"room": room, "user_id": owner.id, "seq": 3}
    assert (await o.call("read", {"room": room, "seq": 1}))["seq"] == 3  # never backwards
    assert (await o.call("read", {"room": room, "seq": 999}))["seq"] == 4  # never past the end
    rooms = {r["id"]: r for r in (await owner.call("GET", "/api/rooms"))[1]["rooms"]}
    assert rooms[room]["unread"] == 0


async def test_my_rooms_list_the_assistant_room_first(client: TestClient) -> None:
    owner, borrower, item, room = await _deal(client)
    _, body = await borrower.call("GET", "/api/rooms")
    kinds = [(r["kind"], r["id"]) for r in body["rooms"]]
    assert kinds[0][0] == "assistant" and kinds[1] == ("deal", room)
    assert body["rooms"][1]["item"]["id"] == item["id"]


async def test_typing_reaches_the_other_member(client: TestClient, chatters: Any) -> None:
    owner, borrower, _, room = await _deal(client)
    o, b = await chatters(owner), await chatters(borrower)
    assert (await b.call("typing", {"room": room}))["ok"]
    assert (await o.wait_for("typing", room=room))[0] == {"room": room, "user": {"id": borrower.id, "name": "준호"}}


async def test_history_pages_backwards_without_gaps(client: TestClient, chatters: Any, market: Market) -> None:
    owner, borrower, _, room = await _deal(client)
    for n in range(60):
        await market.chat.post(room, f"기록 {n}")
    b = await chatters(borrower)
    seen: list[int] = []
    before = None
    while True:
        page = await b.call("history", {"room": room, "limit": 25, **({"before_seq": before} if before else {})})
        seen = [m["seq"] for m in page["messages"]] + seen
        if not page["has_more"]:
            break
        before = page["messages"][0]["seq"]
    assert seen == list(range(1, 62))
    status, rest = await borrower.call("GET", f"/api/rooms/{room}/messages", params={"after_seq": "58"})
    assert status == 200 and [m["seq"] for m in rest["messages"]] == [59, 60, 61]


async def test_logging_out_ends_the_socket_session(client: TestClient, chatters: Any) -> None:
    _, borrower, _, room = await _deal(client)
    b = await chatters(borrower)
    assert (await b.call("message", {"room": room, "text": "첫 메시지"}))["ok"]
    await borrower.call("POST", "/api/auth/logout")
    for _ in range(50):  # hung up at once, told why first — not left listening until it next sends
        if not b.sio.connected:
            break
        await asyncio.sleep(0.1)
    assert not b.sio.connected
    assert [e["code"] for e in b.received("session_ended")] == ["chat.session_ended"]


async def test_an_image_message_is_private_to_the_room(client: TestClient, chatters: Any) -> None:
    owner, borrower, _, room = await _deal(client)
    o = await chatters(owner)
    form = FormData()
    form.add_field("photo", io.BytesIO(image_bytes("PNG", (900, 700))), filename="tent.png", content_type="image/png")
    status, body = await borrower.call("POST", f"/api/rooms/{room}/images", data=form,
                                       params={"caption": "텐트 상태예요"})
    assert status == 201, body
    image = body["message"]["image"]
    assert body["message"]["text"] == "텐트 상태예요" and image["width"] == 900
    assert (await o.wait_for("message", room=room))[-1]["image"] == image
    async with client.get(image["url"], headers=owner.auth) as resp:
        assert resp.status == 200 and resp.content_type == "image/jpeg"
    stranger = await sign_up(client)
    async with client.get(image["url"], headers=stranger.auth) as resp:
        assert resp.status == 404
    async with client.get(image["url"]) as resp:
        assert resp.status == 404
    form = FormData()
    form.add_field("photo", io.BytesIO(b"MZ\x90\x00 not an image"), filename="virus.jpg", content_type="image/jpeg")
    status, body = await borrower.call("POST", f"/api/rooms/{room}/images", data=form)
    assert status == 415
    assert (await stranger.call("POST", f"/api/rooms/{room}/images", data=FormData({"x": "y"})))[0] == 404


async def test_a_forged_button_press_is_refused_clearly(client: TestClient, chatters: Any) -> None:
    _, borrower, _, room = await _deal(client)
    b = await chatters(borrower)
    ack = await b.call("action", {"room": room, "token": "some-token"})
    assert ack["ok"] is False and ack["error"]["code"] == "bot.button_invalid" and ack["error"]["message"]


async def test_a_retry_batched_with_new_messages_keeps_seqs_gap_free(client: TestClient, chatters: Any,
                                                                     market: Market) -> None:
    """The writer inserts optimistically; a repeat in the batch makes it redo the batch, skipping the repeat."""
    _, borrower, _, room = await _deal(client)
    b = await chatters(borrower)
    first = await b.call("message", {"room": room, "text": "처음", "client_msg_id": "r-1"})
    acks = await asyncio.gather(
        b.call("message", {"room": room, "text": "처음", "client_msg_id": "r-1"}),
        *[b.call("message", {"room": room, "text": f"새 {n}", "client_msg_id": f"n-{n}"}) for n in range(6)])
    assert acks[0]["duplicate"] is True and acks[0]["message"]["seq"] == first["message"]["seq"]
    assert sorted(a["message"]["seq"] for a in acks[1:]) == list(range(3, 9))
    rows = await market.db.fetchall("SELECT seq FROM messages WHERE room_id = %s ORDER BY seq", (room,))
    assert [r["seq"] for r in rows] == list(range(1, 9))


async def test_a_packet_over_the_size_limit_drops_that_socket_and_nothing_else(
        client: TestClient, chatters: Any, market: Market) -> None:
    owner, borrower, _, room = await _deal(client)
    o, b = await chatters(owner), await chatters(borrower)
    with pytest.raises(socketio.exceptions.SocketIOError):
        await b.sio.call("message", {"room": room, "text": "가" * 100_000}, timeout=5)  # ~300 KB
    for _ in range(50):
        if not b.sio.connected:
            break
        await asyncio.sleep(0.1)
    assert not b.sio.connected
    assert await market.db.fetchval("SELECT last_seq FROM rooms WHERE id = %s", (room,)) == 1
    assert (await o.call("message", {"room": room, "text": "저는 괜찮아요"}))["ok"]  # others carry on
    again = await chatters(borrower)
    assert (await again.call("message", {"room": room, "text": "다시 연결했어요"}))["ok"]


async def test_a_request_refused_in_a_deal_room_it_opened_still_shows_the_room_to_both(
        client: TestClient, chatters: Any) -> None:
    """The dates are taken, but asking opened a deal room all the same (it stays, for talking): both people's
    clients hear of it, as for a request that was made — else the owner's list lacks a room with a badge on it."""
    owner = await sign_up(client, nickname="민지")
    first, second = await sign_up(client, nickname="준호"), await sign_up(client, nickname="서연")
    item = await owner.new_item(title="4인용 텐트")
    status, _ = await first.call("POST", "/api/contracts", json={"item_id": item["id"], "dates": "내일부터 2일"})
    assert status == 201
    owner_chat, second_chat = await chatters(owner), await chatters(second)
    status, body = await second.call("POST", "/api/contracts", json={"item_id": item["id"], "dates": "내일부터 2일"})
    assert status == 409 and body["error"]["code"] == "rental.dates_taken"
    room = await client.app[MARKET].db.fetchval("SELECT id FROM rooms WHERE unique_key = %s",
                                                (f"deal:{item['id']}:{second.id}",))
    assert room is not None  # (the room stays)
    for chat in (owner_chat, second_chat):
        assert {"room": room, "new": True} in await chat.wait_for("room_update", room=room)
    # In the room it opened, the next request is an ordinary one: nothing is announced again.
    status, body = await second.call("POST", "/api/contracts", json={"item_id": item["id"], "dates": "내일부터 2일"})
    assert status == 409
    await asyncio.sleep(0.3)
    assert len([u for u in owner_chat.received("room_update", room=room) if u.get("new")]) == 1
