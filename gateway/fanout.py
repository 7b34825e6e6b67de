"""Socket.IO fan-out between gateway nodes, routed by audience: python-socketio's Redis manager, publishing each
emit on the channel of the room or person it is for, and subscribed only to the channels its own sockets need.

It knows rooms only as names (no chat rules live here) and never waits on Redis in an emit: one PUBLISH per emit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import urlparse

import socketio
from bidict import ValueDuplicationError
from engineio import packet as eio_packet
from engineio.exceptions import SocketIsClosedError
from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
from redis._parsers.hiredis import _AsyncHiredisParser
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

log = logging.getLogger("billi.fanout")

SUBSCRIBE_CHUNK = 1000  # channels per SUBSCRIBE command when a node (re)subscribes everything at once
HEALTH_CHECK_S = 15  # the listening connection pings Redis when it has read nothing for this long
# TCP keepalive on the listening connection: a peer silent for 10 s is probed every 5 s, given up after 3 misses
KEEPALIVE = {getattr(socket, k): v for k, v in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))
             if hasattr(socket, k)}
MODES = ("routed", "shared")
TAG_LEN = 8  # hex digits of the node id that start each of its sids (a shared tag only costs traffic, never a miss)
_TAGGED_SID = re.compile(rf"[0-9a-f]{{{TAG_LEN}}}\.[A-Za-z0-9_-]{{20}}")
# A flush's emits in one command: PUBLISH each (channel, payload) pair of ARGV, in order. One command and one reply
# per flush instead of a pipelined PUBLISH per emit, whose packing and reply parsing the node paid for each emit.
PUBLISH_ALL = "for i = 1, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end return #ARGV / 2"
_PUBLISH_ALL_SHA = hashlib.sha1(PUBLISH_ALL.encode()).hexdigest()
PUBLISH_CHUNK = 1000  # emits per command (a long script holds Redis up for everyone else)
_MESSAGE = (b"message", "message")  # a published message's reply kind, as bytes or decoded


class RoutedRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """The library's Redis manager, routing by audience.

    Channels (``<channel>`` is the configured name):

    - ``<channel>#<room>``: everything for one room — a chat room, a person's ``user:…`` room, a session's
      ``session:…`` room — so one person's private events reach only the nodes holding that person's sockets;
    - ``<channel>@<node tag>``: what is for one socket of one node (an emit, disconnect or room change for a sid
      of that node, an acknowledgement back to the node that asked); each sid starts with its node's tag;
    - ``<channel>``: the rest (emits to everyone or to a list of rooms, sids of untagged form); every node listens.

    ``mode="shared"`` is the first step of a rolling upgrade from one-channel nodes: it listens on all of the above
    but publishes everything on ``<channel>``, as a one-channel node does, so the two kinds hear each other. Once
    every node runs it, switch them (one by one) to ``mode="routed"``.

    A node subscribes a room's channel while at least one of its sockets is in the room and unsubscribes when the
    last one leaves, in batches, on its listening connection. The guarantees:

    - a channel is never unsubscribed while a local socket is in its room: joins and leaves of other sockets
      never make a socket miss anything;
    - ``enter_room`` for a connected socket returns once Redis has confirmed the subscription (at once if the node
      already had it), so whatever is published after it returns reaches the socket — a ``join`` then reads the
      history with nothing falling in between (if Redis confirms only after ``subscribe_wait_s``, the joiner
      goes on, and gets ``resync`` once the confirmation arrives); ``settled`` waits the same way, once, for
      all the rooms a socket entered while it connected;
    - if the listening connection is lost, nobody waits on it: once back, the node subscribes every channel it
      needs again and tells its clients to catch up (``resync``).

    Also: publishes are queued and sent by one flusher as a pipeline (a burst of emits costs one round trip, in
    order); our own emits coming back are dropped before they are decoded; emit skips the binary-attachment scan
    (chat payloads are plain JSON); every Redis client it makes is kept, so shutdown can close them all.
    """

    def __init__(self, *args: Any, subscribe_wait_s: float = 3.0, mode: str = "routed", **kwargs: Any) -> None:
        if mode not in MODES:
            raise ValueError(f"fan-out mode must be one of {', '.join(MODES)}, not {mode!r}")
        super().__init__(*args, **kwargs)
        self.fanout_mode = mode
        self.clients: list[Any] = []
        self.received = 0  # messages read from Redis (the fan-out bench and tests read it)
        self.subscribe_wait_s = subscribe_wait_s
        self._outbox: list[tuple[str, Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.tag = self.host_id[:TAG_LEN]
        self.node_channel = self._node_channel(self.tag)
        self._room_prefix = self.channel + "#"
        # Subscriptions: how many local (namespace, room) pairs want each channel; which changed since the last
        # sync; which the listening connection has subscribed (last command SUBSCRIBE); replies still to come.
        self._refs: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._sent: set[str] = set()
        self._pending: dict[str, int] = {}
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._late_sids: dict[str, set[tuple[str, str]]] = {}  # channel -> sockets that went on unconfirmed
        self._listening: Any = None  # the listening connection's PubSub, once it has subscribed
        self._deaf = False  # the listening connection is lost (its clients will be told to resync)
        self._syncer: asyncio.Task[None] | None = None
        self._listener: tuple[Any, Any] | None = None
        self._late, self._late_logged = 0, -1e9  # joins that went on unconfirmed, and when that was last logged

    @property
    def subscriptions(self) -> int:
        """How many channels this node's listener is subscribed to (the fan-out bench reports it)."""
        return len(self._sent)

    # -- channels ------------------------------------------------------------------------------------
    def _node_channel(self, tag: str) -> str:
        return f"{self.channel}@{tag}"

    def room_channel(self, namespace: str, room: Any) -> str:
        """The channel a named room's emits travel on."""
        if namespace == "/":
            return self._room_prefix + str(room)
        return f"{self._room_prefix}{namespace}#{room}"

    def _target(self, namespace: str, room: Any) -> str | None:
        """The channel an emit to ``room`` is published on; None when no other node can have its audience."""
        if isinstance(room, (str, int)):
            ns = self.rooms.get(namespace)
            if ns is not None and room in ns.get(None, ()):
                return None  # one of our own sids: served here, nobody else has it
            if isinstance(room, str) and _TAGGED_SID.fullmatch(room):
                return self._node_channel(room[:TAG_LEN])
            return self.room_channel(namespace, room)
        return self.channel  # everyone, or a list of rooms (one copy, not one per room: no duplicates)

    def _sid_target(self, namespace: str, sid: Any) -> str | None:
        if self.is_connected(sid, namespace) or self.is_pre_connected(sid, namespace):
            return None
        if isinstance(sid, str) and _TAGGED_SID.fullmatch(sid):
            return self._node_channel(sid[:TAG_LEN])
        return self.channel

    def _route(self, data: dict[str, Any]) -> str | None:
        method, namespace = data.get("method"), data.get("namespace") or "/"
        if method in ("emit", "close_room"):
            return self._target(namespace, data.get("room"))
        if method == "callback":  # back to the node that asked (host_id names it)
            return self._node_channel(str(data.get("host_id", ""))[:TAG_LEN])
        if method in ("disconnect", "enter_room", "leave_room"):
            return self._sid_target(namespace, data.get("sid"))
        return self.channel

    # -- sids name their node ------------------------------------------------------------------------
    async def pre_connect(self, eio_sid: str, namespace: str) -> str | None:
        """The library's pre_connect, with the node's tag in front of the sid (so an event for a sid of another
        node goes to that node alone)."""
        sid = f"{self.tag}.{self.server.eio.generate_id()}"
        try:
            self.basic_enter_room(sid, namespace, None, eio_sid=eio_sid)
        except ValueDuplicationError:
            return None  # already connected
        self.basic_enter_room(sid, namespace, sid, eio_sid=eio_sid)
        self.pending_connect.setdefault(namespace, []).append(sid)
        return sid

    # -- which channels this node needs --------------------------------------------------------------
    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        named = room is not None and room != sid
        new = named and room not in self.rooms.get(namespace, {})
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if new:
            channel = self.room_channel(namespace, room)
            n = self._refs.get(channel, 0)
            self._refs[channel] = n + 1
            if n == 0:
                self._changed(channel)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        named = room is not None and room != sid
        had = named and room in self.rooms.get(namespace, {})
        super().basic_leave_room(sid, namespace, room)
        if had and room not in self.rooms.get(namespace, {}):
            channel = self.room_channel(namespace, room)
            n = self._refs.get(channel, 0) - 1
            if n > 0:
                self._refs[channel] = n
            else:
                self._refs.pop(channel, None)
                self._changed(channel)

    async def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        """The library's enter_room; for a connected socket of this node it returns once the node is subscribed
        to the room's channel (see the class notes)."""
        await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        if room is not None and room != sid and self.is_connected(sid, namespace):
            await self.subscribed(self.room_channel(namespace, room), (namespace, sid))

    async def settled(self, sid: str, namespace: str = "/") -> None:
        """Wait once (at most ``subscribe_wait_s``) until every room channel of ``sid`` is subscribed; at once for
        the channels the node already had."""
        channels = {self.room_channel(namespace, room) for room in self.get_rooms(sid, namespace)
                    if room is not None and room != sid}
        await asyncio.gather(*(self.subscribed(c, (namespace, sid)) for c in channels))

    async def subscribed(self, channel: str, joiner: tuple[str, str] | None = None) -> None:
        """Wait until Redis has confirmed this node's subscription to ``channel`` (at most ``subscribe_wait_s``;
        not at all while the listening connection is lost: the node will send ``resync`` once it is back).
        A ``joiner`` (namespace, sid) that goes on unconfirmed gets ``resync`` when the confirmation comes."""
        if self._deaf or (channel in self._sent and channel not in self._pending):
            return
        waiter = self._waiters.get(channel)
        if waiter is None:
            waiter = self._waiters[channel] = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.subscribe_wait_s)
        except TimeoutError:
            if self._waiters.get(channel) is waiter:  # (no reply may ever come: its socket may have left)
                del self._waiters[channel]
            if joiner is not None and not self._deaf and (channel not in self._sent or channel in self._pending):
                # What was published meanwhile may be lost to it: it catches up once the node hears the room.
                self._late_sids.setdefault(channel, set()).add(joiner)
            self._late += 1
            now = time.monotonic()
            if now - self._late_logged >= 10:  # (a storm of joins would otherwise log each one)
                log.warning("%d chat subscription(s) not confirmed within %.1f s; going on (resync when they "
                            "are)", self._late,
                            self.subscribe_wait_s)
                self._late, self._late_logged = 0, now

    def _changed(self, channel: str) -> None:
        self._dirty.add(channel)
        if self._listening is not None and (self._syncer is None or self._syncer.done()):
            with contextlib.suppress(RuntimeError):  # (no running loop: the listener syncs when it starts)
                self._syncer = asyncio.get_running_loop().create_task(self._sync())

    async def _sync(self) -> None:
        """Bring the listening connection's subscriptions in line with the rooms this node has members in."""
        while self._dirty and (pubsub := self._listening) is not None:
            dirty, self._dirty = self._dirty, set()
            subscribe, unsubscribe = [], []
            for channel in dirty:
                if channel in self._refs:
                    if channel in self._sent:
                        continue
                    self._sent.add(channel)
                    subscribe.append(channel)
                elif channel in self._sent:
                    self._sent.discard(channel)
                    unsubscribe.append(channel)
                else:
                    self._late_sids.pop(channel, None)  # (left before it was ever subscribed)
                    continue
                self._pending[channel] = self._pending.get(channel, 0) + 1
            try:
                for command, channels in ((pubsub.unsubscribe, unsubscribe), (pubsub.subscribe, subscribe)):
                    for chunk in _chunks(channels):
                        if self._listening is not pubsub:
                            return  # (a new listener subscribes what the node needs now, from the start)
                        await command(*chunk)
            except Exception as exc:  # noqa: BLE001 — the listener reconnects and subscribes everything again
                log.warning("could not change chat subscriptions (%s); listening again", exc)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # (its listen() ends: the listener starts over)
                return

    def _replied(self, channel: str) -> set[tuple[str, str]]:
        """A (un)subscribe reply: once the last command sent for the channel is answered, joiners may go on; the
        joiners that went on before are returned (they are to catch up)."""
        n = self._pending.get(channel, 0) - 1
        if n > 0:
            self._pending[channel] = n
            return set()
        self._pending.pop(channel, None)
        waiter = self._waiters.pop(channel, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return self._late_sids.pop(channel, set())

    async def _resync_late(self, joiners: set[tuple[str, str]]) -> None:
        for namespace, sid in joiners:
            if self.is_connected(sid, namespace):
                await self._handle_emit({"method": "emit", "event": "resync", "data": [{}], "binary": False,
                                         "namespace": namespace, "room": sid, "skip_sid": None, "callback": None,
                                         "host_id": self.host_id})

    def _release_waiters(self) -> None:
        self._late_sids = {}  # (the whole node resyncs once it hears again)
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_result(None)

    # -- delivering to this node's sockets ------------------------------------------------------------
    async def _handle_emit(self, message: dict[str, Any]) -> None:
        """The library's delivery of an emit to this node's sockets, without a task (and a wait on them all) per
        socket: a socket's send only puts the packet in its queue, so each is sent in turn, and a socket that
        closed meanwhile is passed over, as before (the library's task failed alone). An emit with a callback or
        binary attachments goes the library's way."""
        if message.get("callback") is not None or message.get("binary"):
            await super()._handle_emit(message)
            return
        namespace = message.get("namespace") or "/"
        if namespace not in self.rooms:
            return
        # (the library's reading of the arguments: one is the value, several a tuple, a tuple's items each one)
        data = message.get("data")
        if isinstance(data, list):
            data = data[0] if len(data) == 1 else tuple(data)
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        skip = message.get("skip_sid")
        skip = skip if isinstance(skip, list) else [skip]
        targets = [eio_sid for sid, eio_sid in self.get_participants(namespace, message.get("room"))
                   if sid not in skip]
        if not targets:
            return
        encoded = self.server.packet_class(socketio.packet.EVENT, namespace=namespace,
                                           data=[message.get("event"), *args]).encode()
        packets = [eio_packet.Packet(eio_packet.MESSAGE, p) for p in (encoded if isinstance(encoded, list)
                                                                        else [encoded])]
        send = self.server._send_eio_packet  # (what the library's manager calls: the server's contract)
        for eio_sid in targets:
            for p in packets:
                try:
                    await send(eio_sid, p)
                except SocketIsClosedError:
                    break  # (hung up meanwhile)
                except Exception:  # noqa: BLE001 — one socket's failure is never the others'
                    log.exception("sending a chat event to one socket failed")
                    break

    # -- publishing ----------------------------------------------------------------------------------
    async def emit(self, event: str, data: Any, namespace: str | None = None, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None, **kwargs: Any) -> None:
        """The library's emit without its binary-attachment scan (every chat payload is plain JSON), published on
        its audience's channel, or not at all when that audience is one of this node's sockets."""
        if callback is not None or kwargs.get("ignore_queue"):
            await super().emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid, callback=callback,
                               to=to, **kwargs)
            return
        namespace = namespace or "/"
        room = to or room
        message = {"method": "emit", "event": event, "data": [data], "binary": False, "namespace": namespace,
                   "room": room, "skip_sid": skip_sid, "callback": None, "host_id": self.host_id}
        channel = self._target(namespace, room)
        await self._handle_emit(message)
        if channel is not None:
            self._queue(channel, message)

    async def _publish(self, data: Any) -> None:
        channel = self._route(data)
        if channel is not None:
            self._queue(channel, data)

    def _queue(self, channel: str, data: Any) -> None:
        if self.fanout_mode == "shared":
            channel = self.channel  # (where a one-channel node hears it)
        self._outbox.append((channel, self.json.dumps(data)))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            sent = 0  # a retry goes on from the first chunk not published (a chunk is one script call: all or none)
            for attempt in range(2):
                try:
                    if not self.connected:
                        self._redis_connect()
                    while sent < len(batch):
                        await self._publish_all(batch[sent:sent + PUBLISH_CHUNK])
                        sent += PUBLISH_CHUNK
                    break
                except Exception as exc:  # noqa: BLE001 — the library's own policy: reconnect once, then drop
                    self.connected = False
                    if attempt:
                        log.error("could not publish %d chat events to other nodes: %s", len(batch) - sent, exc)

    async def _publish_all(self, batch: list[tuple[str, Any]]) -> None:
        """PUBLISH every (channel, payload) of ``batch``, in order, in one script call (``PUBLISH_ALL``)."""
        args = [x for pair in batch for x in pair]
        try:
            await self.redis.evalsha(_PUBLISH_ALL_SHA, 0, *args)
        except NoScriptError:  # (a Redis restarted or flushed since: EVAL sends it again, and Redis keeps it)
            await self.redis.eval(PUBLISH_ALL, 0, *args)

    def _redis_connect(self) -> None:
        super()._redis_connect()
        self.clients.append((self.pubsub, self.redis))

    # -- listening -----------------------------------------------------------------------------------
    def _listener_connect(self) -> Any:
        """A connection of the listener's own, with no silent reconnects: a lost one is noticed here, where the
        node subscribes everything again and tells its clients to catch up."""
        if "+" in urlparse(self.redis_url).scheme:  # (sentinel: the library's way to find the primary)
            super()._redis_connect()
            client = self.redis
        else:
            # A connection that falls silent (a peer gone without a word) is noticed by TCP keepalive and by a
            # PING sent when nothing was read for HEALTH_CHECK_S, instead of listening forever.
            client = self._get_redis_module().Redis.from_url(self.redis_url, **{
                "health_check_interval": HEALTH_CHECK_S, "socket_keepalive": True,
                "socket_keepalive_options": KEEPALIVE, "socket_connect_timeout": max(self.subscribe_wait_s, 1.0),
                **self.redis_options, "retry": Retry(NoBackoff(), 0)})
        pubsub = client.pubsub()  # (subscribe replies wanted: they say when a joiner may go on)
        self._listener = (pubsub, client)
        return pubsub

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener[0].aclose()
                await listener[1].aclose()

    async def _redis_listen_with_retries(self) -> AsyncIterator[dict[str, Any]]:
        """The library's listener with a short, capped backoff (0.2 s doubling to 1 s, not 1 s to 60 s), so a node
        hears its room events again about a second after Redis returns; every channel it needs is subscribed
        again, then its own clients are told to catch up (``resync``), since pub/sub dropped whatever was
        published while it was deaf."""
        retry_sleep, lost = 0.2, False
        while True:
            try:
                pubsub = self._listener_connect()
                self._sent, self._pending = set(), {}
                channels = [self.channel, self.node_channel, *self._refs]
                self._sent.update(channels)
                for channel in channels:
                    self._pending[channel] = 1
                for chunk in _chunks(channels):
                    await pubsub.subscribe(*chunk)
                self._listening, self._deaf, retry_sleep = pubsub, False, 0.2
                if self._dirty:
                    self._changed(next(iter(self._dirty)))
                if lost:
                    lost = False
                    await self._handle_emit({"method": "emit", "event": "resync", "data": [{}], "binary": False,
                                             "namespace": "/", "room": None, "skip_sid": None,
                                             "callback": None, "host_id": self.host_id})
                async for message in _listened(pubsub):
                    yield message
                raise ConnectionError("the subscription ended")  # (listen() returning is a lost connection too)
            except Exception as exc:  # noqa: BLE001 — the library's policy: log and try again
                self._listening, self._deaf = None, True
                self._release_waiters()
                await self._close_listener()
                if not lost:  # (once per outage, not every second of it)
                    log.error("chat events from other nodes stopped (%s); listening again every %.1f–1 s", exc,
                              retry_sleep)
                lost = True
                await asyncio.sleep(retry_sleep)
                retry_sleep = min(retry_sleep * 2, 1.0)

    async def _listen(self) -> AsyncIterator[Any]:
        # Our own emits come back from the channel; the library would decode each one only to drop it.
        # The codec keeps key order and writes compact JSON, and emit() puts host_id last.
        mine = b'"host_id":"' + self.host_id.encode() + b'"}'
        async for message in self._redis_listen_with_retries():
            if type(message) is list:  # a published message as the parser read it: [kind, channel, data]
                self.received += 1
                data = message[2]
                if isinstance(data, bytes) and data.startswith(b'{"method":"emit"') and data.endswith(mine):
                    continue
                yield data
                continue
            kind = message.get("type")
            if kind == "message":
                self.received += 1
                data = message.get("data")
                if isinstance(data, bytes) and data.startswith(b'{"method":"emit"') and data.endswith(mine):
                    continue
                yield data
            elif kind in ("subscribe", "unsubscribe"):
                channel = message["channel"]
                late = self._replied(channel.decode() if isinstance(channel, bytes) else channel)
                if late:
                    await self._resync_late(late)

    async def aclose(self) -> None:
        """Stop listening and publishing and close every Redis connection (the library leaves them open)."""
        self._listening, self._deaf = None, True  # (sockets leaving from now on change no subscription)
        self._release_waiters()
        if self._flusher is not None:  # (what was emitted before shutdown still goes out, within a deadline)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._flusher), max(self.subscribe_wait_s, 1.0))
        for task in (getattr(self, "thread", None), self._syncer, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._close_listener()
        for pubsub, client in self.clients:
            await pubsub.aclose()
            await client.aclose()


async def _listened(pubsub: Any) -> AsyncIterator[Any]:
    """``pubsub.listen()``, except that a published message the parser has already read off the socket comes
    straight from it, as its raw reply ``[kind, channel, data]`` (a list): the library's read of one reply — its
    health check, retry wrapper, timeout handling and observability hooks, then a dict per message — cost a node
    more than the rest of hearing a message, and a node hears each of its own emits back. Replies waiting in the
    parser's buffer are already off the socket, so nothing about waiting, timeouts or a lost connection changes:
    once the buffer is empty (or with another parser) the library's own read runs, and with it its checks.
    Anything other than a published message met in the buffer (a subscribe reply, a health-check pong, an error) is
    treated as the library's read treats it."""
    connection = pubsub.connection
    parser = getattr(connection, "_parser", None)
    fast = isinstance(parser, _AsyncHiredisParser)
    while pubsub.subscribed:
        response = parser._reader.gets() if fast and parser._connected else False  # noqa: SLF001
        if response is False or response is _NOT_ENOUGH_DATA:
            response = await pubsub.parse_response(block=True)
        else:
            if isinstance(response, Exception):
                raise response
            if isinstance(response, list) and response and isinstance(response[0], Exception):
                raise response[0]
            if type(response) is list and len(response) == 3 and response[0] in _MESSAGE:
                yield response
                continue
            if connection.health_check_interval and response in pubsub.health_check_response:
                continue
        message = await pubsub.handle_message(response)
        if message is not None:
            yield message


def _chunks(channels: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(channels), SUBSCRIBE_CHUNK):
        yield channels[i:i + SUBSCRIBE_CHUNK]
