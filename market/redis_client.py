"""The market's Redis client: redis-py's blocking pool and client, with a short path for the common case.

It keeps the documented behaviour of ``BlockingConnectionPool`` + ``Retry(NoBackoff(), 1)``: under a burst a command
waits (``timeout`` seconds) for a free connection instead of failing; a connection that died (a restarted Redis) is
dropped and the command sent once more; socket timeouts are the connection's own. It must never change what a
command sends or returns — only skip the library's per-command machinery when nobody is waiting and no hook is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection, Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

# A connection error (a restarted Redis): the connection is dropped and the command sent once more, at once.
RETRIES = 1


class _Connection(Connection):
    """A connection that packs commands with hiredis (as the library's own synchronous client does) and, when the
    socket takes the bytes at once, sends them without a timed wait (``asyncio.wait_for`` makes a task and a timer
    for every command). A socket that cannot take them (its buffer past the high-water mark) or a connection that
    is closing is waited on with the socket timeout, as the library does."""

    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        return self._packer.pack(*args)

    async def send_packed_command(self, command: bytes | str | Iterable[bytes], check_health: bool = True) -> None:
        writer = self._writer
        if (writer is None or not self.socket_timeout or self.health_check_interval or isinstance(command, str)
                or writer.transport.is_closing() or writer._reader is None  # noqa: SLF001
                or writer._reader.exception() is not None):  # noqa: SLF001
            return await super().send_packed_command(command, check_health)
        try:
            writer.writelines([command] if isinstance(command, bytes) else command)
            transport = writer.transport
            if transport.is_closing() or transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]:
                await asyncio.wait_for(writer.drain(), self.socket_timeout)
        except asyncio.TimeoutError:
            await self.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as e:
            await self.disconnect(nowait=True)
            raise RedisConnectionError(f"Error while writing to socket. {e}.") from e
        except BaseException:
            await self.disconnect(nowait=True)
            raise
        return None


class Pool(aioredis.BlockingConnectionPool):
    """A blocking pool that hands out a free, connected connection without its condition lock and timer when no
    command is waiting for one (the library takes both for every command: a tenth of a bot command's Redis cost).
    When commands are waiting, the library's own path keeps them first in line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting = 0  # commands inside the library's get_connection (waiting, or about to)
        # a credential provider re-authenticates connections as they come back: the library's path does that
        self._plain = kwargs.get("credential_provider") is None

    async def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> AbstractConnection:
        conn = self.take()
        if conn is not None:
            try:
                await self.ensure_connection(conn)
            except BaseException:
                await self.release(conn)
                raise
            return conn
        self._waiting += 1
        try:
            return await super().get_connection()
        finally:
            self._waiting -= 1

    def _busy(self) -> bool:
        """The pool is being rewritten (a maintenance notice moving connections): the library's locked path."""
        return bool(getattr(self, "_in_maintenance", False))

    def take(self) -> AbstractConnection | None:
        """A free connection now (not yet checked: see ``ensure_connection``), or None: wait in line for one."""
        if self._waiting or not self._plain or not self._available_connections or self._busy():
            return None
        conn = self._available_connections.pop()
        self._in_use_connections.add(conn)
        return conn

    def give_back(self, conn: AbstractConnection) -> bool:
        """Put a connection back at once when nobody waits for it; False: use ``release`` (it wakes a waiter,
        or reconnects a connection marked for it)."""
        if self._waiting or not self._plain or self._busy() or conn.should_reconnect():
            return False
        self._in_use_connections.remove(conn)
        self._available_connections.append(conn)
        return True


class Client(aioredis.Redis):
    """``redis.asyncio.Redis`` whose commands take ``Pool``'s short path and retry a dead connection once, inline
    (the library's Retry object, closures and metrics hooks cost more than many commands' own work). Pipelines,
    Pub/Sub and locks are the library's, on the same pool."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        pool = self.connection_pool
        if self.single_connection_client or self.connection is not None or not isinstance(pool, Pool):
            return await super().execute_command(*args, **options)
        conn = await pool.get_connection()
        try:
            failures = 0
            while True:
                try:
                    return await self._send_command_parse_response(conn, args[0], *args, **options)
                except RedisConnectionError as error:
                    failures += 1
                    await conn.disconnect(error=error, failure_count=failures)
                    if failures > RETRIES:
                        raise
        finally:
            if not pool.give_back(conn):
                await pool.release(conn)

    def register_script(self, script: Any) -> AsyncScript:
        return _Script(self, script)


class _Script(AsyncScript):
    """A registered script called on its own client: EVALSHA straight away (the library first asks whether the
    client is a pipeline, a slow check against a typing Protocol); on another client, the library's call."""

    async def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        if client is not None:
            return await super().__call__(keys, args, client)
        keys = keys or []
        every = (*keys, *(args or ()))
        try:
            return await self.registered_client.evalsha(self.sha, len(keys), *every)
        except NoScriptError:  # (a Redis restarted or flushed since: load it again)
            self.sha = await self.registered_client.script_load(self.script)
            return await self.registered_client.evalsha(self.sha, len(keys), *every)


def connect(url: str, *, max_connections: int, timeout_s: float, wait_s: float = 10) -> Client:
    """A client on a pool of at most ``max_connections``; a command waits up to ``wait_s`` for a free connection;
    a frozen Redis is an error after ``timeout_s``, not a request that hangs."""
    pool = Pool.from_url(url, max_connections=max_connections, timeout=wait_s, decode_responses=True,
                         connection_class=_Connection,
                         socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                         # (pipelines use the library's Retry: the same policy)
                         retry=Retry(NoBackoff(), RETRIES, supported_errors=(RedisConnectionError,)),
                         retry_on_error=[RedisConnectionError],
                         # A new connection says only HELLO: no CLIENT SETINFO (the library's name and version, which
                         # it looks up in the installed packages' metadata for every connection) and no
                         # MAINT_NOTIFICATIONS (a managed cloud's moving notices; ours is one plain server) — a
                         # burst that grows the pool paid three round trips and a metadata scan per connection.
                         driver_info=None, maint_notifications_config=MaintNotificationsConfig(enabled=False))
    return Client.from_pool(pool)
