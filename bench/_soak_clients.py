"""One process of the soak benchmark's load: a share of the clients, both members of each pair in here, so
a receiver can tell which of its partner's acknowledged messages it never got.

Protocol with bench/soak.py (one JSON object per line):

1. connect every client (websocket, ``auth={"token": …}``) and ``join`` its deal room, then print
   ``{"ready": <clients>, "connect_s": <seconds>}``;
2. read ``{"start": <t0>, "end": <t_end>}`` from stdin — CLOCK_MONOTONIC times, which on Linux are the same
   clock in every process; senders begin at once (the warm-up) and stop at ``end``; latencies count from ``start``;
3. after ``end``: wait for every send's ack, give the partners until ``drain_s`` seconds to receive what was
   acknowledged, print ``{"drained": true}``;
4. on the next line from stdin, disconnect, write the results to RESULT_JSON and print ``{"done": true}``.

Latency is measured two ways per message, both from the moment the sender emits it: until its ack (stored in
MariaDB), and until the OTHER member of the room receives it (through the gateway's Redis fan-out). Both are
kept per minute of the measured period, by the minute the message was sent in.

    python bench/_soak_clients.py URL SPEC_JSON RESULT_JSON
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import socketio

ACK_TIMEOUT_S = 30.0
CONNECT_AT_ONCE = 20  # connects in flight per process: quick, without a thundering herd on the gateway


@dataclass
class Client:
    """One connected person: what they sent (and got acknowledged) and what they received from their partner."""

    index: int
    token: str
    room: int
    partner: int
    sends: bool
    sio: socketio.AsyncClient | None = None
    acked: set[int] = field(default_factory=set)  # seqs of our messages the gateway acknowledged
    received: set[int] = field(default_factory=set)  # seqs of the partner's messages that reached us


@dataclass
class Tally:
    """Everything this process reports back."""

    tag: str
    t0: float = 0.0
    sent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    timeouts: int = 0
    duplicates: int = 0  # a (room, seq) received twice by the same client
    disconnects: list[tuple[float, int]] = field(default_factory=list)  # (seconds after start, client index)
    delivery_ms: defaultdict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    ack_ms: defaultdict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    closing: bool = False

    def minute(self, sent_at: float) -> int:
        """The measured minute (0 = the first) a message sent at ``sent_at`` belongs to; negative = warm-up."""
        return int((sent_at - self.t0) // 60) if sent_at >= self.t0 else -1


async def connect(url: str, client: Client, tally: Tally, gate: asyncio.Semaphore) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    prefix = f"{tally.tag}-{client.partner}-"  # our partner's client_msg_ids

    async def on_message(msg: dict[str, Any]) -> None:
        cid = msg.get("client_msg_id")
        if not isinstance(cid, str) or not cid.startswith(prefix):
            return  # a bot or system message, or not ours
        arrived = time.monotonic()
        seq = int(msg["seq"])
        if seq in client.received:
            tally.duplicates += 1
            return
        client.received.add(seq)
        sent_at = float(str(msg["text"])[2:])
        if (minute := tally.minute(sent_at)) >= 0:
            tally.delivery_ms[minute].append((arrived - sent_at) * 1000)

    async def on_disconnect(*_: Any) -> None:
        if not tally.closing:
            tally.disconnects.append((time.monotonic() - tally.t0 if tally.t0 else 0.0, client.index))

    sio.on("message", on_message)
    sio.on("disconnect", on_disconnect)
    async with gate:
        await sio.connect(url, auth={"token": client.token}, transports=["websocket"], wait_timeout=60)
        ack = await sio.call("join", {"room": client.room}, timeout=60)
    if not ack.get("ok"):
        raise RuntimeError(f"join refused: {ack}")
    client.sio = sio


async def send_one(client: Client, tally: Tally, number: int) -> None:
    assert client.sio is not None
    sent_at = time.monotonic()
    tally.sent += 1
    try:
        ack = await client.sio.call("message", {"room": client.room, "text": f"t={sent_at!r}",
                                                "client_msg_id": f"{tally.tag}-{client.index}-{number}"},
                                    timeout=ACK_TIMEOUT_S)
    except socketio.exceptions.TimeoutError:
        tally.timeouts += 1
        return
    except socketio.exceptions.SocketIOError as e:  # not connected any more
        tally.errors[type(e).__name__] += 1
        return
    if not ack.get("ok"):
        tally.errors[str(ack.get("error", {}).get("code", "unknown"))] += 1
        return
    client.acked.add(int(ack["message"]["seq"]))
    if (minute := tally.minute(sent_at)) >= 0:
        tally.ack_ms[minute].append((time.monotonic() - sent_at) * 1000)


async def sender(client: Client, tally: Tally, interval: float, end: float,
                 in_flight: set[asyncio.Task[None]]) -> None:
    """Open loop: one message every ``interval`` seconds from a random phase, whether or not the previous one
    was acknowledged yet, so a slow gateway shows up as latency instead of as fewer messages."""
    next_at = time.monotonic() + random.random() * interval
    number = 0
    while next_at < end:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        task = asyncio.create_task(send_one(client, tally, number))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        number += 1
        next_at += interval


async def main(url: str, spec: dict[str, Any]) -> dict[str, Any]:
    tally = Tally(tag=spec["tag"])
    clients = [Client(index=i, token=c["token"], room=int(c["room"]), partner=int(c["partner"]),
                      sends=bool(c["sends"])) for i, c in enumerate(spec["clients"])]
    began = time.monotonic()
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    await asyncio.gather(*(connect(url, c, tally, gate) for c in clients))
    print(json.dumps({"ready": len(clients), "connect_s": time.monotonic() - began}), flush=True)

    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    go = json.loads(line)
    tally.t0, end = float(go["start"]), float(go["end"])
    in_flight: set[asyncio.Task[None]] = set()
    await asyncio.gather(*(sender(c, tally, float(spec["interval"]), end, in_flight) for c in clients if c.sends))
    while in_flight:
        await asyncio.gather(*list(in_flight))

    def undelivered() -> int:
        return sum(len(c.acked - clients[c.partner].received) for c in clients)

    drain_until = time.monotonic() + float(spec["drain_s"])
    while undelivered() and time.monotonic() < drain_until:
        await asyncio.sleep(0.1)
    missing = [[c.room, seq] for c in clients for seq in sorted(c.acked - clients[c.partner].received)]
    # Stay connected until the parent has taken its end-of-run sample of the gateway.
    print(json.dumps({"drained": True}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    tally.closing = True
    await asyncio.gather(*(c.sio.disconnect() for c in clients if c.sio is not None))
    result = {
        "tag": tally.tag, "clients": len(clients), "sent": tally.sent,
        "acked": sum(len(c.acked) for c in clients), "received": sum(len(c.received) for c in clients),
        "errors": dict(tally.errors), "timeouts": tally.timeouts, "duplicates": tally.duplicates,
        "disconnects": tally.disconnects, "undelivered": missing,
        "acked_keys": [[c.room, seq] for c in clients for seq in sorted(c.acked)],
        "delivery_ms": {str(k): v for k, v in tally.delivery_ms.items()},
        "ack_ms": {str(k): v for k, v in tally.ack_ms.items()},
    }
    return result


if __name__ == "__main__":
    with open(sys.argv[2], encoding="utf-8") as spec_file:
        outcome = asyncio.run(main(sys.argv[1], json.load(spec_file)))
    with open(sys.argv[3], "w", encoding="utf-8") as result_file:
        json.dump(outcome, result_file)
    print(json.dumps({"done": True}), flush=True)
