"""Messages for one member of a deal room: the other member gets only ``{seq, hidden: true}`` — live, in history,
in catch-up and from archived segments — and the message counts neither as their unread nor as their room
list's last message."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.keys import CHAT, MARKET
from market.chat import NotMember
from tests.conftest import Chatter, Person, sign_up

PLACEHOLDER_KEYS = {"room", "seq", "id", "hidden", "unread"}


async def _room(client: TestClient, chatters: Any) -> tuple[Person, Person, Chatter, Chatter, int]:
    owner, borrower = await sign_up(client, "주인장"), await sign_up(client, "손님이")
    item = await owner.new_item()
    status, body = await borrower.call("POST", f"/api/items/{item['id']}/room")
    room = body["room"]["id"]
    o, b = await chatters(owner), await chatters(borrower)
    for c in (o, b):
        assert (await c.call("join", {"room": room}))["ok"]
    return owner, borrower, o, b, room


async def _post(client: TestClient, room: int, text: str, audience: int | None = None) -> int:
    sent = await client.app[MARKET].chat.post(room, text, audience=audience)
    await client.app[CHAT].publish(sent)
    return sent.message.seq


async def _seq(c: Chatter, room: int, seq: int) -> dict[str, Any]:
    for _ in range(300):
        found = [m for m in c.received("message", room) if m["seq"] == seq]
        if found:
            return found[0]  # type: ignore[no-any-return]
        await asyncio.sleep(0.02)
    raise AssertionError(f"seq {seq} never arrived")


async def _unread(person: Person, room: int) -> tuple[int, dict[str, Any] | None]:
    status, body = await person.call("GET", "/api/rooms")
    assert status == 200
    r = next(r for r in body["rooms"] if r["id"] == room)
    return r["unread"], r["last_message"]


async def test_the_other_member_gets_only_the_place_of_a_private_message(client: TestClient,
                                                                        chatters: Any) -> None:
    owner, borrower, o, b, room = await _room(client, chatters)
    public = await _post(client, room, "두 분 모두 보는 안내")
    secret = await _post(client, room, "KB국민은행 1234**** 계좌가 연결됐어요", audience=borrower.id)
    mine = await _seq(b, room, secret)
    assert mine["text"].startswith("KB국민은행") and mine["audience"] == borrower.id
    theirs = await _seq(o, room, secret)
    assert theirs["hidden"] is True and set(theirs) == PLACEHOLDER_KEYS, theirs
    assert "국민" not in str(theirs)
    # history and catch-up, from the live table
    for ask in ({"room": room}, {"room": room, "after_seq": public}):
        seen = {m["seq"]: m for m in (await o.call("history" if "after_seq" not in ask else "join", ask))["messages"]}
        assert seen[secret] == {"room": room, "seq": secret, "id": f"{room}:{secret}", "hidden": True}
        full = {m["seq"]: m for m in (await b.call("history", {"room": room}))["messages"]}
        assert full[secret]["text"].startswith("KB국민은행")
    # unread counts and the room list: the private message is not the owner's
    owner_unread, owner_last = await _unread(owner, room)
    borrower_unread, borrower_last = await _unread(borrower, room)
    assert borrower_unread == owner_unread + 1
    assert owner_last is not None and owner_last["seq"] == public and "국민" not in str(owner_last)
    assert borrower_last is not None and borrower_last["seq"] == secret
    status, body = await owner.call("GET", f"/api/rooms/{room}/messages")
    assert status == 200 and "국민" not in str(body)


async def test_unread_counts_skip_hidden_messages_as_read_positions_move(client: TestClient,
                                                                        chatters: Any) -> None:
    owner, borrower, o, b, room = await _room(client, chatters)
    market = client.app[MARKET]
    last = await _post(client, room, "안내")
    assert (await o.call("read", {"room": room, "seq": last}))["unread"] == 0
    await _post(client, room, "손님에게만", audience=borrower.id)
    hidden = await _post(client, room, "손님에게만 또", audience=borrower.id)
    assert (await market.chat.unread_for(room))[owner.id] == 0
    assert (await o.call("read", {"room": room, "seq": hidden}))["unread"] == 0
    visible = await _post(client, room, "둘 다 보는 말")
    assert (await market.chat.unread_for(room))[owner.id] == 1
    assert (await _seq(o, room, visible))["unread"][str(owner.id)] == 1
    # The owner writes (their read position jumps to their own message), then one more hidden and one public.
    assert (await o.call("message", {"room": room, "text": "네 알겠어요"}))["ok"]
    third = await _post(client, room, "손님에게만 셋째", audience=borrower.id)
    await _post(client, room, "둘 다 보는 말 둘째")
    assert (await market.chat.unread_for(room))[owner.id] == 1
    assert (await _unread(owner, room))[0] == 1
    assert (await o.call("join", {"room": room}))["unread"] == 1
    # The owner reads up to the hidden message: the public one after it is still unread.
    assert (await o.call("read", {"room": room, "seq": third}))["unread"] == 1
    assert (await market.chat.unread_for(room))[owner.id] == 1


async def test_archived_private_messages_stay_private(client: TestClient, chatters: Any) -> None:
    owner, borrower, o, b, room = await _room(client, chatters)
    market = client.app[MARKET]
    secret = await _post(client, room, "예금주 김빌리", audience=borrower.id)
    await _post(client, room, "모두에게")
    await market.db.execute("UPDATE messages SET created_at = created_at - INTERVAL 40 DAY WHERE room_id = %s",
                            (room,))
    moved = await market.chat.archive.archive_older_than(timedelta(days=30))
    assert moved["messages"] >= 2
    assert await market.db.fetchval("SELECT COUNT(*) FROM messages WHERE room_id = %s", (room,)) == 0
    theirs = {m["seq"]: m for m in (await o.call("history", {"room": room}))["messages"]}
    assert theirs[secret] == {"room": room, "seq": secret, "id": f"{room}:{secret}", "hidden": True}
    mine = {m["seq"]: m for m in (await b.call("history", {"room": room}))["messages"]}
    assert mine[secret]["text"] == "예금주 김빌리"


async def test_a_private_message_for_someone_outside_the_room_is_refused(client: TestClient,
                                                                        chatters: Any) -> None:
    owner, borrower, o, b, room = await _room(client, chatters)
    stranger = await sign_up(client, "지나가던")
    market = client.app[MARKET]
    before = await market.db.fetchval("SELECT last_seq FROM rooms WHERE id = %s", (room,))
    with pytest.raises(NotMember):
        await market.chat.post(room, "남의 방", audience=stranger.id)
    assert await market.db.fetchval("SELECT last_seq FROM rooms WHERE id = %s", (room,)) == before


async def test_retired_buttons_are_disabled_live_in_history_and_in_archived_segments(client: TestClient,
                                                                                    chatters: Any) -> None:
    owner, borrower, o, b, room = await _room(client, chatters)
    market = client.app[MARKET]
    engine = client.app[CHAT].bot
    button = await engine.button(borrower.id, room, "눌러 보기", "flow", {}, single_use=True)
    sent = await engine.say(room, "버튼이 있는 안내", audience=borrower.id, topic="t1", buttons=[button])
    shared = await engine.say(room, "모두 보는 버튼", topic="t1", buttons=[
        await engine.button(owner.id, room, "주인 버튼", "flow", {})])
    seq = sent.message.seq
    # archived before it retires: the segment (never rewritten) still holds the live button
    await market.db.execute("UPDATE messages SET created_at = created_at - INTERVAL 40 DAY WHERE room_id = %s",
                            (room,))
    assert (await market.chat.archive.archive_older_than(timedelta(days=30)))["messages"] >= 2
    await engine.retire(room, "t1")
    update = [u for u in await b.wait_for("message_update", 2, room=room) if u["seq"] == seq][0]
    assert update["buttons"] == [{"label": "눌러 보기", "disabled": True}]
    # the private one's update goes to its member alone; the shared one to both
    await o.wait_for("message_update", 1, room=room)
    await asyncio.sleep(0.2)
    assert [u["seq"] for u in o.received("message_update", room)] == [shared.message.seq]
    for c, who in ((b, borrower), (o, owner)):
        page = {m["seq"]: m for m in (await c.call("history", {"room": room}))["messages"]}
        assert page[shared.message.seq]["buttons"] == [{"label": "주인 버튼", "disabled": True}]
    assert {m["seq"]: m for m in (await b.call("history", {"room": room}))["messages"]}[seq]["buttons"][0]["disabled"]
    # a retired button cannot be pressed from an old copy either (its token is gone from the message, and
    # retiring again changes nothing)
    assert await market.chat.retire(room, "t1") == []
