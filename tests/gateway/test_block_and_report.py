"""Unwanted people: blocking a neighbour (no more inquiries, messages or rental requests from them) and reporting a
person or a listing (신고) into the operators' queue."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from gateway.keys import MARKET
from market.config import Config
from tests.conftest import Person, sign_up
from tests.rentals.helpers import Bank, paid_rental

BLOCKED_SEND = "이 대화에는 더 이상 메시지를 보낼 수 없어요."
TOMORROW = "내일부터 2일"


async def _deal(client: TestClient) -> tuple[Person, Person, dict[str, Any], int]:
    """An owner with two items; a borrower who already asked about the first one."""
    owner = await sign_up(client, nickname="민지")
    borrower = await sign_up(client, nickname="준호")
    first = await owner.new_item(title="4인용 텐트")
    second = await owner.new_item(title="캠핑 의자")
    status, body = await borrower.call("POST", f"/api/items/{first['id']}/room")
    assert status == 201, body
    return owner, borrower, second, body["room"]["id"]


async def _count(client: TestClient, sql: str, *args: Any) -> int:
    return int(await client.app[MARKET].db.fetchval(sql, args))


async def test_a_blocked_neighbour_cannot_inquire_message_or_request_and_nothing_is_stored(
        client: TestClient, chatters: Any) -> None:
    owner, borrower, second, room = await _deal(client)
    status, body = await owner.call("POST", f"/api/people/{borrower.id}/block")
    assert status == 200 and body["blocked"] is True
    seq = await _count(client, "SELECT last_seq FROM rooms WHERE id = %s", room)
    notes = await _count(client, "SELECT COUNT(*) FROM notifications WHERE user_id = %s", owner.id)

    status, body = await borrower.call("POST", f"/api/items/{second['id']}/room")
    assert status == 403 and body["error"]["code"] == "block.cannot_inquire", body
    assert "차단" not in body["error"]["message"]  # the refusal does not tell the person they were blocked
    sio = await chatters(borrower)
    ack = await sio.call("message", {"room": room, "text": "왜 답이 없으세요?", "client_msg_id": "b-1"})
    assert ack["ok"] is False and ack["error"] == {"code": "block.cannot_send", "message": BLOCKED_SEND}
    status, body = await borrower.call("POST", "/api/contracts", json={"item_id": second["id"], "dates": TOMORROW})
    assert status == 403 and body["error"]["code"] == "block.cannot_request", body

    assert await _count(client, "SELECT COUNT(*) FROM rooms WHERE item_id = %s", second["id"]) == 0
    assert await _count(client, "SELECT last_seq FROM rooms WHERE id = %s", room) == seq
    assert await _count(client, "SELECT COUNT(*) FROM contracts WHERE borrower_id = %s", borrower.id) == 0
    assert await _count(client, "SELECT COUNT(*) FROM notifications WHERE user_id = %s", owner.id) == notes


async def test_the_blocker_cannot_write_into_the_blocked_conversation_and_sees_whom_they_blocked(
        client: TestClient, chatters: Any) -> None:
    owner, borrower, _, room = await _deal(client)
    assert (await owner.call("POST", f"/api/people/{borrower.id}/block"))[0] == 200
    assert (await owner.call("POST", f"/api/people/{borrower.id}/block"))[0] == 200  # again: the same, once
    sio = await chatters(owner)
    ack = await sio.call("message", {"room": room, "text": "안녕하세요", "client_msg_id": "o-1"})
    assert ack["ok"] is False and ack["error"]["code"] == "block.you_blocked"
    status, body = await owner.call("GET", "/api/me/blocks")
    assert status == 200 and [(b["id"], b["nickname"]) for b in body["blocks"]] == [(borrower.id, "준호")]
    assert (await borrower.call("GET", "/api/me/blocks"))[1]["blocks"] == []


async def test_a_paid_rental_goes_on_after_a_block_but_the_blockers_are_told_nothing_by_the_blocked(
        client: TestClient, config: Config) -> None:
    assert config.bank_url
    market = client.app[MARKET]
    cid, owner, borrower = await paid_rental(market, Bank(config.bank_url))
    await market.blocks.block(owner, borrower)
    for step in (market.rentals.hand_over(owner, cid), market.rentals.hand_over(borrower, cid),
                 market.rentals.mark_returned(borrower, cid), market.rentals.mark_returned(owner, cid),
                 market.rentals.confirm_ok(owner, cid)):
        await step  # the contract's own steps are not refused: money and hand-overs go on
    assert (await market.rentals.get(cid)).state == "SETTLED"
    told = await _count(client, "SELECT COUNT(*) FROM notifications WHERE user_id = %s", owner)
    await market.reviews.write(borrower, cid, "owner", 1, "별로였어요")  # the review stays the borrower's right
    assert await _count(client, "SELECT COUNT(*) FROM reviews WHERE contract_id = %s", cid) == 1
    assert await _count(client, "SELECT COUNT(*) FROM notifications WHERE user_id = %s", owner) == told


async def test_unblocking_restores_inquiries_messages_and_requests(client: TestClient, chatters: Any) -> None:
    owner, borrower, second, room = await _deal(client)
    assert (await owner.call("POST", f"/api/people/{borrower.id}/block"))[0] == 200
    status, body = await owner.call("DELETE", f"/api/people/{borrower.id}/block")
    assert status == 200 and body["blocked"] is False
    assert (await owner.call("GET", "/api/me/blocks"))[1]["blocks"] == []

    sio = await chatters(borrower)
    ack = await sio.call("message", {"room": room, "text": "다시 연락드려요", "client_msg_id": "b-2"})
    assert ack["ok"] is True, ack
    status, body = await borrower.call("POST", f"/api/items/{second['id']}/room")
    assert status == 201, body
    status, body = await borrower.call("POST", "/api/contracts", json={"item_id": second["id"], "dates": TOMORROW})
    assert status == 201, body


async def test_blocking_oneself_or_nobody_is_refused(client: TestClient) -> None:
    me = await sign_up(client)
    status, body = await me.call("POST", f"/api/people/{me.id}/block")
    assert status == 409 and body["error"]["code"] == "block.self"
    status, body = await me.call("POST", "/api/people/987654321/block")
    assert status == 404 and body["error"]["code"] == "account.not_found"
    assert await _count(client, "SELECT COUNT(*) FROM blocks") == 0


async def test_a_report_lands_in_the_queue_once(client: TestClient) -> None:
    owner, borrower, second, _ = await _deal(client)
    report = {"kind": "item", "id": second["id"], "reason": "prohibited", "note": "판매 금지 물건 같아요"}
    status, first = await borrower.call("POST", "/api/reports", json=report)
    assert status == 201, first
    assert first["report"]["status"] == "open" and first["report"]["reason"] == "prohibited"
    status, again = await borrower.call("POST", "/api/reports", json={**report, "note": "다시"})
    assert status == 200 and again["report"] == first["report"]  # the same answer, nothing changed
    status, person = await borrower.call("POST", "/api/reports", json={"kind": "person", "id": owner.id,
                                                                        "reason": "fraud"})
    assert status == 201, person
    rows = await client.app[MARKET].db.fetchall(
        "SELECT reporter_id, target_kind, target_id, reason, note, status FROM reports ORDER BY id")
    assert [tuple(r.values()) for r in rows] == [
        (borrower.id, "item", second["id"], "prohibited", "판매 금지 물건 같아요", "open"),
        (borrower.id, "person", owner.id, "fraud", "", "open")]


async def test_reporting_oneself_or_ones_own_item_is_refused(client: TestClient) -> None:
    owner, _, second, _ = await _deal(client)
    status, body = await owner.call("POST", "/api/reports", json={"kind": "person", "id": owner.id, "reason": "spam"})
    assert status == 409 and body["error"]["code"] == "report.self"
    status, body = await owner.call("POST", "/api/reports", json={"kind": "item", "id": second["id"], "reason": "spam"})
    assert status == 409 and body["error"]["code"] == "report.self"
    assert await _count(client, "SELECT COUNT(*) FROM reports") == 0


async def test_a_report_with_a_bad_reason_target_or_note_is_refused(client: TestClient) -> None:
    owner, borrower, second, _ = await _deal(client)
    bad = [({"kind": "item", "id": second["id"], "reason": "boring"}, 400, "report.bad_reason"),
           ({"kind": "item", "id": second["id"], "reason": "other", "note": "가" * 501}, 400, "input.text_too_long"),
           ({"kind": "room", "id": second["id"], "reason": "spam"}, 400, "report.bad_kind"),
           ({"kind": "item", "id": 987654321, "reason": "spam"}, 404, "item.not_found"),
           ({"kind": "person", "id": 987654321, "reason": "spam"}, 404, "account.not_found")]
    for data, want_status, code in bad:
        status, body = await borrower.call("POST", "/api/reports", json=data)
        assert (status, body["error"]["code"]) == (want_status, code), (data, body)
        assert body["error"]["message"]
    assert await _count(client, "SELECT COUNT(*) FROM reports") == 0


async def test_reports_are_rate_limited(client: TestClient) -> None:
    reporter = await sign_up(client)
    limit = client.app[MARKET].config.report_rate_limit
    people = [await sign_up(client) for _ in range(limit + 1)]
    answers = [(await reporter.call("POST", "/api/reports", json={"kind": "person", "id": p.id, "reason": "spam"}))
               for p in people]
    assert [s for s, _ in answers] == [201] * limit + [429]
    assert answers[-1][1]["error"]["code"] == "report.too_many"
    assert await _count(client, "SELECT COUNT(*) FROM reports") == limit
