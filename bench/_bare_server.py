"""A bare python-socketio echo server: the same events as our chat, with no auth, no database and no Redis.
The chat benchmark's yardstick. With ``--tuned`` it runs with the tuning `billi serve` has (orjson as the
JSON codec, uvloop), so our overhead over it stays visible. Usage: python bench/_bare_server.py PORT [--tuned]"""

from __future__ import annotations

import sys

import socketio
from aiohttp import web

TUNED = "--tuned" in sys.argv
if TUNED:
    import orjson

    class _Codec:
        @staticmethod
        def dumps(obj: object, **_: object) -> str:
            return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()

        loads = staticmethod(orjson.loads)

sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False,
                           **({"json": _Codec} if TUNED else {}))
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
    if TUNED:
        import asyncio

        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
