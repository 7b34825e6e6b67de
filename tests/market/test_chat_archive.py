"""Archiving old chat messages to S3: history reads across both, nothing is lost on an S3 failure."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import timedelta

import pytest

from market.chat.archive import ChatArchive
from market.service import Market
from market.storage import BlobStore


async def _room_with_messages(market: Market, n: int) -> int:
    async with market.db.transaction() as cur:
        await cur.execute("INSERT INTO users (email, nickname) VALUES ('a@example.com', '보관자')")
        user = cur.lastrowid
    room = await market.chat.assistant_room(user)
    for k in range(n):
        await market.chat.send(user, "보관자", room.id, f"메시지 {k}")
    return room.id


async def _age(market: Market, room: int, upto_seq: int, days: int) -> None:
    await market.db.execute("UPDATE messages SET created_at = created_at - INTERVAL %s DAY"
                            " WHERE room_id = %s AND seq <= %s", (days, room, upto_seq))


async def test_old_messages_move_to_s3_segments_and_history_reads_across(market: Market) -> None:
    market.chat._rate_limit = 10_000
    room = await _room_with_messages(market, 25)
    user = (await market.db.fetchone("SELECT owner_id FROM rooms WHERE id = %s", (room,)))["owner_id"]
    await _age(market, room, 18, days=40)
    before = await market.chat.history(user, room, limit=100)
    archive = ChatArchive(market.db, market.store, segment_size=8)
    moved = await archive.archive_older_than(timedelta(days=30))
    assert moved == {"segments": 3, "messages": 18}
    assert [(s["from_seq"], s["to_seq"]) for s in await archive.segments(room)] == [(1, 8), (9, 16), (17, 18)]
    assert await market.db.fetchval("SELECT MIN(seq) FROM messages WHERE room_id = %s", (room,)) == 19
    stored = await market.store.get(ChatArchive.key(room, 1, 8))
    assert stored is not None
    lines = gzip.decompress(stored.body).decode().splitlines()
    assert [json.loads(line)["text"] for line in lines] == [f"메시지 {k}" for k in range(8)]
    after = await market.chat.history(user, room, limit=100)
    assert after == before
    page = await market.chat.history(user, room, before_seq=12, limit=5)
    assert [m["seq"] for m in page["messages"]] == [7, 8, 9, 10, 11] and page["has_more"]
    assert (await archive.archive_older_than(timedelta(days=30))) == {"segments": 0, "messages": 0}


async def test_an_s3_failure_leaves_every_message_in_the_database(market: Market) -> None:
    market.chat._rate_limit = 10_000
    room = await _room_with_messages(market, 6)
    await _age(market, room, 6, days=40)
    missing_bucket = BlobStore(market.store._s3, "no-such-bucket-for-archive")
    archive = ChatArchive(market.db, missing_bucket, segment_size=100)
    try:
        await archive.archive_older_than(timedelta(days=30))
    except Exception:  # noqa: BLE001 — the S3 error itself is what we expect
        pass
    else:
        raise AssertionError("the upload to a missing bucket should have failed")
    assert await market.db.fetchval("SELECT COUNT(*) FROM messages WHERE room_id = %s", (room,)) == 6
    assert await archive.segments(room) == []
    retry = await ChatArchive(market.db, market.store, segment_size=100).archive_older_than(timedelta(days=30))
    assert retry == {"segments": 1, "messages": 6}


async def _archived_room_of(market: Market, nickname: str) -> tuple[int, int]:
    """A room of someone called ``nickname`` with their message and a bot message that has the name inside other
    words, numbers and JSON values, all archived; returns (user id, room id)."""
    market.chat._rate_limit = 10_000
    async with market.db.transaction() as cur:
        await cur.execute("INSERT INTO users (email, nickname) VALUES (%s, %s)", (f"{len(nickname)}@example.com",
                                                                              nickname))
        user = cur.lastrowid
    room = await market.chat.assistant_room(user)
    await market.chat.send(user, nickname, room.id, "안녕하세요")
    await market.chat.post(room.id, "김민수님이 10,000원을 보냈어요. 확인: true",
                           body={"buttons": [{"label": "true 10 김민수", "disabled": True}], "amount": 10000})
    await ChatArchive(market.db, market.store).archive_older_than(timedelta(0))
    return user, room.id


async def _records(market: Market, room: int) -> list[dict[str, object]]:
    out = []
    for seg in await ChatArchive(market.db, market.store).segments(room):
        stored = await market.store.get(seg["object_key"])
        assert stored is not None
        out += [json.loads(line) for line in gzip.decompress(stored.body).decode().splitlines()]
    return out


@pytest.mark.parametrize("nickname", ["true", "10", "민수"])
async def test_renaming_a_leaver_in_the_archive_changes_their_sender_name_and_nothing_else(
        market: Market, nickname: str) -> None:
    user, room = await _archived_room_of(market, nickname)
    before = await _records(market, room)
    assert await ChatArchive(market.db, market.store).rename(user, [room], "탈퇴한 이웃") == 1
    after = await _records(market, room)
    assert [r["sender_name"] for r in after if r["sender_kind"] == "user"] == ["탈퇴한 이웃"]
    assert [r for r in after if r["sender_kind"] != "user"] == [r for r in before if r["sender_kind"] != "user"]
    assert await ChatArchive(market.db, market.store).rename(user, [room], "탈퇴한 이웃") == 0  # nothing left to do


async def test_a_segment_rewritten_meanwhile_keeps_its_index_and_object_and_the_stray_copy_goes(
        market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    user, room = await _archived_room_of(market, "떠날이")
    (seg,) = await ChatArchive(market.db, market.store).segments(room)
    theirs = seg["object_key"].replace(".jsonl.gz", ".theirs.jsonl.gz")
    original = await market.store.get(seg["object_key"])
    assert original is not None
    await market.store.put(theirs, original.body, "application/gzip")
    real_put, ours = market.store.put, []

    async def put_then_rewritten_elsewhere(key: str, data: bytes, content_type: str) -> None:
        await real_put(key, data, content_type)
        ours.append(key)  # another node rewrites the segment before our index update
        await market.db.execute("UPDATE archive_segments SET object_key = %s WHERE room_id = %s", (theirs, room))

    monkeypatch.setattr(market.store, "put", put_then_rewritten_elsewhere)
    assert await ChatArchive(market.db, market.store).rename(user, [room], "탈퇴한 이웃") == 0
    assert [s["object_key"] for s in await ChatArchive(market.db, market.store).segments(room)] == [theirs]
    assert await market.store.get(theirs) is not None
    assert await market.store.get(seg["object_key"]) is not None  # not ours to delete: the other node's job
    assert len(ours) == 1 and await market.store.get(ours[0]) is None  # our copy, unused, is gone
    history = await market.chat.history(user, room, limit=10)
    assert len(history["messages"]) == 2


async def test_a_rename_that_stops_part_way_says_which_rooms_are_left(
        market: Market, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    user, room = await _archived_room_of(market, "떠날이")

    async def cancelled(key: str) -> None:
        raise asyncio.CancelledError

    monkeypatch.setattr(market.store, "get", cancelled)
    with pytest.raises(asyncio.CancelledError):
        await ChatArchive(market.db, market.store).rename(user, [room, room + 1000], "탈퇴한 이웃")
    assert f"archived chat of user {user}: segments of rooms {room} {room + 1000} not yet renamed" in caplog.text
