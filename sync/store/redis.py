"""The cluster store: rooms shared by every server process through one Redis.

The state of record lives in Redis (``redis_keys``); each process keeps a
``MirrorRoom`` per room it has loaded, fed only from that room's log (a Redis
Stream), so every process sees every change once, in version order:

- a write is validated in Python on a one-object scratch room (room type,
  limits), then committed by a Lua script that compares-and-sets only the
  object it touches (two players never conflict), bumps the room version,
  and appends the change to the log. A miss returns the current object and
  the write is retried on it. The writer does not publish: its change comes
  back through the log like any other, which keeps the order.
- one reader task per process (``XREAD BLOCK`` over the logs of its rooms and
  its own wake stream) applies entries to the mirrors and hands each change
  to the hub, which batches per tick and encodes once for local members.
  A version gap (trimmed log, outage) reloads the room and sends FULL_STATE.
- sessions (token hash → room, player), connection owners, grace deadlines
  and process heartbeats are in Redis too, so a token resumes on any process
  and a dead process's players time out elsewhere (one janitor per process,
  idempotent Lua: PLAYER_LEFT ``timeout`` exactly once).

While Redis is unreachable every room message fails with ERROR INTERNAL (no
partial change: a Lua script runs whole or not at all); the reader retries,
then reloads every local room (re-seeding it from the mirror if Redis lost
it), reclaims its connected players and sends FULL_STATE to its members.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import socket
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..core.changes import ChangeKind, LeaveReason
from ..core.envelope import StateUpdate
from ..core.errors import ErrorCode, ProtocolError
from ..core.limits import Limits
from ..core.room import Room
from ..core.room_types import get_room_type
from ..directory import Identity, RoomConfig, RoomDirectory
from ..hub import Hub, RoomFanout
from ..tokens import hash_token, new_player_id, new_token
from . import redis_keys as keys
from .base import JoinResult, LoadedRooms, NullPersistence, Persistence, SingleFlight
from .redis_mirror import UNLIMITED, MirrorRoom, change_of, seed_args_of
from .redis_scripts import LOG_MAXLEN, RawConnection, Scripts, pack_command, text

logger = logging.getLogger(__name__)

#: XREAD blocks this long; the reader's socket timeout must stay above it
READ_BLOCK_MS = 1000
COMMAND_TIMEOUT = 3.0
JANITOR_SECONDS = 0.5
HEARTBEAT_MS = 5000
TOKEN_TTL = 7 * 24 * 3600
WRITE_ATTEMPTS = 16
#: seconds a write may keep retrying (misses, another writer's turn) before INTERNAL
WRITE_PATIENCE = 3.0
CLAIM_AFTER_MISSES = 2
#: a loaded room with no local member or player for this long is dropped from memory
UNLOAD_AFTER = 30.0
MIRROR_WAIT = 5.0


def internal(message: str = "internal error; the message had no effect") -> ProtocolError:
    return ProtocolError(ErrorCode.INTERNAL, message)


@dataclass(slots=True)
class LocalPlayer:
    """A player whose socket is on this process."""

    connection: object
    conn_id: str
    token_hash: str


@dataclass(slots=True)
class LiveRoom:
    config: RoomConfig
    room: MirrorRoom
    stream_id: bytes | str
    #: this process's own commits not yet back through the log: field → (object, version)
    recent: dict[str, tuple[dict[str, Any] | None, int]] = field(default_factory=dict)
    waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)
    stale: bool = False
    snapshot_duty: bool = False
    last_used: float = field(default_factory=time.monotonic)

    def state(self) -> tuple[int, dict[str, Any]]:
        return self.room.version, self.room.snapshot()

    def base(self, field_name: str) -> tuple[dict[str, Any] | None, str]:
        """The object a write to ``field_name`` starts from, and its version token."""
        recent = self.recent.get(field_name)
        if recent is not None:
            if recent[1] > self.room.version:
                return recent[0], str(recent[1])
            del self.recent[field_name]
        version = self.room.ov.get(field_name)
        return self.room.object_of(field_name), "" if version is None else str(version)

    def settle(self) -> None:
        """Wake writers waiting for the mirror to reach their version."""
        if self.waiters:
            keep = []
            for version, future in self.waiters:
                if version <= self.room.version:
                    if not future.done():
                        future.set_result(None)
                else:
                    keep.append((version, future))
            self.waiters = keep

    def release_all(self) -> None:
        for _, future in self.waiters:
            if not future.done():
                future.set_result(None)
        self.waiters = []


class RedisRoomStore(LoadedRooms):
    """Same interface as ``MemoryRoomStore``; the state of record is in Redis."""

    def __init__(
        self,
        hub: Hub,
        directory: RoomDirectory,
        *,
        limits: Limits,
        grace_seconds: float,
        redis_url: str,
        persistence: Persistence | None = None,
        snapshot_interval: float = 1.0,
    ) -> None:
        self.hub = hub
        self.directory = directory
        self.limits = limits
        self.grace_seconds = grace_seconds
        self.grace_ms = int(grace_seconds * 1000)
        self.persistence = persistence or NullPersistence()
        self.snapshot_interval = snapshot_interval
        self.proc = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self.redis = Redis(connection_pool=BlockingConnectionPool.from_url(
            redis_url, max_connections=64, timeout=COMMAND_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT, socket_connect_timeout=1.0,
            socket_keepalive=True, retry=Retry(NoBackoff(), 0),
        ))
        # The blocking reader gets its own connection, its timeout above the block time.
        self.reader = RawConnection(self.redis)
        self.scripts = Scripts(self.redis, timeout=COMMAND_TIMEOUT)
        self.rooms: dict[str, LiveRoom] = {}
        self.closed: set[str] = set()
        self.local: dict[tuple[str, str], LocalPlayer] = {}
        self.disconnected: set[tuple[str, str]] = set()
        self.healthy = True
        self._conn_ids: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
        self._counter = itertools.count(1)
        self._activating: SingleFlight[LiveRoom] = SingleFlight()
        self._locks: dict[tuple[str, str], list[Any]] = {}
        self._wake_id: bytes | str = "$"
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._recover_needed = False
        self._stopping = False

    # -- background tasks ---------------------------------------------------

    def _start(self) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read_loop(), name="kasagi-redis-reader"),
            loop.create_task(self._janitor_loop(), name="kasagi-redis-janitor"),
        ]

    async def stop(self) -> None:
        """End the background tasks and close the connections (tests, tools)."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=READ_BLOCK_MS / 1000 + 1)
        self._tasks = []
        await self.scripts.close()
        await self.reader.drop()
        await self.redis.aclose()

    def _wake(self) -> None:
        """Make the reader re-issue its XREAD (the set of rooms changed)."""
        async def wake() -> None:
            with contextlib.suppress(RedisError, OSError):
                await self.redis.xadd(keys.wake_key(self.proc), {"w": 1}, maxlen=10)
        asyncio.get_running_loop().create_task(wake())

    async def _read_loop(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                if self._recover_needed:
                    await self._recover()
                streams: dict[Any, Any] = {keys.wake_key(self.proc): self._wake_id}
                for room_id, live in self.rooms.items():
                    streams[keys.log_key(room_id)] = live.stream_id
                command = pack_command((
                    "XREAD", "COUNT", 500, "BLOCK", READ_BLOCK_MS, "STREAMS",
                    *streams.keys(), *streams.values()))
                (reply,) = await self.reader.exchange([command], READ_BLOCK_MS / 1000 + 5)
                if isinstance(reply, Exception):
                    raise reply
                self._on_entries(reply or [])
                for room_id, live in list(self.rooms.items()):
                    if live.stale:
                        await self._reload(room_id, live)
                backoff = 0.1
                self.healthy = True
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.healthy:
                    logger.warning("redis unavailable (%s); retrying", exc)
                self.healthy = False
                self._recover_needed = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            except Exception:
                logger.exception("redis reader failed; reloading its rooms")
                self._recover_needed = True
                await asyncio.sleep(backoff)

    def _on_entries(self, reply: list[Any]) -> None:
        now = time.monotonic()
        wake = keys.wake_key(self.proc).encode()
        for stream, entries in reply:
            if stream == wake:
                self._wake_id = entries[-1][0]
                continue
            room_id = stream.decode()[len(keys.PREFIX) + 6:-5]  # kasagi:room:{ID}:log
            live = self.rooms.get(room_id)
            if live is None:
                continue
            for entry_id, flat in entries:
                live.stream_id = entry_id
                if live.stale:
                    continue
                pairs = iter(flat)  # a raw reply: [field, value, field, value...]
                self._apply(room_id, live, dict(zip(pairs, pairs, strict=True)), now)
                if room_id not in self.rooms:
                    break
            live.settle()

    def _apply(self, room_id: str, live: LiveRoom, fields: dict[bytes, bytes], now: float) -> None:
        kind = fields[b"k"]
        if kind == b"T":
            self._taken_over(room_id, fields[b"pid"].decode(), fields[b"c"].decode())
            return
        if kind == b"X":
            self._closed(room_id, live)
            return
        if kind == b"C":  # the configuration changed (any process wrote it): re-read it
            task = asyncio.get_running_loop().create_task(self._reload_config(room_id))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        mirror = live.room
        version, base = int(fields[b"v"]), int(fields[b"b"])
        if version <= mirror.version:
            return
        if base != mirror.version:
            logger.info("room %s: log gap at %s (mirror %s); reloading", room_id, base,
                        mirror.version)
            live.stale = True
            return
        change = change_of(fields)
        mirror.apply(change, now=now)
        self.hub.publish(room_id, change)
        if live.snapshot_duty:
            self.persistence.room_changed(room_id)
        live.last_used = now
        if change.kind is ChangeKind.LEFT:
            player_id = change.payload["playerId"]
            self.local.pop((room_id, player_id), None)
            self.disconnected.discard((room_id, player_id))

    def _taken_over(self, room_id: str, player_id: str, conn_id: str) -> None:
        """A token resumed this player on another socket: let go of ours."""
        local = self.local.get((room_id, player_id))
        if local is None or local.conn_id == conn_id:
            return
        del self.local[room_id, player_id]
        self._detach(room_id, local.connection, "resumed")

    def _detach(self, room_id: str, connection: object, reason: str) -> None:
        fanout = self.hub.get(room_id)
        if fanout is not None:
            fanout.detach(connection)  # type: ignore[arg-type]
        detached = getattr(connection, "on_detached", None)
        if detached is not None:
            detached(room_id, reason)

    def _closed(self, room_id: str, live: LiveRoom) -> None:
        self.closed.add(room_id)
        self.rooms.pop(room_id, None)
        live.release_all()
        for key in [k for k in self.local if k[0] == room_id]:
            del self.local[key]
        fanout = self.hub.get(room_id)
        if fanout is not None:
            fanout.close()

    async def _reload(self, room_id: str, live: LiveRoom) -> None:
        """Rebuild the mirror from Redis and send FULL_STATE to local members."""
        reply = await self.scripts.room("load", room_id)
        if reply[0] == "closed":
            self._closed(room_id, live)
            return
        if reply[0] == "missing":
            await self._seed(room_id, live.room)
            reply = await self.scripts.room("load", room_id)
            if reply[0] != "ok":
                return
        mirror, last_id = MirrorRoom.from_reply(
            room_id, live.room.room_type, self.limits, reply,
            max_players=live.config.max_players, now=time.monotonic(),
        )
        for pid, meta in live.room.meta.items():
            if pid in mirror.meta:
                meta.initial = mirror.meta[pid].initial
                mirror.meta[pid] = meta
        live.room, live.stream_id, live.stale = mirror, last_id, False
        live.recent.clear()
        live.release_all()
        fanout = self.hub.get(room_id)
        if fanout is not None:
            fanout.resync_all()

    async def _recover(self) -> None:
        """After Redis came back: reclaim our players, reload every room, resync members."""
        await self.redis.ping()
        await self._heartbeat()
        for room_id, live in list(self.rooms.items()):
            reply = await self.scripts.room("load", room_id)
            if reply[0] == "missing":
                await self._seed(room_id, live.room)
            for (rid, pid), local in list(self.local.items()):
                if rid != room_id:
                    continue
                claimed = await self.scripts.room(
                    "resume", room_id, pid, local.token_hash, local.conn_id, TOKEN_TTL, "1")
                if claimed[0] == "absent":
                    # Seeded by a process that never saw this player: join it back as it was.
                    player = live.room.players.get(pid) or {}
                    await self._commit_join(room_id, live, pid, player, local)
            live.stale = True
            await self._reload(room_id, live)
        # Players whose sockets closed while Redis was away start their grace now.
        owned = await self.redis.smembers(keys.proc_players_key(self.proc))
        for raw in owned:
            room_id, pid = raw.decode().split("\n", 1)
            if (room_id, pid) not in self.local:
                await self.scripts.room(
                    "disconnect", room_id, pid, self.proc + "|", self.grace_ms)
                await self.redis.srem(keys.proc_players_key(self.proc), raw)
        self._recover_needed = False
        self.healthy = True
        logger.warning("redis reachable again; %d rooms resynchronised", len(self.rooms))

    async def _seed(self, room_id: str, mirror: Room | None, snapshot: Any = None) -> None:
        if isinstance(mirror, MirrorRoom):
            args = mirror.seed_args()
        elif snapshot is not None:
            args = seed_args_of(snapshot.version, snapshot.state)
        else:
            args = seed_args_of(0, None)
        await self.scripts.room("seed", room_id, args[0], self.grace_ms, *args[1:])

    async def _heartbeat(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.heartbeat_key(self.proc), 1, px=HEARTBEAT_MS)
            pipe.sadd(keys.PROCS, self.proc)
            _, added = await pipe.execute()
        if added and self.local:
            # We were taken for dead (a stall longer than the heartbeat TTL, or Redis
            # lost its data): reclaim our connected players before their grace runs out.
            logger.warning("process %s was reaped while alive; reclaiming players", self.proc)
            self._recover_needed = True
            self._wake()

    async def _janitor_loop(self) -> None:
        rounds = 0
        while not self._stopping:
            rounds += 1
            try:
                await self._heartbeat()
                await self._expire_graces()
                if rounds % 2 == 0:
                    await self._snapshot_leases()
                if rounds % 4 == 0:
                    await self._reap_dead()
                    self._unload_idle()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.debug("janitor: redis unavailable (%s)", exc)
            except Exception:
                logger.exception("janitor failed")
            await asyncio.sleep(JANITOR_SECONDS)

    async def _expire_graces(self) -> None:
        entries = await self.redis.zrange(keys.GRACE, 0, -1, withscores=True)
        now_ms = time.time() * 1000
        disconnected = set()
        for raw, deadline in entries:
            room_id, pid = raw.decode().split("\n", 1)
            disconnected.add((room_id, pid))
            if deadline <= now_ms:
                reply = await self.scripts.room(
                    "leave", room_id, pid, LeaveReason.TIMEOUT.value, "expire")
                if reply[0] == "ok" and reply[2]:
                    self.persistence.session_ended(text(reply[2]), LeaveReason.TIMEOUT.value)
        self.disconnected = disconnected

    async def _reap_dead(self) -> None:
        for raw in await self.redis.smembers(keys.PROCS):
            proc = raw.decode()
            if proc != self.proc and not await self.redis.exists(keys.heartbeat_key(proc)):
                count = await self.scripts.reap(proc, self.grace_ms)
                logger.warning("process %s is gone: %d players start their grace", proc, count)

    async def _snapshot_leases(self) -> None:
        room_ids = list(self.rooms)
        owned = await self.scripts.lease(
            room_ids, self.proc, int(max(self.snapshot_interval * 3, 3) * 1000))
        for room_id, mine in zip(room_ids, owned, strict=True):
            live = self.rooms.get(room_id)
            if live is None:
                continue
            if mine and not live.snapshot_duty:
                self.persistence.room_changed(room_id)  # changes made before we took over
            live.snapshot_duty = bool(mine)

    def _unload_idle(self) -> None:
        now = time.monotonic()
        busy = {room_id for room_id, _ in self.local}
        for room_id, live in list(self.rooms.items()):
            if (
                room_id not in busy and self.hub.get(room_id) is None
                and not live.waiters and now - live.last_used > UNLOAD_AFTER
            ):
                del self.rooms[room_id]
                self._wake()

    # -- activation ---------------------------------------------------------

    async def activate(self, room_id: str, *, who: Identity, create: bool) -> RoomConfig:
        if not self._tasks:
            await self._heartbeat()  # alive before our first player is registered
            self._start()
        if room_id in self.closed:
            raise ProtocolError(ErrorCode.ROOM_CLOSED, "the room was closed")
        live = self.rooms.get(room_id)
        if live is None:
            live = await self._activating.run(
                room_id, lambda: self._load(room_id, who=who, create=create)
            )
        live.last_used = time.monotonic()
        return live.config

    async def _load(self, room_id: str, *, who: Identity, create: bool) -> LiveRoom:
        config = await self._config_for(room_id, who=who, create=create)
        reply = await self.scripts.room("load", room_id)
        if reply[0] == "missing":
            snapshot = await self.directory.latest_snapshot(room_id)
            await self._seed(room_id, None, snapshot)
            reply = await self.scripts.room("load", room_id)
        if reply[0] == "closed":
            self.closed.add(room_id)
            raise ProtocolError(ErrorCode.ROOM_CLOSED, "the room was closed")
        if reply[0] != "ok":
            raise internal("room state unavailable")
        if room_id in self.rooms:
            return self.rooms[room_id]
        mirror, last_id = MirrorRoom.from_reply(
            room_id, get_room_type(config.room_type), self.limits, reply,
            max_players=config.max_players, now=time.monotonic(),
        )
        live = self.rooms[room_id] = LiveRoom(config, mirror, last_id)
        self._wake()
        return live

    # -- player lifecycle ---------------------------------------------------

    async def join(
        self, room_id: str, fields: dict[str, Any], *, who: Identity,
        session_token: str | None, connection: object,
    ) -> JoinResult:
        live = self._live(room_id)
        if session_token:
            resumed = await self._resume(room_id, live, session_token, connection)
            if resumed is not None:
                return resumed
        player_id = new_player_id()
        scratch = live.room.scratch("p:" + player_id, None, now=time.monotonic())
        scratch.join(player_id, fields, now=time.monotonic(), identity=who.player_fields())
        token = new_token()
        local = LocalPlayer(connection, self._conn_id(connection), hash_token(token))
        version = await self._commit_join(
            room_id, live, player_id, scratch.players[player_id], local)
        self.persistence.session_issued(local.token_hash, room_id, player_id, who.user_id)
        await self._reach(live, version)
        return JoinResult(player_id, token, resumed=False)

    async def _commit_join(
        self, room_id: str, live: LiveRoom, player_id: str, player: dict[str, Any],
        local: LocalPlayer,
    ) -> int:
        data = orjson.dumps(player)
        reply = await self.scripts.room(
            "join", room_id, player_id, data,
            b'{"players":{"' + player_id.encode() + b'":' + data + b"}}",
            orjson.dumps({"playerId": player_id, "state": player}),
            live.config.max_players or self.limits.max_players,
            self.limits.max_room_state_bytes, local.conn_id, local.token_hash, TOKEN_TTL,
        )
        status = reply[0]
        if status == "full":
            raise ProtocolError(
                ErrorCode.ROOM_FULL, f"room is full ({live.room.max_players} players)")
        if status == "big":
            raise ProtocolError(ErrorCode.PAYLOAD_TOO_LARGE,
                                f"room state would exceed {self.limits.max_room_state_bytes} bytes")
        self._refused(room_id, status)
        self.local[room_id, player_id] = local
        self._changed(room_id)
        return int(reply[1])

    async def _resume(
        self, room_id: str, live: LiveRoom, token: str, connection: object
    ) -> JoinResult | None:
        token_hash = hash_token(token)
        raw = await self.redis.get(keys.token_key(token_hash))
        if raw is not None:
            found = tuple(raw.decode().split("\n", 1))
        else:
            stored = await self.directory.find_session(token_hash)
            found = (stored.room_id, stored.player_id) if stored else None
        if found is None or found[0] != room_id:
            return None
        player_id = found[1]
        conn_id = self._conn_id(connection)
        reply = await self.scripts.room(
            "resume", room_id, player_id, token_hash, conn_id, TOKEN_TTL, "0")
        if reply[0] != "ok":
            return None
        previous = self.local.get((room_id, player_id))
        self.local[room_id, player_id] = LocalPlayer(connection, conn_id, token_hash)
        self.disconnected.discard((room_id, player_id))
        if previous is not None and previous.connection is not connection:
            self._detach(room_id, previous.connection, "resumed")
        self.persistence.session_seen(token_hash, connected=True)
        return JoinResult(player_id, token, resumed=True)

    async def leave(self, room_id: str, player_id: str, reason: LeaveReason) -> None:
        await self._leave(room_id, player_id, reason)

    async def _leave(self, room_id: str, player_id: str, reason: LeaveReason) -> int:
        self._live(room_id)
        reply = await self.scripts.room("leave", room_id, player_id, reason.value, "any")
        if reply[0] == "absent":
            raise ProtocolError(ErrorCode.NOT_IN_ROOM, "player is not in this room")
        self._refused(room_id, reply[0])
        self.local.pop((room_id, player_id), None)
        if reply[2]:
            self.persistence.session_ended(text(reply[2]), reason.value)
        self._changed(room_id)
        return int(reply[1])

    async def disconnect(self, room_id: str, player_id: str, connection: object) -> None:
        local = self.local.get((room_id, player_id))
        if local is None or local.connection is not connection:
            return
        del self.local[room_id, player_id]
        await self.scripts.room("disconnect", room_id, player_id, local.conn_id, self.grace_ms)
        self.persistence.session_seen(local.token_hash, connected=False)

    # -- state changes --------------------------------------------------------

    async def update(self, room_id: str, player_id: str, message: StateUpdate) -> None:
        live = self._live(room_id)
        if message.entity_id is not None:
            await self._write(room_id, live, "e:" + message.entity_id, message.patch,
                              player_id=player_id, expected=message.expected_version)
        else:
            await self._write(room_id, live, "p:" + player_id, message.patch,
                              player_id=player_id, expected=message.expected_version)

    async def _write(
        self, room_id: str, live: LiveRoom, field_name: str, patch: dict[str, Any], *,
        player_id: str | None, expected: int | None = None, server: bool = False,
    ) -> int:
        """One writer per object in this process at a time, so local writers never
        race each other (each starts from the previous one's result): only writers
        on other processes can make the compare-and-set miss."""
        key = (room_id, field_name)
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                return await self._commit(
                    room_id, live, field_name, patch, player_id=player_id,
                    expected=expected, server=server)
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]

    async def _commit(
        self, room_id: str, live: LiveRoom, field_name: str, patch: dict[str, Any], *,
        player_id: str | None, expected: int | None, server: bool,
    ) -> int:
        """Validate on the object's latest known value, compare-and-set it in Redis."""
        current, object_version = live.base(field_name)
        writer = f"{self.proc}|w{next(self._counter)}"
        misses = 0
        deadline = time.monotonic() + WRITE_PATIENCE
        while time.monotonic() < deadline:
            now = time.monotonic()
            scratch = live.room.scratch(field_name, current, now=now)
            name = field_name[2:]
            if field_name[0] == "p":
                if current is None:
                    raise ProtocolError(ErrorCode.NOT_IN_ROOM, "player is not in this room")
                change = scratch.update_player(name, dict(patch), now=now, server=server)
                updated = scratch.players.get(name)
            else:
                change = scratch.update_entity(name, dict(patch), player_id=player_id)
                updated = scratch.entities.get(name)
            reply = await self.scripts.room(
                "commit", room_id, field_name, object_version,
                "" if expected is None else expected,
                orjson.dumps(updated) if updated is not None else "",
                orjson.dumps(change.patch) if change is not None else "",
                self.limits.max_room_state_bytes, "0" if change is not None else "1",
                writer, "1" if misses >= CLAIM_AFTER_MISSES else "0",
            )
            status = reply[0]
            if status == "locked":  # another writer's turn on this object
                await asyncio.sleep(0.001 + random.random() * 0.002)
                continue
            if status == "ok":
                version = int(reply[1])
                live.recent[field_name] = (updated, version)
                self._changed(room_id)
                return version
            if status == "noop":
                return int(reply[1])
            if status == "miss":
                misses += 1
                raw, object_version = text(reply[1]), text(reply[2])
                current = orjson.loads(raw) if raw else None
                continue
            if status == "conflict":
                raise ProtocolError(
                    ErrorCode.VERSION_CONFLICT,
                    f"expected version {expected}, room is at {reply[1]}",
                    extra={"currentVersion": int(reply[1])},
                )
            if status == "big":
                raise ProtocolError(
                    ErrorCode.PAYLOAD_TOO_LARGE,
                    f"room state would exceed {self.limits.max_room_state_bytes} bytes",
                )
            self._refused(room_id, status)
        raise internal("too many concurrent writes to this object; the message had no effect")

    def _refused(self, room_id: str, status: str) -> None:
        if status == "closed":
            live = self.rooms.get(room_id)
            if live is not None:
                self._closed(room_id, live)
            raise ProtocolError(ErrorCode.ROOM_CLOSED, "the room was closed")
        if status == "gone":  # Redis lost the room (restarted empty): rebuild it
            self._recover_needed = True
            raise internal("room state is being restored; the message had no effect")
        if status != "ok":
            raise internal(f"unexpected store reply {status!r}")

    # -- server-side operations (sync.api) -----------------------------------

    async def server_update_player(self, room_id: str, player_id: str, patch: dict) -> int:
        live = await self._server_live(room_id)
        version = await self._write(room_id, live, "p:" + player_id, patch,
                                    player_id=None, server=True)
        await self._reach(live, version)
        return version

    async def server_update_entity(self, room_id: str, entity_id: str, patch: dict) -> int:
        live = await self._server_live(room_id)
        version = await self._write(room_id, live, "e:" + entity_id, patch, player_id=None)
        await self._reach(live, version)
        return version

    async def reset(self, room_id: str, state: dict | None = None) -> int:
        live = await self._server_live(room_id)
        for _ in range(WRITE_ATTEMPTS):
            mirror = live.room
            before = mirror.version
            work = MirrorRoom(
                room_id, mirror.room_type, self.limits, version=before,
                objects={**{"p:" + k: v for k, v in mirror.players.items()},
                         **{"e:" + k: v for k, v in mirror.entities.items()}},
                object_versions=mirror.ov,
                initial={pid: m.initial for pid, m in mirror.meta.items()},
                max_players=UNLIMITED, now=time.monotonic(),
            )
            change = work.reset(state)
            if change is None:
                return before
            pairs: list[Any] = []
            for pid, obj in work.players.items():
                pairs += ["p:" + pid, orjson.dumps(obj)]
            for eid, obj in work.entities.items():
                pairs += ["e:" + eid, orjson.dumps(obj)]
            reply = await self.scripts.room(
                "reset", room_id, before, orjson.dumps(change.patch), work.state_bytes,
                len(pairs) // 2, *pairs)
            if reply[0] == "ok":
                version = int(reply[1])
                self._changed(room_id)
                await self._reach(live, version)
                return version
            if reply[0] == "miss":
                await self._reach(live, int(reply[1]))
                continue
            self._refused(room_id, reply[0])
        raise internal("room kept changing during reset")

    async def reconfigure(self, room_id: str) -> None:
        """Every process with the room loaded re-reads its configuration, told by a
        ``C`` marker in the room's log (this process too, when the marker comes back)."""
        await self.redis.xadd(keys.log_key(room_id), {"k": "C"}, maxlen=LOG_MAXLEN,
                              approximate=True)

    async def kick(self, room_id: str, player_id: str) -> None:
        live = await self._server_live(room_id)
        await self._reach(live, await self._leave(room_id, player_id, LeaveReason.KICKED))

    async def close(self, room_id: str) -> None:
        """Every player leaves with reason ``closed``; members everywhere get ROOM_CLOSED."""
        reply = await self.scripts.room("close", room_id)
        if reply[0] == "ok":
            for token_hash in reply[1]:
                self.persistence.session_ended(text(token_hash), LeaveReason.CLOSED.value)
        elif reply[0] == "gone":
            await self.redis.hset(keys.room_keys(room_id)[0], "closed", "1")
        self.closed.add(room_id)
        live = self.rooms.get(room_id)
        if live is not None:
            # Our members are told when the X entry comes back; wait for it briefly.
            waiter = asyncio.get_running_loop().create_future()
            live.waiters.append((1 << 62, waiter))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, MIRROR_WAIT)
        self.persistence.room_closed(room_id)

    def fanout(self, room_id: str) -> RoomFanout:
        self._live(room_id)
        return self.hub.room(room_id, lambda: self._state(room_id))

    def _state(self, room_id: str) -> tuple[int, dict[str, Any]]:
        live = self.rooms.get(room_id)
        return live.state() if live is not None else (0, {"players": {}, "entities": {}})

    async def snapshot(self, room_id: str) -> tuple[int, dict[str, Any]] | None:
        """(version, state) of a room: this process's mirror, else read from Redis."""
        live = self.rooms.get(room_id)
        if live is not None:
            return live.state()
        reply = await self.scripts.room("load", room_id)
        if reply[0] != "ok":
            return None
        mirror, _ = MirrorRoom.from_reply(
            room_id, get_room_type("freeform"), self.limits, reply, max_players=None, now=0.0)
        return mirror.version, mirror.snapshot()

    def connected_players(self, room_id: str) -> dict[str, bool]:
        live = self.rooms.get(room_id)
        if live is None:
            return {}
        return {pid: (room_id, pid) not in self.disconnected for pid in live.room.players}

    # -- internals --------------------------------------------------------------

    def _live(self, room_id: str) -> LiveRoom:
        live = super()._live(room_id)
        live.last_used = time.monotonic()
        return live

    async def _reach(self, live: LiveRoom, version: int) -> None:
        """Wait until the mirror has applied ``version`` (read-your-writes for the caller)."""
        if live.room.version >= version:
            return
        future = asyncio.get_running_loop().create_future()
        live.waiters.append((version, future))
        try:
            await asyncio.wait_for(future, MIRROR_WAIT)
        except TimeoutError:
            logger.warning("room %s: mirror did not reach %s; reloading", live.config.room_id,
                           version)
            live.stale = True
            self._wake()

    def _changed(self, room_id: str) -> None:
        live = self.rooms.get(room_id)
        if live is not None:
            live.last_used = time.monotonic()

    def _conn_id(self, connection: object) -> str:
        try:
            conn_id = self._conn_ids.get(connection)
        except TypeError:
            conn_id = None
        if conn_id is None:
            conn_id = f"{self.proc}|{next(self._counter)}"
            with contextlib.suppress(TypeError):
                self._conn_ids[connection] = conn_id
        return conn_id
