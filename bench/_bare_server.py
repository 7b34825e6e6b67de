"""A bare python-socketio echo server: the same events as our chat, with no auth, no database and no Redis.
The chat benchmark's yardstick. Usage: python bench/_bare_server.py PORT"""

from __future__ import annotations

import sys

import socketio
from aiohttp import web

sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)
seq: dict[str, int] = {}


@sio.on("join")
async def join(sid: str, data: dict) -> dict:  # type: ignore[type-arg]
    await sio.enter_room(sid, f"room:{data['room']}")
    return {"ok": True}


@sio.on("message")
async def message(sid: str, data: dict) -> dict:  # type: ignore[type-arg]
    room = str(data["room"])
    seq[room] = seq.get(room, 0) + 1
    msg = {"room": data["room"], "seq": seq[room], "text": data["text"]}
    await sio.emit("message", msg, room=f"room:{room}", skip_sid=sid)
    return {"ok": True, "message": msg}


if __name__ == "__main__":
    import gc

    app = web.Application()
    # The same collector setting as `billi serve` (gateway/cli.py tune_gc), so the comparison stays fair.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    sio.attach(app)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
