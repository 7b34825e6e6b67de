"""The chat wire: a python-socketio AsyncServer on the aiohttp app, rooms shared across gateway processes
through Redis (AsyncRedisManager).

A socket connects only with a live session (``auth={"token": …}`` or the session cookie). Every event is
checked (shape, membership, a still-live session) and answered with an acknowledgement
``{"ok": true, …}`` or ``{"ok": false, "error": {"code", "message"}}``; the market does the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from http.cookies import SimpleCookie
from typing import Any, Protocol

import socketio

from gateway import wire_json
from gateway.eio_socket import ChatEioServer
from gateway.fanout import RoutedRedisManager
from gateway.keys import SESSION_COOKIE
from gateway.routing import Access
from market.chat import Message, Sent
from market.config import Config
from market.db import unavailable
from market.errors import InvalidInput, MarketError, Unauthenticated
from market.messages import render
from market.people.accounts import token_hash
from market.service import Market

log = logging.getLogger("billi.socket")

Ack = dict[str, Any]
MAX_PACKET_BYTES = 64 * 1024
TYPING_EVERY_S = 1.0
# Who may send each event (a socket connects only with a live session): every one names a room, and only its
# members may touch it. tests/gateway/test_authorization_matrix.py holds each handler to this table.
EVENT_ACCESS: dict[str, Access] = {
    "join": Access.MEMBER, "message": Access.MEMBER, "action": Access.MEMBER, "typing": Access.MEMBER,
    "read": Access.MEMBER, "history": Access.MEMBER,
}


class BotHook(Protocol):
    """What the gateway hands every stored message and button press to (the bot engine)."""

    async def on_message(self, room_id: int, message: dict[str, Any], user_id: int,
                         flow_open: bool | None = None) -> None: ...

    def flow_key(self, room_id: int, user_id: int) -> str: ...

    async def on_action(self, room_id: int, token: str, user_id: int, seq: Any = None, given: Any = None) -> Ack: ...

    async def open_deal(self, item_id: int, user_id: int) -> dict[str, Any]: ...

    async def deal_view(self, room_id: int, user_id: int) -> dict[str, Any] | None: ...

    async def after_link(self, room_id: int, user_id: int, account: dict[str, Any]) -> None: ...

    async def welcome(self, room_id: int, user_id: int) -> None: ...


def room_channel(room_id: int) -> str:
    return f"room:{room_id}"


def user_channel(user_id: int) -> str:
    return f"user:{user_id}"


def session_channel(token: str) -> str:
    """Every socket of one session (log-out hangs them up)."""
    return f"session:{token_hash(token)[:32]}"


_event_tasks: set[asyncio.Task[Any]] = set()  # (each event's task, held until it ends)

# An event never sent to a client: each node that gets it hangs up its own sockets in the room it names.
HANG_UP = "__hang_up__"


class _RedisManager(RoutedRedisManager):
    """The routed manager (gateway.fanout), and the one event never sent to a client: ``HANG_UP``."""

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        if message.get("event") == HANG_UP:
            namespace = message.get("namespace") or "/"
            for sid, _ in list(self.get_participants(namespace, message.get("room"))):
                await self.server.disconnect(sid, namespace=namespace, ignore_queue=True)
            return
        await super()._handle_emit(message)


class _Packet(socketio.packet.Packet):  # type: ignore[misc]
    """The library's packet without its binary-attachment scan: it walks every value of every event and ack a
    node sends (a bot answer's cards are hundreds of them), and no chat payload holds bytes — each is plain JSON.
    (A client's binary event is still read: decoding does not depend on it.)"""

    uses_binary_events = False


SOCKETIO_VERSION = "5.18.1"  # the version whose event dispatch _Server follows (read it again to move)


class _Server(socketio.AsyncServer):  # type: ignore[misc]
    """The library's server (python-socketio 5.18.1, pinned) on an Engine.IO server whose websockets read and
    write without a task and a timer per packet (gateway.eio_socket); each event still runs in its own task."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._coroutine: dict[Any, bool] = {}  # handler → whether it is a coroutine function (asked once)

    def _engineio_server_class(self) -> type[ChatEioServer]:
        return ChatEioServer

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        """The library's, with the event's task made by the loop itself (its ``start_background_task`` goes
        through ``ensure_future``'s checks first), and without events a client names after reserved ones
        (``connect`` sent as an event would run the connect handler again, with an environ and auth of its own)."""
        if data and data[0] in self.reserved_events:
            self.logger.warning("%s sent a reserved event as an event: dropped", eio_sid)
            return
        if not self.async_handlers:
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        self.logger.info('received event "%s" from %s [%s]', data[0], sid, namespace)
        if not self.manager.is_connected(sid, namespace):
            self.logger.warning("%s is not connected to namespace %s", sid, namespace)
            return
        task = asyncio.get_running_loop().create_task(
            self._handle_event_internal(self, sid, eio_sid, data, namespace, id))
        _event_tasks.add(task)
        task.add_done_callback(_event_tasks.discard)

    async def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        """The library's, except that an event's own coroutine handler is found and called without asking
        ``inspect`` each time; anything else (catch-alls, namespaces, reserved events) goes the library's way."""
        handler = self.handlers.get(namespace, {}).get(event)
        if handler is not None and event not in self.reserved_events:
            coroutine = self._coroutine.get(handler)
            if coroutine is None:
                coroutine = self._coroutine[handler] = asyncio.iscoroutinefunction(handler)
            if coroutine:
                try:
                    return await handler(*args)
                except asyncio.CancelledError:
                    return None
        return await super()._trigger_event(event, namespace, *args)


def build_server(config: Config) -> socketio.AsyncServer:
    manager = _RedisManager(config.redis_url or "redis://127.0.0.1:6379/0", channel=config.socketio_channel,
                            json=wire_json, subscribe_wait_s=config.redis_timeout_ms / 1000,
                            mode=config.fanout)
    return _Server(async_mode="aiohttp", client_manager=manager, max_http_buffer_size=MAX_PACKET_BYTES,
                   ping_interval=20, ping_timeout=20, logger=False, engineio_logger=False,
                   json=wire_json, serializer=_Packet)


async def close_server(sio: socketio.AsyncServer) -> None:
    """Stop the server's background work and close its Redis connections (the library leaves them open)."""
    await sio.shutdown()
    await sio.manager.aclose()


class ChatSocket:
    """Registers the chat events on a server and turns them into market calls."""

    def __init__(self, sio: socketio.AsyncServer, market: Market, bot: BotHook | None = None) -> None:
        self.sio = sio
        self.market = market
        self.bot = bot
        self._tasks: set[asyncio.Task[None]] = set()
        handlers: dict[str, Callable[..., Awaitable[Any]]] = {
            "join": self._join, "message": self._message, "action": self._action, "typing": self._typing,
            "read": self._read, "history": self._history,
        }
        assert handlers.keys() == EVENT_ACCESS.keys(), "every chat event declares who may send it"
        sio.on("connect", self._connect)
        for event, handler in handlers.items():
            sio.on(event, self._guarded(handler))

    # -- connection --------------------------------------------------------------------------------
    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) and isinstance(auth.get("token"), str) else None
        if token is None:
            cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
            token = cookie[SESSION_COOKIE].value if SESSION_COOKIE in cookie else None
        user = await self.market.accounts.session_user(token)
        if user is None:
            locale = "en" if str(environ.get("HTTP_ACCEPT_LANGUAGE", "")).lower().startswith("en") else "ko"
            # The client sees {"message": <words to show>, "data": {"code": …}} in its connect_error.
            raise socketio.exceptions.ConnectionRefusedError(render("chat.login_required", locale),
                                                             {"code": "chat.login_required"})
        await self.sio.save_session(sid, {"user_id": user.id, "nickname": user.nickname, "locale": user.locale,
                                          "token": token, "typing_at": {}})
        await self.sio.enter_room(sid, user_channel(user.id))
        await self.sio.enter_room(sid, session_channel(token))
        for room_id in await self.market.chat.room_ids(user.id):
            await self.sio.enter_room(sid, room_channel(room_id))
        # Connected once its node hears its person and rooms (one wait, for the channels the node lacked).
        await self.sio.manager.settled(sid)
        self.sio.start_background_task(self._badge_after_connect, sid, user.id)

    async def _badge_after_connect(self, sid: str, user_id: int) -> None:
        """What happened while the person was away: their unread notification count, once connected."""
        await asyncio.sleep(0.05)
        unread = await self.market.notifications.unread(user_id)
        await self.sio.emit("room_update", {"notifications": unread}, to=sid)

    async def push_badges(self, user_ids: list[int], counts: Mapping[int, int]) -> None:
        """New notifications: each person's open clients get their unread count (``room_update``; ``counts``: those
        read already, right after the commit that told them)."""
        for user_id in user_ids:
            unread = counts[user_id] if user_id in counts else await self.market.notifications.unread(user_id)
            await self.sio.emit("room_update", {"notifications": unread}, room=user_channel(user_id))

    def _guarded(self, handler: Callable[[str, dict[str, Any], dict[str, Any]], Awaitable[Ack]]
                 ) -> Callable[[str, Any], Awaitable[Ack]]:
        """Shape check, session check and error answers around one event handler."""

        async def run(sid: str, data: Any = None) -> Ack:
            try:
                session = await self.sio.get_session(sid)
            except KeyError:
                return _error("chat.login_required", "ko")
            locale = session.get("locale", "ko")
            try:
                if handler != self._message and (
                        await self.market.accounts.session_user_id(session["token"]) != session["user_id"]):
                    raise Unauthenticated("chat.session_expired")
                if not isinstance(data, dict):
                    raise InvalidInput("chat.bad_event", expected="{\"room\": …}")
                return await handler(sid, data, session)
            except MarketError as e:
                if e.code == "chat.session_expired":
                    # Answer first, then hang up, so the client can tell the person why.
                    self._later(self.sio.disconnect(sid))
                return _error(e.code, locale, field=e.field, **e.params)
            except Exception as e:
                room = data.get("room") if isinstance(data, dict) else None
                if (busy := unavailable(e)) is not None:  # the database busy or away: try again shortly
                    log.warning("chat event: database unavailable: %r", e.__cause__ or e, extra={"room": room})
                    return _error(busy.code, locale, **busy.params)
                log.exception("chat event failed", extra={"room": room})
                return _error("service.internal", locale)

        return run

    def _later(self, coro: Awaitable[Any], delay: float = 0.2) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            await coro
        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sessions that end ---------------------------------------------------------------------------
    async def hang_up(self, token_hashes: list[str]) -> None:
        """Every live socket of these sessions, on every node, is told why (``session_ended``) and hung up (at
        log-out and wherever a session is ended)."""
        for digest in token_hashes:
            room = f"session:{digest[:32]}"
            await self.sio.emit("session_ended", {"code": "chat.session_ended",
                                                  "message": render("chat.session_ended", "ko")}, room=room)
            await self.sio.emit(HANG_UP, {}, room=room)

    async def sweep(self) -> int:
        """Hang up this node's sockets whose session has ended meanwhile (expired, or revoked while a node did not
        hear of it — Redis away); returns how many."""
        sessions: dict[str, list[str]] = {}
        for sid, _ in list(self.sio.manager.get_participants("/", None)):
            with contextlib.suppress(KeyError):
                sessions.setdefault((await self.sio.get_session(sid))["token"], []).append(sid)
        if not sessions:
            return 0
        live = await self.market.accounts.live_sessions(list(sessions))
        ended = [(token, sids) for token, sids in sessions.items() if token not in live]
        for token, sids in ended:
            for sid in sids:
                with contextlib.suppress(KeyError):
                    locale = (await self.sio.get_session(sid)).get("locale", "ko")
                    await self.sio.emit("session_ended", {"code": "chat.session_expired",
                                                          "message": render("chat.session_expired", locale)}, to=sid)
                await self.sio.disconnect(sid)
        return sum(len(sids) for _, sids in ended)

    async def sweep_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                if hung := await self.sweep():
                    log.info("hung up %d socket(s) whose session had ended", hung)
            except Exception:  # noqa: BLE001 — the next round tries again
                log.exception("checking the sessions of connected sockets failed")

    # -- events ------------------------------------------------------------------------------------
    async def _join(self, sid: str, data: dict[str, Any], session: dict[str, Any]) -> Ack:
        """Open a room: subscribe, and catch up from ``after_seq`` (or get the latest page)."""
        room = await self.market.chat.room(_int(data.get("room"), "room"), session["user_id"])
        await self.sio.enter_room(sid, room_channel(room.id))
        if data.get("welcome") is True and room.kind == "assistant" and self.bot is not None:
            try:  # (the widget asks the first time it opens the room; the bot says it once, to a newcomer only)
                await self.bot.welcome(room.id, session["user_id"])
            except Exception:  # noqa: BLE001 — a welcome not said never keeps anyone out of their room
                log.exception("welcoming user %s failed", session["user_id"])
        if data.get("after_seq") is not None:
            page = await self.market.chat.history(session["user_id"], room.id, after_seq=data["after_seq"],
                                                  limit=data.get("limit", 100))
        else:
            page = await self.market.chat.history(session["user_id"], room.id, limit=data.get("limit", 50))
        unread = (await self.market.chat.unread_for(room.id)).get(session["user_id"], 0)
        return {"ok": True, "room": room.id, "kind": room.kind, "item_id": room.item_id, "unread": unread, **page}

    async def _message(self, sid: str, data: dict[str, Any], session: dict[str, Any]) -> Ack:
        # The session check rides in the same Redis round trip as the send-rate count, and so does the bot's
        # question: whether it has one open for this person in this room (their words may answer it).
        user_id = session["user_id"]
        sent = await self.market.chat.send(user_id, session["nickname"], data.get("room"),
                                           data.get("text"), data.get("client_msg_id"),
                                           session_token=session["token"],
                                           watch=None if self.bot is None else lambda room: self.bot.flow_key(
                                               room, user_id))
        wire = sent.message.to_wire()
        if not sent.duplicate:
            await self.publish(sent, skip_sid=sid, wire=dict(wire))
            if self.bot is not None:
                # The date picker's message also names its dates exactly (the words are for people to read).
                dates = data.get("dates")
                picked = ({"start": str(dates.get("start"))[:10], "end": str(dates.get("end"))[:10]}
                          if isinstance(dates, dict) else None)
                # A chip's command goes with its words (the bot runs it only in the person's assistant room).
                command = data.get("command")
                extra = {**({"dates": picked} if picked else {}),
                         **({"command": command[:300]} if isinstance(command, str) else {})}
                try:
                    await self.bot.on_message(sent.message.room_id, {**wire, **extra}, user_id, sent.watched)
                except Exception as e:  # noqa: BLE001 — the message is stored and delivered; the assistant missed it
                    log.warning("the assistant could not take a message: %r", e, extra={"room": sent.message.room_id})
        # The sender has the text already: the receipt says where it was stored (saves encoding it again).
        receipt = {"room": wire["room"], "seq": wire["seq"], "id": wire["id"], "ts": wire["ts"]}
        if "client_msg_id" in wire:
            receipt["client_msg_id"] = wire["client_msg_id"]
        return {"ok": True, "message": receipt, "duplicate": sent.duplicate}

    async def _action(self, sid: str, data: dict[str, Any], session: dict[str, Any]) -> Ack:
        room = await self.market.chat.room(_int(data.get("room"), "room"), session["user_id"])
        token = data.get("token")
        if not isinstance(token, str) or not 0 < len(token) <= 512:
            raise InvalidInput("chat.bad_event", expected="{\"room\": …, \"token\": \"…\"}")
        if self.bot is None:
            return {"ok": True, "handled": False, "message": render("chat.bot_pending", session.get("locale", "ko"))}
        given = data.get("input")
        if given is not None and (not isinstance(given, dict) or len(str(given)) > 4000):
            raise InvalidInput("chat.bad_event", expected="{\"room\": …, \"token\": \"…\", \"input\": {…}}")
        return await self.bot.on_action(room.id, token, session["user_id"], data.get("seq"), given)

    async def _typing(self, sid: str, data: dict[str, Any], session: dict[str, Any]) -> Ack:
        room_id = _int(data.get("room"), "room")
        last = session["typing_at"].get(room_id, 0.0)
        if time.monotonic() - last < TYPING_EVERY_S:
            return {"ok": True}  # collapsed: the others already know
        await self.market.chat.room(room_id, session["user_id"])
        session["typing_at"][room_id] = time.monotonic()
        await self.sio.save_session(sid, session)
        await self.sio.emit("typing", {"room": room_id, "user": {"id": session["user_id"],
                                                                   "name": session["nickname"]}},
                            room=room_channel(room_id), skip_sid=sid)
        return {"ok": True}

    async def _read(self, sid: str, data: dict[str, Any], session: dict[str, Any]) -> Ack:
        state = await self.market.chat.mark_read(session["user_id"], data.get("room"), data.get("seq"))
        await self.sio.emit("read", {"room": state["room"], "user_id": session["user_id"], "seq": state["seq"]},
                            room=room_channel(state["room"]), skip_sid=sid)
        await self.sio.emit("room_update", {"room": state["room"], "unread": state["unread"],
                                            "last_seq": state["last_seq"]}, room=user_channel(session["user_id"]))
        return {"ok": True, **state}

    async def _history(self, sid: str, data: dict[str, Any], session: dict[str, Any]) -> Ack:
        page = await self.market.chat.history(session["user_id"], data.get("room"), before_seq=data.get("before_seq"),
                                              after_seq=data.get("after_seq"), limit=data.get("limit", 50))
        return {"ok": True, **page}

    # -- fan-out -----------------------------------------------------------------------------------
    async def publish(self, sent: Sent, *, skip_sid: str | None = None, wire: dict[str, Any] | None = None) -> None:
        """Send a stored message to the room's sockets — every socket of every member is in it from connect
        (or joins on ``room_update new``) — with each member's unread count after it, so one emit keeps
        every member's badges right (a second event per message would halve the chat's throughput)."""
        message = sent.message
        if message.audience is not None:
            # A message for one member: the whole of it to that member's sockets, its seq alone to the others'.
            for user_id, n in sent.unread.items():
                out = message.to_wire() if user_id == message.audience else message.placeholder()
                out["unread"] = {str(user_id): n}
                await self.sio.emit("message", out, room=user_channel(user_id), skip_sid=skip_sid)
            return
        wire = wire if wire is not None else message.to_wire()
        wire["unread"] = {str(user_id): n for user_id, n in sent.unread.items()}
        await self.sio.emit("message", wire, room=room_channel(message.room_id), skip_sid=skip_sid)

    async def update(self, message: Message) -> None:
        """A stored message changed (its buttons retired): clients redraw it; a private one goes to its member
        alone (the others hold only its seq)."""
        wire = message.to_wire()
        if message.audience is not None:
            await self.sio.emit("message_update", wire, room=user_channel(message.audience))
        else:
            await self.sio.emit("message_update", wire, room=room_channel(message.room_id))

    async def notice(self, user_id: int, room_id: int, code: str, text: str,
                     retry_after: int | None = None) -> None:
        """Words for one person's open clients that are never stored (a refusal of what they typed): a toast;
        ``retry_after`` when it is "too often" (the seconds before trying again)."""
        notice: dict[str, Any] = {"room": room_id, "code": code, "message": text}
        if retry_after is not None:
            notice["retry_after"] = retry_after
        await self.sio.emit("notice", notice, room=user_channel(user_id))

    async def deal_changed(self, room_id: int) -> None:
        """The deal on top of the room changed: its members' clients fetch it again (it differs by person)."""
        await self.sio.emit("deal_update", {"room": room_id}, room=room_channel(room_id))

    async def announce_room(self, room_id: int, user_ids: list[int]) -> None:
        """Tell members' connected clients about a room they were just added to (they then ``join`` it)."""
        for user_id in user_ids:
            await self.sio.emit("room_update", {"room": room_id, "new": True}, room=user_channel(user_id))


def _int(raw: Any, field: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise InvalidInput("chat.unknown_room", field=field)
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput("chat.unknown_room", field=field) from None


def _error(code: str, locale: str, *, field: str | None = None, **params: Any) -> Ack:
    error: dict[str, Any] = {"code": code, "message": render(code, locale, field=field, **params)}
    if field:
        error["field"] = field
    if isinstance(params.get("retry_after"), int):  # "too fast": when to send again (a queue paces itself)
        error["retry_after"] = params["retry_after"]
    return {"ok": False, "error": error}
