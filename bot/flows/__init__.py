"""Conversation flows: ``transitions.AsyncMachine`` models whose state and data live in Redis.

A flow belongs to one person in one room. ``FlowStore.load`` rebuilds the model and its machine at the
saved state; ``save`` writes it back after every event. So a flow continues after a gateway restart and on
any node. (The engine handles one room's events at a time across nodes, so a load-change-save never races.)

The saved record keeps the time of the last event: a flow idle longer than ``IDLE_S`` is ended politely on
the next message (the record itself lives a day, so the person can be told why).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

IDLE_S = 30 * 60


class Refusal(Exception):
    """Words for the one person whose press or command cannot be carried out: the engine returns them in the
    press's acknowledgement or, for a typed command, as a toast — never as a message in the room."""

    def __init__(self, text: str, code: str = "bot.refused") -> None:
        super().__init__(text)
        self.text = text
        self.code = code
KEEP_S = 24 * 3600


@dataclass
class FlowRecord:
    name: str
    state: str
    data: dict[str, Any] = field(default_factory=dict)
    touched: float = field(default_factory=time.time)

    @property
    def idle(self) -> bool:
        return time.time() - self.touched > IDLE_S


class FlowStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._asks: list[tuple[str, asyncio.Future[bool]]] = []
        self._asker: asyncio.Task[None] | None = None

    @staticmethod
    def key(room_id: int, user_id: int) -> str:
        return f"bot:flow:{room_id}:{user_id}"

    async def is_open(self, room_id: int, user_id: int) -> bool:
        """Whether this person has a flow open in this room. Asked for nearly every message people type to each
        other in a deal room, so the questions pending in this process go to Redis together, in one pipelined
        round trip (as the chat's send gate does)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._asks.append((self.key(room_id, user_id), future))
        if self._asker is None or self._asker.done():
            self._asker = asyncio.create_task(self._ask())
        return await future

    async def _ask(self) -> None:
        while self._asks:
            batch, self._asks = self._asks, []
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key, _ in batch:
                        pipe.exists(key)
                    found = await pipe.execute()
            except Exception as e:  # noqa: BLE001 — every waiting message hears about it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (_, future), n in zip(batch, found, strict=True):
                if not future.done():
                    future.set_result(bool(n))

    async def load(self, room_id: int, user_id: int) -> FlowRecord | None:
        return await self.read(room_id, user_id, await self._redis.get(self.key(room_id, user_id)))

    async def read(self, room_id: int, user_id: int, raw: Any) -> FlowRecord | None:
        """The flow saved as ``raw`` (the value at ``key``, read by the caller, e.g. with a command's flood count)."""
        if raw is None:
            return None
        try:
            body = json.loads(raw)
            return FlowRecord(body["name"], body["state"], body["data"], float(body["touched"]))
        except (ValueError, KeyError, TypeError):
            await self.clear(room_id, user_id)  # unreadable: start over rather than fail every message
            return None

    async def save(self, room_id: int, user_id: int, record: FlowRecord) -> None:
        record.touched = time.time()
        body = {"name": record.name, "state": record.state, "data": record.data, "touched": record.touched}
        await self._redis.set(self.key(room_id, user_id), json.dumps(body, ensure_ascii=False), ex=KEEP_S)

    async def clear(self, room_id: int, user_id: int) -> None:
        await self._redis.delete(self.key(room_id, user_id))
