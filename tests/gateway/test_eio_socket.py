"""The chat server's Engine.IO websocket transport (gateway.eio_socket) behaves as the library's: packets in
order, each event in its own task, a silent peer hung up, long-polling and its upgrade untouched."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway import wire_json
from gateway.chat_socket import SOCKETIO_VERSION, _Server
from gateway.eio_socket import ENGINEIO_VERSION, ChatEioSocket, _IdleWatch


def test_the_replaced_websocket_handler_is_the_pinned_librarys() -> None:
    # ChatEioSocket copies python-engineio's websocket loop; a new version must be read again before it is used.
    assert version("python-engineio") == ENGINEIO_VERSION
    # _Server follows python-socketio's event dispatch the same way.
    assert version("python-socketio") == SOCKETIO_VERSION


PING = 2  # ping_interval and ping_timeout of the test servers, s (a socket's idle limit is their sum)


@pytest.fixture(params=["ours", "library"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[socketio.AsyncServer, str]]:
    """Each test runs against the chat server's transport and against the library's own, which it must match."""
    async with _serve(request.param == "ours") as served:
        yield served


@pytest.fixture
async def our_server() -> AsyncIterator[tuple[socketio.AsyncServer, str]]:
    """The chat server's transport alone (where it is meant to differ from the library's)."""
    async with _serve(True) as served:
        yield served


@asynccontextmanager
async def _serve(ours: bool) -> AsyncIterator[tuple[socketio.AsyncServer, str]]:
    kind = _Server if ours else socketio.AsyncServer
    sio = kind(async_mode="aiohttp", ping_interval=PING, ping_timeout=PING, json=wire_json, logger=False,
               engineio_logger=False)
    sio.ours = ours
    release = asyncio.Event()

    @sio.on("echo")
    async def echo(sid: str, data: Any) -> Any:
        return data

    @sio.on("slow")
    async def slow(sid: str, data: Any) -> Any:
        await release.wait()
        return "slow done"

    @sio.on("shout")
    async def shout(sid: str, data: Any) -> None:
        await sio.emit("heard", data, to=sid)

    @sio.on("plain")
    def plain(sid: str, data: Any) -> Any:  # (a handler that is not a coroutine function)
        return ["plain", data]

    @sio.on("*")
    async def anything(event: str, sid: str, data: Any) -> Any:
        return ["caught", event, data]

    app = web.Application()
    sio.attach(app)
    sio.release = release
    test_server = TestServer(app)
    await test_server.start_server()
    try:
        yield sio, str(test_server.make_url("/"))
    finally:
        release.set()
        await sio.shutdown()
        await test_server.close()


@asynccontextmanager
async def _connected(url: str, transports: list[str] | None = None,
                     on: dict[str, Any] | None = None) -> AsyncIterator[socketio.AsyncClient]:
    """A socket.io client connected to ``url`` (over a websocket unless told), with ``on``'s handlers."""
    client = socketio.AsyncClient(reconnection=False)
    for event, handler in (on or {}).items():
        client.on(event, handler)
    await client.connect(url, transports=transports or ["websocket"])
    try:
        yield client
    finally:
        await client.disconnect()


async def test_events_and_acks_go_both_ways_in_order_over_a_websocket(server: tuple[Any, str]) -> None:
    sio, url = server
    heard: list[Any] = []
    async with _connected(url, on={"heard": lambda data: heard.append(data)}) as client:
        assert sio.eio.sockets and all(isinstance(s, ChatEioSocket) == sio.ours for s in sio.eio.sockets.values())
        acks = await asyncio.gather(*[client.call("echo", {"n": n}) for n in range(50)])
        assert acks == [{"n": n} for n in range(50)]
        for n in range(20):
            await client.emit("shout", n)
        for _ in range(100):
            if len(heard) == 20:
                break
            await asyncio.sleep(0.02)
        assert heard == list(range(20))
        # Past ping_interval + ping_timeout with nothing sent: the pings keep the socket open.
        await asyncio.sleep(2 * PING + 0.5)
        assert client.connected and await client.call("echo", "still here") == "still here"


async def test_each_kind_of_handler_answers_as_the_library_has_it(server: tuple[Any, str]) -> None:
    _, url = server
    async with _connected(url) as client:
        assert await client.call("echo", {"a": [1, 2]}) == {"a": [1, 2]}
        assert await client.call("plain", 3) == ["plain", 3]
        assert await client.call("no such event", 4) == ["caught", "no such event", 4]


async def test_a_slow_event_does_not_hold_up_the_next_one_from_the_same_socket(server: tuple[Any, str]) -> None:
    sio, url = server
    async with _connected(url) as client:
        slow = asyncio.ensure_future(client.call("slow", {}, timeout=5))
        assert await client.call("echo", "fast", timeout=5) == "fast"
        assert not slow.done()
        sio.release.set()
        assert await slow == "slow done"


async def test_a_client_that_falls_silent_is_hung_up(server: tuple[Any, str]) -> None:
    _, url = server
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url + "socket.io/?EIO=4&transport=websocket") as ws:
            opened = await ws.receive_str(timeout=5)
            assert opened.startswith("0{")
            await ws.send_str("40")  # connect to "/"
            assert (await ws.receive_str(timeout=5)).startswith("40{")
            # Never answers a ping: the server closes the socket once it has waited ping_interval + ping_timeout.
            loop = asyncio.get_running_loop()
            started = loop.time()
            while True:
                msg = await ws.receive(timeout=8)
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    break
            assert loop.time() - started < 2 * PING + 3


