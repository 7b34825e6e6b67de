"""The Engine.IO websocket transport of the chat server, without a task and a timer per packet.

Owns only how a websocket's packets are read and written (python-engineio 4.15.1's
``AsyncSocket._websocket_handler``, pinned in pyproject.toml; tests/gateway/test_eio_socket.py holds it to the
library's behaviour and fails when the pin moves). It never decides anything about a packet's content.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import engineio
from aiohttp.web import WebSocketResponse
from engineio import exceptions, packet
from engineio.async_socket import AsyncSocket

ENGINEIO_VERSION = "4.15.1"  # the version whose websocket handler ChatEioSocket replaces (read it again to move)


class _IdleWatch:
    """Cancels its task when the wait it is in has lasted ``limit`` seconds — what ``asyncio.wait_for`` did
    around each wait, with one timer per ``limit`` instead of a task, a future and a timer per packet. Only a wait
    between ``waiting()`` and ``done()`` can expire; ``expired()`` tells that cancellation from any other."""

    __slots__ = ("_loop", "_limit", "_since", "_task", "_fired", "_timer")

    def __init__(self, limit: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._limit = limit
        self._since: float | None = None
        self._task = asyncio.current_task()
        self._fired = False
        self._timer: asyncio.TimerHandle | None = self._loop.call_at(self._loop.time() + limit, self._check)

    def waiting(self) -> None:
        self._since = self._loop.time()

    def done(self) -> None:
        self._since = None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def rearm(self) -> None:
        """Watch again after an expiry whose wait turned out to have ended in the same turn (the library's
        ``wait_for`` then returned the result): the next wait has its full limit."""
        if self._timer is None:
            self._timer = self._loop.call_at(self._loop.time() + self._limit, self._check)

    def expired(self) -> bool:
        """Whether the task's cancellation was this watch's (the task is then no longer being cancelled)."""
        if not self._fired:
            return False
        self._fired = False
        if self._task is not None:
            self._task.uncancel()
        return True

    def _check(self) -> None:
        now = self._loop.time()
        since = self._since
        if since is not None and now >= since + self._limit - 0.001 and self._task is not None:
            self._timer, self._fired = None, True
            self._task.cancel()
            return
        self._timer = self._loop.call_at((now if since is None else since) + self._limit, self._check)


class ChatEioSocket(AsyncSocket):  # type: ignore[misc]
    """The library's socket, whose websocket loop reads each packet in its own task (``websocket_wait`` under
    ``asyncio.wait_for``) and whose writer waits for each outgoing packet under ``wait_for`` — a task, a future
    and a timer per packet, and three extra hops through the event loop. Here the reader and the writer await
    the websocket and the queue themselves, with the same time limit (``ping_interval + ping_timeout``) kept by
    an ``_IdleWatch``, and a message packet goes straight to the server's ``message`` handler as the library's
    ``receive`` would hand it (python-socketio's handler then runs each event in its own task, as before).
    Long-polling and everything else are the library's."""

    async def _websocket_handler(self, ws: Any) -> Any:
        if self.connected:  # an upgrade from long-polling: the library's handshake, then its loop
            return await super()._websocket_handler(ws)
        self.connected = True
        self.upgraded = True
        server = self.server
        limit = server.ping_interval + server.ping_timeout
        writer_task = asyncio.get_running_loop().create_task(self._write_websocket(ws, limit))
        try:
            await self._read_websocket(ws, limit)
            await self.queue.put(None)  # unlock the writer task so it can exit
            await writer_task
        finally:  # (also when the server hung up first: aiohttp then cancels this handler as the connection ends)
            await self.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)

    async def _read_websocket(self, ws: Any, limit: float) -> None:
        """Read and hand on packets until the client closes, the socket fails, or a wait lasts ``limit``."""
        server = self.server
        max_size = server.max_http_buffer_size
        on_message = server.handlers.get("message")
        inline = on_message is not None and not server.async_handlers and asyncio.iscoroutinefunction(on_message)
        receive = _receiver(ws)
        buffered = _buffered(ws)
        idle = _IdleWatch(limit)
        try:
            while True:
                idle.waiting()
                try:
                    if receive is None:
                        data = await ws.wait()
                    else:  # (the library's ws.wait, without a coroutine of its own)
                        data = (await receive()).data
                        if not isinstance(data, (bytes, str)):
                            return  # (a close or an error: ws.wait raised OSError, and the loop ended)
                except asyncio.CancelledError:
                    if idle.expired() and buffered() and _not_cancelled():
                        idle.rearm()  # (a packet came in the turn the wait expired: the library's wait_for read it)
                        continue
                    return  # (ours or not, the library's loop ends here: it swallowed a cancellation)
                except Exception:  # noqa: BLE001 — the library's loop ends on any error of its wait
                    return
                idle.done()
                if data and len(data) > max_size:
                    return  # (packet is too large: the library's wait raised, and its loop ended)
                if data is None:
                    return  # connection closed by client
                try:
                    pkt = packet.Packet(encoded_packet=data)
                except Exception:  # noqa: BLE001 — not an Engine.IO packet: hang up (the library's loop raised,
                    server.logger.info("Undecodable packet -- closing")  # leaving the socket half open)
                    return
                try:
                    if inline and pkt.packet_type == packet.MESSAGE:
                        # (the library's receive → _trigger_event("message", run_async=False), minus its log line)
                        try:
                            await on_message(self.sid, pkt.data)
                        except asyncio.CancelledError:
                            pass
                        except Exception:  # noqa: BLE001 — as the library: log, and read on
                            server.logger.exception("message async handler error")
                    else:
                        await self.receive(pkt)
                except exceptions.UnknownPacketError:
                    pass
                except exceptions.SocketIsClosedError:
                    server.logger.info("Receive error -- socket is closed")
                    return
                except BaseException:  # noqa: BLE001 — as the library (a bare except): log the error and read on
                    server.logger.exception("Unknown receive error")
        finally:
            idle.close()

    async def _write_websocket(self, ws: Any, limit: float) -> None:
        """Send what is queued, in order, until the queue says stop (``None``), a send fails, or nothing has come
        for ``limit`` (the library's ``poll`` then raised ``QueueEmpty``); then close the websocket."""
        queue = self.queue
        send_str, send_bytes = _senders(ws)
        idle = _IdleWatch(limit)
        try:
            while True:
                idle.waiting()
                try:
                    pkt = await queue.get()
                except asyncio.CancelledError:
                    if idle.expired() and not queue.empty() and _not_cancelled():
                        idle.rearm()  # (a packet came in the turn the wait expired: the library's poll took it)
                        continue
                    break  # (ours or not: the library's poll turned it into QueueEmpty)
                idle.done()
                queue.task_done()
                if pkt is None:
                    break
                packets = [pkt]
                while not queue.empty():  # (then whatever else is queued, up to a stop)
                    pkt = queue.get_nowait()
                    queue.task_done()
                    if pkt is None:
                        queue.put_nowait(None)
                        break
                    packets.append(pkt)
                try:
                    for pkt in packets:
                        data = pkt.encode()
                        await (send_bytes(data) if isinstance(data, bytes) else send_str(data))
                except BaseException:  # noqa: BLE001 — as the library (a bare except): a failed send ends the writer
                    break
        finally:
            idle.close()
        await ws.close()


