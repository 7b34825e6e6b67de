"""The message writer: one per process, it commits whatever is pending in one transaction (group commit);
the room row lock makes seqs gap-free across processes. Only members write, and nobody writes into a deal room
whose members blocked one another (``market.people.blocks``); both rules are checked inside the same
transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pymysql

from market.chat.model import SELECT_MESSAGES, Draft, Message, NotMember, Sent, WithMessage, message_from_row
from market.db import Database, DatabaseUnavailable
from market.errors import MarketError
from market.people.blocks import refusal

log = logging.getLogger("billi.chat")

_MAX_BATCH = 500


class MessageWriter:
    """Group commit: one task per process writes every pending message in one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: asyncio.Queue[Draft] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="billi-message-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while not self._queue.empty():
            d = self._queue.get_nowait()
            if not d.future.done():
                d.future.set_exception(RuntimeError("the message writer stopped"))

    async def write(self, draft: Draft) -> Sent:
        """Store a message (once per client_msg_id)."""
        self.start()
        draft.future = asyncio.get_running_loop().create_future()
        await self._queue.put(draft)
        return await draft.future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await self._commit_with_retry(batch)
            except Exception as e:  # noqa: BLE001 — every waiting sender must hear about it
                log.exception("writing %d chat messages failed", len(batch))
                for d in batch:
                    if not d.future.done():
                        d.future.set_exception(e)
                continue
            for d, result in zip(batch, results, strict=True):
                if d.future.done():
                    continue
                if isinstance(result, MarketError):
                    d.future.set_exception(result)
                else:
                    d.future.set_result(result)

    async def _commit_with_retry(self, batch: list[Draft]) -> list[Sent | MarketError]:
        # Optimistic first: a retried send is rare, so look for earlier copies only when the unique
        # (room, sender, client_msg_id) key says there is one — then the whole batch is redone carefully.
        look_for_repeats = lost = False
        for attempt in range(6):
            try:
                return await self._commit(batch, look_for_repeats)
            except pymysql.err.IntegrityError as e:
                if e.args[0] != 1062 or look_for_repeats:
                    raise
                look_for_repeats = True
            except DatabaseUnavailable as e:
                # The connection broke (a restarted server) before the inserts went with COMMIT: the server rolled
                # the batch back, so it goes once more on a fresh connection. Broken after, it may have landed: each
                # sender hears of the failure and sends again with its client_msg_id, which finds the stored copy.
                if not e.lost or e.in_commit or lost:
                    raise
                lost = True
            except pymysql.err.OperationalError as e:
                # a deadlock: again, a bit later (a lock wait that ran out already spent a statement's whole
                # deadline — it goes to the senders as "try again shortly")
                if e.args[0] != 1213 or attempt == 5:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _commit(self, batch: list[Draft], look_for_repeats: bool) -> list[Sent | MarketError]:
        results: list[Sent | MarketError | None] = [None] * len(batch)
        now = datetime.now(UTC).replace(tzinfo=None)
        room_ids = sorted({d.room_id for d in batch})
        # The rooms (locked, in id order, so concurrent writers on other nodes queue instead of deadlocking) with
        # their members' read positions and who of a deal's two members blocked the other, in one statement, sent
        # with BEGIN; the inserts go with COMMIT: two round trips for the whole batch.
        rooms = ("SELECT r.id, r.last_seq, m.user_id, m.last_read_seq, m.hidden_unread,"
                 " (SELECT GROUP_CONCAT(b.blocker_id) FROM blocks b WHERE r.kind = 'deal' AND"
                 "   ((b.blocker_id = r.owner_id AND b.blocked_id = r.borrower_id)"
                 "    OR (b.blocker_id = r.borrower_id AND b.blocked_id = r.owner_id))) AS blockers FROM rooms r"
                 f" LEFT JOIN room_members m ON m.room_id = r.id WHERE r.id IN ({_marks(room_ids)})"
                 " ORDER BY r.id FOR UPDATE")
        keyed = [(d.room_id, d.sender_id, d.client_msg_id) for d in batch if d.client_msg_id]
        # A bot message with an id (an announced event) has no unique key to trip (its sender is NULL), so
        # its earlier copy is always looked for — under the rooms' locks, in the same round trip as they are.
        look = bool(keyed) and (look_for_repeats or any(d.sender_id is None for d in batch if d.client_msg_id))
        first: tuple[str, tuple[Any, ...]] = (rooms, tuple(room_ids))
        if look:
            first = (rooms + "; " + SELECT_MESSAGES + " WHERE " + " OR ".join(
                ["(m.room_id = %s AND m.sender_id <=> %s AND m.client_msg_id = %s)"] * len(keyed)),
                (*room_ids, *(x for k in keyed for x in k)))
        async with self._db.transaction(first=first) as cur:
            last_seq: dict[int, int] = {}
            read_at: dict[int, dict[int, int]] = {}
            hidden: dict[int, dict[int, int]] = {}  # messages after each member's read position hidden from them
            blockers: dict[int, set[int]] = {}
            for r in await cur.fetchall():
                last_seq[r["id"]] = r["last_seq"]
                blockers[r["id"]] = {int(b) for b in (r["blockers"] or "").split(",") if b}
                members = read_at.setdefault(r["id"], {})
                if r["user_id"] is not None:
                    members[r["user_id"]] = r["last_read_seq"]
                    hidden.setdefault(r["id"], {})[r["user_id"]] = r["hidden_unread"]
            earlier: dict[tuple[int, int | None, str], Message] = {}
            if look:
                for row in await cur.next_rows():
                    msg = message_from_row(row)
                    earlier[(msg.room_id, msg.sender_id, msg.client_msg_id or "")] = msg
            rows: list[Any] = []
            live: list[Any] = []  # (room, topic, seq) of stored messages whose buttons stay live
            also: list[WithMessage] = []  # statements committed with their stored messages
            read_marks: dict[tuple[int, int], int] = {}
            hidden_marks: set[tuple[int, int]] = set()
            for i, d in enumerate(batch):
                if d.room_id not in last_seq:
                    results[i] = NotMember("chat.unknown_room")
                    continue
                if (d.sender_kind == "user" and d.sender_id not in read_at[d.room_id]) or (
                        d.audience is not None and d.audience not in read_at[d.room_id]):
                    results[i] = NotMember("chat.unknown_room")
                    continue
                blocked = refusal(blockers[d.room_id], d.sender_id or 0, "block.cannot_send")
                if d.sender_kind == "user" and blocked is not None:  # (the bot still tells both of their contract)
                    results[i] = blocked
                    continue
                key = (d.room_id, d.sender_id, d.client_msg_id or "")
                if d.client_msg_id and key in earlier:
                    results[i] = Sent(earlier[key], True, {})
                    continue
                last_seq[d.room_id] += 1
                msg = Message(d.room_id, last_seq[d.room_id], d.sender_id, d.sender_kind, d.sender_name, d.text,
                              d.body, now, d.client_msg_id, d.audience)
                if d.client_msg_id:
                    earlier[key] = msg  # a retry inside the same batch
                room_hidden = hidden[d.room_id] if d.room_id in hidden else {}
                if d.sender_kind == "user" and d.sender_id is not None:
                    read_at[d.room_id][d.sender_id] = msg.seq  # a sender has read up to their own message
                    if room_hidden.get(d.sender_id):
                        room_hidden[d.sender_id] = 0
                        hidden_marks.add((d.room_id, d.sender_id))
                if d.audience is not None:
                    for u in room_hidden:
                        if u != d.audience:
                            room_hidden[u] += 1
                            hidden_marks.add((d.room_id, u))
                results[i] = Sent(msg, False, {u: max(0, msg.seq - seen - room_hidden.get(u, 0))
                                               for u, seen in read_at[d.room_id].items()})
                rows += [msg.room_id, msg.seq, msg.sender_id, msg.sender_kind, msg.audience, msg.client_msg_id,
                         msg.text, _body_json(msg.body) if msg.body else None, now]
                if d.topic:
                    live += [msg.room_id, d.topic[:64], msg.seq]
                if d.also is not None:
                    also.append(d.also)
                if d.sender_kind == "user" and d.sender_id is not None:
                    read_marks[(d.room_id, d.sender_id)] = msg.seq
            if rows:
                count = len(rows) // 9
                insert = ("INSERT INTO messages (room_id, seq, sender_id, sender_kind, audience_id, client_msg_id,"
                          " text, body, created_at) VALUES "
                          + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * count))
                # One statement moves each room's last_seq, each sender's read position (a sender has read up to
                # their own message) and the count of hidden messages after it where that changed; a room with
                # only bot messages joins no member row.
                changed = sorted({m.message.room_id for m in results if isinstance(m, Sent) and not m.duplicate})
                marks: list[tuple[int, int, int | None, int, int | None]] = [
                    (r, last_seq[r], u, read_marks.get((r, u), 0), hidden[r][u] if (r, u) in hidden_marks else None)
                    for r, u in sorted(set(read_marks) | hidden_marks)]
                marked = {m[0] for m in marks}
                marks += [(r, last_seq[r], None, 0, None) for r in changed if r not in marked]
                # The stored messages' live buttons (``Chat.keep_live``) and the statements that go with them
                # (an announced contract event marked so) are committed with them, in the same round trip.
                keep = ("; INSERT INTO live_buttons (room_id, topic, seq) VALUES "
                        + ", ".join(["(%s, %s, %s)"] * (len(live) // 3))
                        + " ON DUPLICATE KEY UPDATE seq = VALUES(seq)") if live else ""
                await cur.commit_after(
                    insert + "; UPDATE rooms r JOIN (" + " UNION ALL ".join(
                        ["SELECT %s AS room, %s AS last, %s AS user, %s AS seen, %s AS hidden"] * len(marks))
                    + ") x ON x.room = r.id LEFT JOIN room_members m ON m.room_id = x.room AND m.user_id = x.user"
                    " SET r.last_seq = x.last, r.last_message_at = %s,"
                    " m.last_read_seq = GREATEST(m.last_read_seq, x.seen),"
                    " m.hidden_unread = COALESCE(x.hidden, m.hidden_unread)" + keep + "".join(
                        f"; {a.sql}" for a in also),
                    (*rows, *(v for mark in marks for v in mark), now, *live, *(v for a in also for v in a.args)))
                for a in also:
                    a.done = True
        return results  # type: ignore[return-value]


def _body_json(body: dict[str, Any]) -> str:
    """A message's body as stored: JSON in UTF-8 (orjson: a bot answer's cards cost several times less to write
    than with the standard library; the same JSON values, compact)."""
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS).decode()


def _marks(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))
