"""Archiving old chat messages to S3: history reads across both, nothing is lost on an S3 failure."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

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