async def test_a_client_can_still_start_on_long_polling_and_upgrade(server: tuple[Any, str]) -> None:
    _, url = server
    async with _connected(url, transports=["polling", "websocket"]) as client:
        for _ in range(50):
            if client.transport() == "websocket":
                break
            await asyncio.sleep(0.02)
        assert client.transport() == "websocket"
        assert await client.call("echo", [1, "둘"]) == [1, "둘"]


async def test_an_idle_watch_ends_only_a_wait_longer_than_its_limit() -> None:
    async def waits(pauses: list[float], busy: float = 0.0) -> str:
        idle = _IdleWatch(0.2)
        try:
            for pause in pauses:
                idle.waiting()
                try:
                    await asyncio.sleep(pause)
                except asyncio.CancelledError:
                    return "expired" if idle.expired() else "cancelled"
                idle.done()
                await asyncio.sleep(busy)  # (work between waits never counts)
            return "finished"
        finally:
            idle.close()

    assert await waits([0.1] * 6) == "finished"  # 0.6 s in all, no wait past 0.2 s
    assert await waits([0.05, 0.5]) == "expired"
    assert await waits([0.05, 0.05], busy=0.5) == "finished"
    task = asyncio.ensure_future(waits([5.0]))
    await asyncio.sleep(0.05)
    task.cancel()
    assert await task == "cancelled"  # someone else's cancellation is not the watch's


def _late_client(url: str, out: dict[str, str]) -> None:
    """A client (on a thread of its own: the server's loop stalls) silent for its idle limit, then a pong and an
    event."""

    async def go() -> None:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(url + "socket.io/?EIO=4&transport=websocket")
            await ws.receive_str()
            await ws.send_str("40")
            await ws.receive_str()
            await asyncio.sleep(2 * PING)
            await ws.send_str("3")
            await ws.send_str('4299["echo","late"]')
            while True:
                m = await ws.receive(timeout=5)
                if m.type != aiohttp.WSMsgType.TEXT:
                    out["result"] = f"closed {m.type.name}"
                    return
                if m.data.startswith("4399"):
                    out["result"] = m.data
                    return

    asyncio.run(go())


async def test_a_packet_that_comes_in_the_turn_its_wait_expires_is_still_read(server: tuple[Any, str]) -> None:
    # The loop stalls across the socket's idle limit (2 * PING) and the client's late packets: the library's
    # wait_for sees the read already done and returns it; the socket's event must be answered, not dropped.
    sio, url = server
    sio.eio.start_service_task = False  # (only the socket's own idle limit can end it)
    loop = asyncio.get_running_loop()
    out: dict[str, str] = {}
    thread = threading.Thread(target=_late_client, args=(url, out))
    thread.start()
    while not sio.eio.sockets:
        await asyncio.sleep(0.001)
    loop.call_later(2 * PING - 0.3, time.sleep, 0.7)  # the limit and the packets (just after it) fall inside
    while thread.is_alive():
        await asyncio.sleep(0.05)
    assert out.get("result") == '4399["late"]'


async def test_a_client_cannot_send_a_reserved_event_as_an_event(server: tuple[Any, str]) -> None:
    # "connect" sent as an event would run the connect handler again with the client's own environ and auth.
    sio, url = server
    connects: list[Any] = []

    @sio.on("connect")
    async def connect(sid: str, environ: Any, auth: Any = None) -> None:
        connects.append(auth)

    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(url + "socket.io/?EIO=4&transport=websocket")
        await ws.receive_str()
        await ws.send_str('40{"token":"mine"}')
        assert (await ws.receive_str()).startswith("40")
        for reserved in ("connect", "disconnect", "connect_error"):
            await ws.send_str(f'42["{reserved}",{{"REMOTE_ADDR":"1.2.3.4"}},{{"token":"someone else"}}]')
        await ws.send_str('421["echo","after"]')
        while not (m := await ws.receive_str(timeout=5)).startswith("431"):
            pass
        assert m == '431["after"]'
    if sio.ours:
        assert connects == [{"token": "mine"}]


async def test_a_frame_that_is_no_packet_hangs_up_the_socket(our_server: tuple[Any, str]) -> None:
    # The library's loop raises on it and leaves the socket and its writer half open until the idle limit.
    sio, url = our_server
    async with aiohttp.ClientSession() as http:
        for frame in ("", "x"):
            ws = await http.ws_connect(url + "socket.io/?EIO=4&transport=websocket")
            await ws.receive_str()
            await ws.send_str("40")
            assert (await ws.receive_str()).startswith("40")
            await ws.send_str(frame)
            msg = await ws.receive(timeout=PING)  # (well before the idle limit, 2 * PING)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    loop = asyncio.get_running_loop()
    started = loop.time()
    while any(not s.closed for s in sio.eio.sockets.values()) and loop.time() - started < PING:
        await asyncio.sleep(0.02)
    assert all(s.closed for s in sio.eio.sockets.values())  # (disconnected at once; dropped by the service task)
    while sio.eio.sockets and loop.time() - started < 3 * PING:
        await asyncio.sleep(0.05)
    assert not sio.eio.sockets
