"""The Lua scripts of the cluster store, loaded once and called by name.

Each script is one atomic step on the state of record (see ``lua/``). Room
scripts share a prelude and take the room's keys (``redis_keys.room_keys``)
plus ``prefix, maxlen, roomId`` first; replies are lists whose first item is
a status (``ok``, ``miss``, ``closed``...). Nothing here decides room rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from pathlib import Path
from typing import Any

from redis.asyncio import Connection, Redis
from redis.exceptions import NoScriptError, ResponseError

from . import redis_keys as keys

_LUA = Path(__file__).with_name("lua")
_PRELUDE = (_LUA / "_prelude.lua").read_text()
ROOM_SCRIPTS = ("commit", "join", "leave", "disconnect", "resume", "seed", "load", "reset",
                "close")
PLAIN_SCRIPTS = ("reap", "lease")

#: entries kept per room log (approximate trim); a reader further behind reloads the room
LOG_MAXLEN = 1000
#: most script calls in one write (the rest go in the next round trip)
MAX_BATCH = 512

try:
    from hiredis import pack_command
except ImportError:  # pragma: no cover - hiredis is in requirements.txt
    from redis.connection import PythonRespSerializer

    _serializer = PythonRespSerializer(6000, Redis().get_encoder().encode)

    def pack_command(args: tuple[Any, ...]) -> bytes:
        return b"".join(_serializer.pack(*args))


def text(value: Any) -> Any:
    """bytes → str, recursively through the lists a script returns."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [text(v) for v in value]
    return value


class _Script:
    """A Lua source and its SHA1 (what EVALSHA names it by)."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # Redis names scripts by SHA1


class RawConnection:
    """One Redis connection of our own, for the hot paths: commands packed by
    ``hiredis``, replies read raw (no redis-py response callbacks), one timeout
    per exchange instead of one per reply. Any failure drops the connection (its
    position in the reply stream is unknown); the next exchange opens a new one.
    """

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._connection: Connection | None = None

    async def exchange(self, commands: list[bytes], timeout: float) -> list[Any]:
        """Send packed commands in one write; their replies, in order (a ResponseError
        reply is returned in its place, not raised)."""
        connection = self._connection
        if connection is None:
            pool = self._client.connection_pool
            connection = self._connection = pool.connection_class(
                **{**pool.connection_kwargs, "socket_timeout": None})
        replies: list[Any] = []
        try:
            async with asyncio.timeout(timeout):
                await connection.send_packed_command(b"".join(commands), check_health=False)
                for _ in commands:
                    try:
                        replies.append(await connection.read_response())
                    except ResponseError as exc:  # this command's error; the others stand
                        replies.append(exc)
        except BaseException:
            await self.drop()
            raise
        return replies

    async def drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.disconnect(nowait=True)


class Scripts:
    """Room scripts batched on one connection of their own.

    Calls made while the previous batch is on the wire queue up and go out
    together as one write once it is answered (a batch per round trip, the
    way auto-pipelining clients do): under load a batch carries many calls
    and a process makes few ``send`` calls; when quiet a call goes out in the
    next loop iteration. redis-py's pipeline was measured at ~20 % of a busy
    process: it packs in Python (``hiredis.pack_command`` is ~8× faster),
    checks out a pooled connection, sends ``SCRIPT EXISTS`` before every
    batch and arms a timeout per reply (here: one per batch). A script
    missing from Redis's cache (``NOSCRIPT``, after a restart) is loaded and
    the call retried once.
    """

    def __init__(self, client: Redis, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout
        self._wire = RawConnection(client)
        self._pending: list[tuple[bytes, asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._room = {
            name: _Script(_PRELUDE + (_LUA / f"{name}.lua").read_text()) for name in ROOM_SCRIPTS
        }
        self._plain = {
            name: client.register_script((_LUA / f"{name}.lua").read_text())
            for name in PLAIN_SCRIPTS
        }
        self._heads: dict[str, tuple[Any, ...]] = {}

    async def room(self, name: str, room_id: str, *args: Any) -> list[Any]:
        """Run a room script; the reply with its status decoded."""
        script = self._room[name]
        head = self._heads.get(room_id)
        if head is None:
            if len(self._heads) > 10_000:
                self._heads.clear()
            head = self._heads[room_id] = (
                len(keys.ROOM_PARTS), *keys.room_keys(room_id), keys.PREFIX, LOG_MAXLEN, room_id)
        try:
            reply = await self._call(pack_command(("EVALSHA", script.sha, *head, *args)))
        except NoScriptError:
            await self._client.script_load(script.source)
            reply = await self._call(pack_command(("EVALSHA", script.sha, *head, *args)))
        if isinstance(reply, list) and reply and isinstance(reply[0], bytes):
            reply[0] = reply[0].decode()
        return reply

    def _call(self, packed: bytes) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((packed, future))
        if self._sender is None:
            self._sender = loop.create_task(self._flush())
        return future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    replies = await self._wire.exchange(
                        [packed for packed, _ in batch], self._timeout)
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), reply in zip(batch, replies, strict=True):
                    if future.done():
                        continue
                    if isinstance(reply, Exception):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        finally:
            self._sender = None

    async def close(self) -> None:
        await self._wire.drop()

    async def reap(self, proc: str, grace_ms: int) -> int:
        return await self._plain["reap"](
            keys=[keys.PROCS, keys.heartbeat_key(proc), keys.proc_players_key(proc), keys.GRACE],
            args=[keys.PREFIX, proc, grace_ms],
        )

    async def lease(self, room_ids: list[str], me: str, px: int) -> list[int]:
        if not room_ids:
            return []
        return await self._plain["lease"](
            keys=[keys.lease_key(r) for r in room_ids], args=[me, px]
        )
