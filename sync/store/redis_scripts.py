"""The Lua scripts of the cluster store, loaded once and called by name.

Each script is one atomic step on the state of record (see ``lua/``). A room
script shares a prelude, takes its room's keys (``redis_keys.room_keys``, plus
a few of the same room) and ``maxlen`` first, and touches nothing outside its
room (one hash slot on Redis Cluster). Replies are lists whose first item is a
status, handed back as a ``Reply``. Single-key commands that keep the global
indexes go out on the same connection, in order, next to the script they
belong to (``before`` / ``after``). Nothing here decides room rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError

from . import redis_keys as keys

LUA_DIR = Path(__file__).with_name("lua")
_PRELUDE = (LUA_DIR / "_prelude.lua").read_text()
RoomScript = Literal["commit", "join", "leave", "disconnect", "resume", "orphan", "seed",
                     "load", "reset", "close", "epoch", "since"]
ROOM_SCRIPTS: tuple[RoomScript, ...] = (
    "commit", "join", "leave", "disconnect", "resume", "orphan", "seed", "load", "reset", "close",
    "epoch", "since")
PlainScript = Literal["lease", "runner", "fenced"]
PLAIN_SCRIPTS: tuple[PlainScript, ...] = ("lease", "runner", "fenced")

logger = logging.getLogger(__name__)


class Reply(StrEnum):
    """The status a room script answers with (the first item of its reply)."""

    OK = "ok"
    #: commit: the object changed since the write's base (its current value follows);
    #: reset: the room version moved
    MISS = "miss"
    #: commit: nothing to write; seed: the room was already there
    NOOP = "noop"
    CLOSED = "closed"
    #: the room has no state in Redis (Redis restarted empty): it is re-seeded
    GONE = "gone"
    FULL = "full"
    BIG = "big"
    #: commit: another writer holds this object's turn
    LOCKED = "locked"
    #: commit: the client's expectedVersion is not the room version
    CONFLICT = "conflict"
    #: the player is not in the room
    ABSENT = "absent"
    #: load: the room has no state in Redis (not an error: seed it)
    MISSING = "missing"
    #: leave in expire mode: not due, reclaimed, or nothing to do
    SKIP = "skip"
    #: resume: the token is not this player's
    MISMATCH = "mismatch"
    #: commit: a room code runner's lease is no longer current (another process runs it)
    FENCED = "fenced"


_REPLIES = {reply.value.encode(): reply for reply in Reply}

#: entries kept per room log (approximate trim); a reader further behind reloads the room
LOG_MAXLEN = 1000
#: most script calls in one write (the rest go in the next round trip)
MAX_BATCH = 512

try:
    from hiredis import pack_command
except ImportError:  # pragma: no cover - hiredis is in requirements.txt
    from redis.connection import PythonRespSerializer

    _serializer = PythonRespSerializer(6000, Redis().get_encoder().encode)

    def pack_command(args: tuple[Any, ...]) -> bytes:  # type: ignore[misc]
        return b"".join(_serializer.pack(*args))


def text(value: Any) -> Any:
    """bytes → str, recursively through the lists a script returns."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [text(v) for v in value]
    return value


class Script:
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
        self._connection: AbstractConnection | None = None

    async def exchange(self, commands: list[bytes], timeout: float) -> list[Any]:
        """Send packed commands in one write; their replies, in order (a ResponseError
        reply is returned in its place, not raised)."""
        connection = self._connection
        if connection is None:
            pool = self._client.connection_pool
            connection = pool.connection_class(
                **{**pool.connection_kwargs, "socket_timeout": None})
            self._connection = connection
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
            name: Script(_PRELUDE + (LUA_DIR / f"{name}.lua").read_text()) for name in ROOM_SCRIPTS
        }
        self._plain = {
            name: Script((LUA_DIR / f"{name}.lua").read_text()) for name in PLAIN_SCRIPTS
        }
        self._keys: dict[str, list[str]] = {}
        #: entries kept per room log (``maxlen`` of every room script; §14 recovery log)
        self.log_maxlen = LOG_MAXLEN

    async def room(
        self, name: RoomScript, room_id: str, *args: Any, extra_keys: Sequence[str] = (),
        before: Sequence[Sequence[Any]] = (), after: Sequence[Sequence[Any]] = (),
    ) -> Any:
        """Run a room script; its reply, the status as a ``Reply``.

        ``before`` and ``after`` are single-key commands sent in the same write,
        just before and just after the script (their replies are not waited for):
        Redis runs them in that order, so an index updated next to a script is
        never left out by a process that dies between the two.
        """
        script = self._room[name]
        keys_ = self._keys.get(room_id)
        if keys_ is None:
            if len(self._keys) > 10_000:
                self._keys.clear()
            keys_ = self._keys[room_id] = keys.room_keys(room_id)
        packed = pack_command((
            "EVALSHA", script.sha, len(keys_) + len(extra_keys), *keys_, *extra_keys,
            self.log_maxlen, *args))
        reply = await self._run(script, packed, before, after)
        if isinstance(reply, list) and reply and isinstance(reply[0], bytes):
            reply[0] = _REPLIES[reply[0]]
        return reply

    async def plain(self, name: PlainScript, keys_: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a script that is not a room script (its keys in one slot all the same)."""
        return await self.run(self._plain[name], keys_, args)

    async def run(self, script: Script, keys_: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``script`` (this module's or another store module's, such as the
        documents' scripts) on this connection, in order with the room scripts; its
        keys in one slot."""
        packed = pack_command(("EVALSHA", script.sha, len(keys_), *keys_, *args))
        return await self._run(script, packed, (), ())

    async def _run(
        self, script: Script, packed: bytes, before: Sequence[Sequence[Any]],
        after: Sequence[Sequence[Any]],
    ) -> Any:
        for attempt in range(2):
            for command in before:
                self.send(*command)
            future = self._call(packed)
            for command in after:
                self.send(*command)
            try:
                return await future
            except NoScriptError:
                if attempt:
                    raise
                await self._client.script_load(script.source)
        raise AssertionError("unreachable")

    def send(self, *command: Any) -> None:
        """Queue a command on this connection without waiting for its reply (a
        failure is logged: the indexes it keeps tolerate a missed update)."""
        self._call(pack_command(command)).add_done_callback(_log_failure)

    async def command(self, *command: Any) -> Any:
        """A command on this connection, in order with the scripts; its raw reply."""
        return await self._call(pack_command(command))

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

    async def lease(self, room_id: str, me: str, px: int) -> bool:
        """Take or renew this process's snapshot duty for a room."""
        return bool(await self.plain("lease", [keys.lease_key(room_id)], [me, px]))


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.debug("redis: an index update failed: %s", future.exception())