def _receiver(ws: Any) -> Callable[[], Awaitable[Any]] | None:
    """aiohttp's ``receive`` of the websocket the library wrapped (its ``ws.wait`` awaits it and checks the
    message), or None with another driver."""
    sock = getattr(ws, "_sock", None)
    return sock.receive if isinstance(sock, WebSocketResponse) else None


def _buffered(ws: Any) -> Callable[[], bool]:
    """Whether a message the client sent is waiting in the websocket's reader (aiohttp's; never with another
    driver)."""
    reader = getattr(getattr(ws, "_sock", None), "_reader", None)
    if reader is None or not hasattr(reader, "_buffer"):
        return lambda: False
    return lambda: bool(reader._buffer)


def _not_cancelled() -> bool:
    """Whether nothing else (a shutdown) is cancelling the current task."""
    task = asyncio.current_task()
    return task is not None and not task.cancelling()


def _senders(ws: Any) -> tuple[Callable[[str], Awaitable[None]], Callable[[bytes], Awaitable[None]]]:
    """What the library's ``ws.send`` calls for text and for bytes, without asking each time whether it is a
    coroutine function (aiohttp's are)."""
    sock = getattr(ws, "_sock", None)
    if isinstance(sock, WebSocketResponse):
        return sock.send_str, sock.send_bytes
    return ws.send, ws.send


class ChatEioServer(engineio.AsyncServer):  # type: ignore[misc]
    """The library's Engine.IO server, whose sockets are ``ChatEioSocket``s. The library builds each socket
    itself (``AsyncSocket(self, sid)`` in ``_handle_connect``), so a new socket becomes one at its ``connect``
    event, which comes after it is built and before any packet of its transport is read or written."""

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect":
            socket = self.sockets.get(args[0])
            if type(socket) is AsyncSocket:
                socket.__class__ = ChatEioSocket  # (it adds methods only: no state of its own)
        return await super()._trigger_event(event, *args, **kwargs)
