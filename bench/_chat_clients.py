"""The chat benchmark's load: N socket clients in pairs, each sending in a closed loop (next message after
the previous one's ack) for a while; the partner timestamps arrival. Prints one JSON line of results.
With RATE (messages per second per client) it sends at that steady pace instead (open loop).
Usage: python bench/_chat_clients.py URL CLIENTS_JSON SECONDS [RATE]"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
import time

import socketio


async def main(url: str, clients: list[dict], seconds: float, rate: float) -> None:  # type: ignore[type-arg]
    latencies: list[float] = []
    received = 0
    acked = 0
    total_acked = 0
    errors = 0
    measuring = False
    socks = []
    counter = itertools.count()  # client_msg_ids unique over the whole run (a repeat would be a retry)

    for c in clients:
        sio = socketio.AsyncClient(reconnection=False)

        async def on_message(msg: dict, ) -> None:  # type: ignore[type-arg]
            nonlocal received
            if measuring and msg.get("text", "").startswith("t="):
                received += 1
                latencies.append((time.perf_counter() - float(msg["text"][2:])) * 1000)

        sio.on("message", on_message)
        await sio.connect(url, auth={"token": c.get("token", "")}, transports=["websocket"], wait_timeout=30)
        ack = await sio.call("join", {"room": c["room"]}, timeout=30)
        assert ack.get("ok"), ack
        socks.append((sio, c["room"]))

    async def sender(sio: socketio.AsyncClient, room: object, stop_at: float) -> None:
        nonlocal acked, total_acked, errors
        interval = 1 / rate if rate else 0.0
        next_at = time.perf_counter() + (random.random() * interval)
        while time.perf_counter() < stop_at:
            if interval:  # open loop: a steady pace, like people typing, not as fast as possible
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += interval
            ack = await sio.call("message", {"room": room, "text": f"t={time.perf_counter()!r}",
                                             "client_msg_id": f"{id(sio)}-{next(counter)}"}, timeout=30)
            if ack.get("ok"):
                acked += 1
                total_acked += 1
            else:
                errors += 1

    warmup = time.perf_counter() + 2
    await asyncio.gather(*(sender(s, r, warmup) for s, r in socks))
    measuring = True
    acked = 0
    start = time.perf_counter()
    await asyncio.gather(*(sender(s, r, start + seconds) for s, r in socks))
    elapsed = time.perf_counter() - start
    await asyncio.sleep(0.5)  # let the last deliveries land
    measuring = False
    for sio, _ in socks:
        await sio.disconnect()
    latencies.sort()
    pick = lambda p: latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else 0.0  # noqa: E731
    print(json.dumps({"received": received, "acked": acked, "total_acked": total_acked, "errors": errors, "seconds": elapsed,
                      "msgs_per_s": received / elapsed, "p50_ms": pick(50), "p99_ms": pick(99)}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(open(sys.argv[2]).read()), float(sys.argv[3]),
                     float(sys.argv[4]) if len(sys.argv) > 4 else 0.0))
