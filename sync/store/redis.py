"""The cluster store: rooms shared by every server process through one Redis.

The state of record lives in Redis (``redis_keys``: every key of a room in the
room's hash slot); each process keeps a ``MirroredRoom`` per room it has loaded,
fed only from that room's log (a Redis Stream) by the ``LogReader``
(``redis_reader``), so every process sees every change once, in version order.

This module is the write side. A write is validated in Python on a one-object
scratch room (room type, limits), then committed by a Lua script that
compares-and-sets only the object it touches (two players never conflict),
bumps the room version, and appends the change to the log. A miss returns the
current object and the write is retried on it. The writer does not publish:
its change comes back through the log like any other, which keeps the order.

Sessions (token hash → player, in the room), connection owners, grace
deadlines and process heartbeats are in Redis too, so a token resumes on any
process and a dead process's players time out elsewhere (the ``Janitor``,
``redis_janitor``: PLAYER_LEFT ``timeout`` exactly once).

While Redis is unreachable every room message fails with ERROR INTERNAL (no
partial change: a Lua script runs whole or not at all); the reader retries,
then recovers (see ``redis_reader``).
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..core.changelog import new_epoch
from ..core.changes import (
    ANONYMOUS_PLAYER,
    SERVER,
    Author,
    Change,
    HistoryKind,
    LeaveReason,
)
from ..core.envelope import Message, StateUpdate
from ..core.errors import ErrorCode, ProtocolError
from ..core.limits import Limits
from ..core.room_types import get_room_type
from ..directory import Identity, RoomConfig, RoomDirectory, RoomSnapshot
from ..hub import Hub, RoomFanout
from ..tokens import hash_token, new_player_id, new_token
from . import redis_cluster
from . import redis_keys as keys
from .base import JoinResult, LoadedRooms, NullPersistence, Persistence, SingleFlight
from .redis_docs import RedisDocumentMethods, RedisDocuments
from .redis_janitor import Janitor
from .redis_mirror import UNLIMITED, MirroredRoom, MirrorRoom, change_of, seed_args_of
from .redis_reader import READ_BLOCK_MS, LogReader
from .redis_room_code import Fenced, RoomCode
from .redis_scripts import Reply, Scripts, text

logger = logging.getLogger(__name__)

COMMAND_TIMEOUT = 3.0
WRITE_ATTEMPTS = 16
#: seconds a write may keep retrying (misses, another writer's turn) before INTERNAL
WRITE_PATIENCE = 3.0
CLAIM_AFTER_MISSES = 2
MIRROR_WAIT = 5.0


def internal(message: str = "internal error; the message had no effect") -> ProtocolError:
    return ProtocolError(ErrorCode.INTERNAL, message)


@dataclass(slots=True)
class LocalPlayer:
    """A player whose socket is on this process."""

    connection: object
    conn_id: str
    token_hash: str


class RedisRoomStore(LoadedRooms, RedisDocumentMethods):
    """The ``RoomStore`` whose state of record is in Redis (see the module docstring)."""

    #: update() and message() wait for Redis: the consumer's task runs them
    inline_updates = False

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
        room_idle_unload: float = 30.0,
        recovery_log: int = 1000,
    ) -> None:
        self.hub = hub
        self.directory = directory
        self.limits = limits
        self.grace_seconds = grace_seconds
        self.grace_ms = int(grace_seconds * 1000)
        self.persistence = persistence or NullPersistence()
        self.snapshot_interval = snapshot_interval
        #: a loaded room with no local member or player for this long is dropped from memory
        self.room_idle_unload = room_idle_unload
        self.proc = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        # redis-py types its asyncio commands as ``Awaitable[T] | T`` (shared with the
        # blocking client), which no ``await`` passes: the client is Any here.
        self.redis: Any
        #: a Redis Cluster (``redis_cluster``): scripts and logs routed by slot
        self.cluster = redis_cluster.is_cluster(redis_url)
        if self.cluster:
            self.redis = redis_cluster.cluster_client(redis_url, timeout=COMMAND_TIMEOUT)
            self.scripts: Scripts = redis_cluster.ClusterScripts(
                self.redis, timeout=COMMAND_TIMEOUT)
        else:
            self.redis = Redis(connection_pool=BlockingConnectionPool.from_url(
                redis_url, max_connections=64, timeout=COMMAND_TIMEOUT,
                socket_timeout=COMMAND_TIMEOUT, socket_connect_timeout=1.0,
                socket_keepalive=True, retry=Retry(NoBackoff(), 0),
            ))
            self.scripts = Scripts(self.redis, timeout=COMMAND_TIMEOUT)
        # §14: the room's log is its recovery log; approximate trimming keeps at least
        # maxlen entries, and the margin covers the log's markers (T, C, X), not changes
        self.scripts.log_maxlen = recovery_log + 100
        self.reader = (redis_cluster.ClusterLogReader(self, self.scripts)
                       if isinstance(self.scripts, redis_cluster.ClusterScripts)
                       else LogReader(self))
        self.janitor = Janitor(self)
        self.room_code = RoomCode(self)
        #: §16: the loaded rooms' documents (``redis_docs``)
        self.documents = RedisDocuments(self)
        self.rooms: dict[str, MirroredRoom] = {}
        self.closed: set[str] = set()
        #: players whose socket is on this process
        self.local: dict[tuple[str, str], LocalPlayer] = {}
        #: players in a grace period (any process's), as the janitor last read them
        self.disconnected: set[tuple[str, str]] = set()
        self.healthy = True
        self.stopping = False
        self._conn_ids: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
        self._counter = itertools.count(1)
        self._activating: SingleFlight[MirroredRoom] = SingleFlight()
        self._locks: dict[tuple[str, str], list[Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- background tasks ---------------------------------------------------

    def _start(self) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self.reader.run(), name="kasagi-redis-reader"),
            loop.create_task(self.janitor.run(), name="kasagi-redis-janitor"),
        ]

    async def stop(self) -> None:
        """End the background tasks and close the connections (a clean stop, tests)."""
        self.stopping = True
        with contextlib.suppress(RedisError, OSError):
            await self.room_code.release_all()
        await self.documents.stop()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=READ_BLOCK_MS / 1000 + 1)
        self._tasks = []
        await self.scripts.close()
        await self.reader.close()
        await self.redis.aclose()

    def wake(self) -> None:
        """Make the reader re-issue its XREAD (the set of rooms changed)."""
        if isinstance(self.reader, redis_cluster.ClusterLogReader):
            self.reader.wake()  # a reader per room, woken in this process
            return

        async def wake() -> None:
            with contextlib.suppress(RedisError, OSError):
                await self.redis.xadd(keys.wake_key(self.proc), {"w": 1}, maxlen=10)
        asyncio.get_running_loop().create_task(wake())

    # -- what the reader and the janitor call back ---------------------------

    def detach(self, room_id: str, connection: object, reason: str) -> None:
        """Let go of a local socket (its player was taken over elsewhere)."""
        fanout = self.hub.get(room_id)
        if fanout is not None:
            fanout.detach(connection)  # type: ignore[arg-type]
        detached = getattr(connection, "on_detached", None)
        if detached is not None:
            detached(room_id, reason)

    def room_closed(self, room_id: str, live: MirroredRoom) -> None:
        """The room was closed (by any process): forget it, close local members."""
        self.closed.add(room_id)
        self.rooms.pop(room_id, None)
        self.room_code.stop(room_id)
        live.release_all()
        for key in [k for k in self.local if k[0] == room_id]:
            del self.local[key]
        fanout = self.hub.get(room_id)
        if fanout is not None:
            fanout.close()

    async def seed(
        self, room_id: str, mirror: MirrorRoom | None, snapshot: RoomSnapshot | None = None
    ) -> None:
        """Put a room's state into Redis if it has none: from this process's mirror
        (Redis lost it), else from the database snapshot, else empty."""
        if mirror is not None:
            args = mirror.seed_args()
        elif snapshot is not None:
            args = seed_args_of(snapshot.version, snapshot.state)
        else:
            args = seed_args_of(0, None)
        await self.scripts.room("seed", room_id, args[0], self.grace_ms, *args[1:],
                                after=[("SADD", keys.GRACES, room_id)])

    async def claim(
        self, room_id: str, player_id: str, local: LocalPlayer, *, force: bool
    ) -> Any:
        """Make ``local``'s socket the owner of a player in the room (a resume, or a
        reclaim after an outage when ``force``); the ``resume.lua`` reply."""
        member = keys.member(room_id, player_id)
        players_key = keys.proc_players_key(self.proc)
        reply = await self.scripts.room(
            "resume", room_id, player_id, local.token_hash, local.conn_id,
            "1" if force else "0", before=[("SADD", players_key, member)])
        if reply[0] is not Reply.OK:
            self.scripts.send("SREM", players_key, member)
        elif reply[1] and keys.proc_of_conn(reply[1]) != self.proc:
            self.scripts.send("SREM", keys.proc_players_key(keys.proc_of_conn(reply[1])), member)
        return reply

    def mark_gone(self) -> None:
        """Redis lost a room (restarted empty): the reader rebuilds every loaded room."""
        self.reader.recover_needed = True

    # -- activation ---------------------------------------------------------

    async def activate(self, room_id: str, *, who: Identity, create: bool) -> RoomConfig:
        if not self._tasks:
            await self.janitor.heartbeat()  # alive before our first player is registered
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

    async def _load(self, room_id: str, *, who: Identity, create: bool) -> MirroredRoom:
        config = await self._config_for(room_id, who=who, create=create)
        reply = await self.scripts.room("load", room_id)
        if reply[0] is Reply.MISSING:
            snapshot = await self.directory.latest_snapshot(room_id)
            await self.seed(room_id, None, snapshot)
            reply = await self.scripts.room("load", room_id)
        if reply[0] is Reply.CLOSED:
            self.closed.add(room_id)
            raise ProtocolError(ErrorCode.ROOM_CLOSED, "the room was closed")
        if reply[0] is not Reply.OK:
            raise internal("room state unavailable")
        if room_id in self.rooms:
            return self.rooms[room_id]
        mirror, last_id = MirrorRoom.from_reply(
            room_id, get_room_type(config.room_type), self.limits, reply,
            max_players=config.max_players, now=time.monotonic(),
        )
        epoch = await self.fetch_epoch(room_id)
        if room_id in self.rooms:
            return self.rooms[room_id]
        live = self.rooms[room_id] = MirroredRoom(config, mirror, last_id, epoch=epoch)
        self.wake()
        await self.documents.load(room_id)
        if mirror.room_type.has_code():
            await self.room_code.claim(room_id)  # at once, not at the janitor's next round
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
        identity = who.player_fields()
        live.room.room_type.check_join(live.room.players, fields, identity=identity)
        scratch = live.room.scratch("p:" + player_id, None, now=time.monotonic())
        scratch.join(player_id, fields, now=time.monotonic(), identity=identity)
        token = new_token()
        local = LocalPlayer(connection, self._conn_id(connection), hash_token(token))
        version = await self.commit_join(
            room_id, live, player_id, scratch.players[player_id], local,
            author=Author.player(who.user_id, who.username, player_id))
        self.persistence.session_issued(local.token_hash, room_id, player_id, who.user_id)
        await self._reach(live, version)
        return JoinResult(player_id, token, resumed=False)

    async def commit_join(
        self, room_id: str, live: MirroredRoom, player_id: str, player: dict[str, Any],
        local: LocalPlayer, *, author: Author | None = None,
    ) -> int:
        """Add a player owned by ``local``'s socket; its version (limits checked in Lua)."""
        data = orjson.dumps(player)
        member = keys.member(room_id, player_id)
        players_key = keys.proc_players_key(self.proc)
        reply = await self.scripts.room(
            "join", room_id, player_id, data,
            b'{"players":{"' + player_id.encode() + b'":' + data + b"}}",
            orjson.dumps({"playerId": player_id, "state": player}),
            live.config.max_players or self.limits.max_players,
            self.limits.max_room_state_bytes, local.conn_id, local.token_hash,
            author.wire if author else "",
            before=[("SADD", players_key, member)],
        )
        status = reply[0]
        if status is not Reply.OK:
            self.scripts.send("SREM", players_key, member)
        if status is Reply.FULL:
            raise ProtocolError(
                ErrorCode.ROOM_FULL, f"room is full ({live.room.max_players} players)")
        if status is Reply.BIG:
            raise ProtocolError(ErrorCode.PAYLOAD_TOO_LARGE,
                                f"room state would exceed {self.limits.max_room_state_bytes} bytes")
        self._refused(room_id, status)
        self.local[room_id, player_id] = local
        self._changed(room_id)
        return int(reply[1])

    async def _resume(
        self, room_id: str, live: MirroredRoom, token: str, connection: object
    ) -> JoinResult | None:
        token_hash = hash_token(token)
        raw = await self.redis.hget(keys.bytoken_key(room_id), token_hash)
        if raw is not None:
            player_id = raw.decode()
        else:
            stored = await self.directory.find_session(token_hash)
            if stored is None or stored.room_id != room_id:
                return None
            player_id = stored.player_id
        local = LocalPlayer(connection, self._conn_id(connection), token_hash)
        reply = await self.claim(room_id, player_id, local, force=False)
        if reply[0] is not Reply.OK:
            return None
        previous = self.local.get((room_id, player_id))
        self.local[room_id, player_id] = local
        self.disconnected.discard((room_id, player_id))
        if previous is not None and previous.connection is not connection:
            self.detach(room_id, previous.connection, "resumed")
        self.persistence.session_seen(token_hash, connected=True)
        return JoinResult(player_id, token, resumed=True)

    async def leave(
        self, room_id: str, player_id: str, reason: LeaveReason, *, by: Author | None = None,
    ) -> None:
        await self._leave(room_id, player_id, reason, by)

    async def _leave(
        self, room_id: str, player_id: str, reason: LeaveReason, by: Author | None = None,
    ) -> int:
        self._live(room_id)
        reply = await self.scripts.room(
            "leave", room_id, player_id, reason.value, "any", by.wire if by else "")
        if reply[0] is Reply.ABSENT:
            raise ProtocolError(ErrorCode.NOT_IN_ROOM, "player is not in this room")
        self._refused(room_id, reply[0])
        self.local.pop((room_id, player_id), None)
        _, version, token_hash, owner = reply
        if owner:
            self._unown(room_id, player_id, owner)
        if token_hash:
            self.persistence.session_ended(text(token_hash), reason.value)
        self._changed(room_id)
        return int(version)

    def _unown(self, room_id: str, player_id: str, owner: bytes | str) -> None:
        """Take a player that left out of its owning process's players set."""
        self.scripts.send("SREM", keys.proc_players_key(keys.proc_of_conn(owner)),
                          keys.member(room_id, player_id))

    async def disconnect(self, room_id: str, player_id: str, connection: object) -> None:
        local = self.local.get((room_id, player_id))
        if local is None or local.connection is not connection:
            return
        del self.local[room_id, player_id]
        await self.scripts.room(
            "disconnect", room_id, player_id, local.conn_id, self.grace_ms,
            after=[("SADD", keys.GRACES, room_id),
                   ("SREM", keys.proc_players_key(self.proc), keys.member(room_id, player_id))])
        self.persistence.session_seen(local.token_hash, connected=False)

    # -- state changes --------------------------------------------------------

    async def update(
        self, room_id: str, player_id: str, message: StateUpdate, *, by: Author | None = None,
    ) -> None:
        live = self._live(room_id)
        author = by or ANONYMOUS_PLAYER
        if message.entity_id is not None:
            await self._write(room_id, live, "e:" + message.entity_id, message.patch,
                              player_id=player_id, expected=message.expected_version,
                              author=author)
        else:
            await self._write(room_id, live, "p:" + player_id, message.patch,
                              player_id=player_id, expected=message.expected_version,
                              author=author)

    async def _write(
        self, room_id: str, live: MirroredRoom, field_name: str, patch: dict[str, Any], *,
        player_id: str | None, expected: int | None = None, server: bool = False,
        fence: str = "", author: Author | None = None,
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
                    expected=expected, server=server, fence=fence, author=author)
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]

    async def _commit(
        self, room_id: str, live: MirroredRoom, field_name: str, patch: dict[str, Any], *,
        player_id: str | None, expected: int | None, server: bool, fence: str = "",
        author: Author | None = None,
    ) -> int:
        """Validate on the object's latest known value, compare-and-set it in Redis.
        ``fence``: the runner lease of room code making this write (refused once stale);
        ``author``: who made it, in the log entry for the history (None: the server)."""
        wire = author.wire if author is not None else ""
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
                writer, "1" if misses >= CLAIM_AFTER_MISSES else "0", fence, wire,
                extra_keys=(keys.turn_key(room_id, field_name), keys.runner_key(room_id)),
            )
            status = reply[0]
            if status is Reply.LOCKED:  # another writer's turn on this object
                await asyncio.sleep(0.001 + random.random() * 0.002)
                continue
            if status is Reply.OK:
                version = int(reply[1])
                live.recent[field_name] = (updated, version)
                self._changed(room_id)
                return version
            if status is Reply.NOOP:
                return int(reply[1])
            if status is Reply.MISS:
                misses += 1
                raw, object_version = text(reply[1]), text(reply[2])
                current = orjson.loads(raw) if raw else None
                continue
            if status is Reply.CONFLICT:
                raise ProtocolError(
                    ErrorCode.VERSION_CONFLICT,
                    f"expected version {expected}, room is at {reply[1]}",
                    extra={"currentVersion": int(reply[1])},
                )
            if status is Reply.BIG:
                raise ProtocolError(
                    ErrorCode.PAYLOAD_TOO_LARGE,
                    f"room state would exceed {self.limits.max_room_state_bytes} bytes",
                )
            if status is Reply.FENCED:
                raise Fenced(room_id)
            self._refused(room_id, status)
        raise internal("too many concurrent writes to this object; the message had no effect")

    def _refused(self, room_id: str, status: Reply) -> None:
        """Raise the error of a refusal every room script may answer; pass on OK."""
        if status is Reply.CLOSED:
            live = self.rooms.get(room_id)
            if live is not None:
                self.room_closed(room_id, live)
            raise ProtocolError(ErrorCode.ROOM_CLOSED, "the room was closed")
        if status is Reply.GONE:  # Redis lost the room (restarted empty): rebuild it
            self.mark_gone()
            raise internal("room state is being restored; the message had no effect")
        if status is not Reply.OK:
            raise internal(f"unexpected store reply {status!r}")

    # -- server-side operations (sync.api) -----------------------------------

    async def server_update_player(
        self, room_id: str, player_id: str, patch: dict, *, by: Author | None = None,
    ) -> int:
        live = await self._server_live(room_id)
        version = await self._write(room_id, live, "p:" + player_id, patch,
                                    player_id=None, server=True, author=by)
        await self._reach(live, version)
        return version

    async def server_update_entity(
        self, room_id: str, entity_id: str, patch: dict, *, by: Author | None = None,
    ) -> int:
        live = await self._server_live(room_id)
        version = await self._write(room_id, live, "e:" + entity_id, patch, player_id=None,
                                    author=by)
        await self._reach(live, version)
        return version

    async def reset(
        self, room_id: str, state: dict | None = None, *, by: Author | None = None,
    ) -> int:
        return await self._replace(
            room_id, lambda work: work.reset(state), (by or SERVER).doing(HistoryKind.RESET))

    async def restore(self, room_id: str, state: dict, *, by: Author | None = None) -> int:
        return await self._replace(
            room_id, lambda work: work.restore(state), (by or SERVER).doing(HistoryKind.RESTORE))

    async def _replace(
        self, room_id: str, compute: Callable[[MirrorRoom], Change | None], author: Author,
    ) -> int:
        """A whole-room change (reset, restore): computed on a copy of the mirror, then
        compare-and-set on the room version by ``reset.lua``, retried when it moved."""
        live = await self._server_live(room_id)
        for _ in range(WRITE_ATTEMPTS):
            mirror = live.room
            before = mirror.version
            work = MirrorRoom(
                room_id, mirror.room_type, self.limits, version=before,
                objects={**{"p:" + k: v for k, v in mirror.players.items()},
                         **{"e:" + k: v for k, v in mirror.entities.items()}},
                object_versions=mirror.object_versions,
                initial={pid: m.initial for pid, m in mirror.meta.items()},
                max_players=UNLIMITED, now=time.monotonic(),
            )
            change = compute(work)
            if change is None:
                return before
            pairs: list[Any] = []
            for pid, obj in work.players.items():
                pairs += ["p:" + pid, orjson.dumps(obj)]
            for eid, obj in work.entities.items():
                pairs += ["e:" + eid, orjson.dumps(obj)]
            reply = await self.scripts.room(
                "reset", room_id, before, orjson.dumps(change.patch), work.state_bytes,
                len(pairs) // 2, *pairs, author.wire)
            if reply[0] is Reply.OK:
                version = int(reply[1])
                self._changed(room_id)
                await self._reach(live, version)
                return version
            if reply[0] is Reply.MISS:
                await self._reach(live, int(reply[1]))
                continue
            self._refused(room_id, reply[0])
        raise internal("room kept changing during reset")

    # -- events and room code (§11, §12; sync.store.redis_room_code) --------------

    async def message(self, room_id: str, player_id: str, message: Message) -> None:
        """To the room's runner (any process) or relayed, through the room's log."""
        live = self._live(room_id)
        local = self.local.get((room_id, player_id))
        await self.room_code.message(
            room_id, player_id, message, local.conn_id if local else "", live.room.room_type)

    async def send_event(
        self, room_id: str, kind: str, data: Any, to: frozenset[str] | None = None,
    ) -> None:
        """EVENT for every member on every process, in the room's log order (an unknown
        room is ROOM_NOT_FOUND, as in memory: no stray log is created for it)."""
        await self._server_live(room_id)
        await self.room_code.send_event(room_id, kind, data, to)

    def persisted(self, room_id: str) -> tuple[int, dict[str, Any], int] | None:
        """The mirror's state, plus the code state when this process runs the room."""
        live = self.rooms.get(room_id)
        if live is None:
            return None
        state = live.room.snapshot()
        code = self.room_code.code_state(room_id)
        if code is not None:
            state["server"] = code
        return live.room.version, state, id(code) if code is not None else 0

    async def reconfigure(self, room_id: str) -> None:
        """Every process with the room loaded re-reads its configuration, told by a
        ``C`` marker in the room's log (this process too, when the marker comes back)."""
        await self.redis.xadd(keys.log_key(room_id), {"k": "C"}, maxlen=self.scripts.log_maxlen,
                              approximate=True)

    async def kick(self, room_id: str, player_id: str, *, by: Author | None = None) -> None:
        live = await self._server_live(room_id)
        await self._reach(live, await self._leave(room_id, player_id, LeaveReason.KICKED, by))

    async def close(self, room_id: str, *, by: Author | None = None) -> None:
        """Every player leaves with reason ``closed``; members everywhere get ROOM_CLOSED."""
        reply = await self.scripts.room("close", room_id, by.wire if by else "")
        if reply[0] is Reply.OK:
            left = reply[1]
            for player_id, token_hash, owner in zip(left[::3], left[1::3], left[2::3],
                                                   strict=True):
                if owner:
                    self._unown(room_id, text(player_id), owner)
                if token_hash:
                    self.persistence.session_ended(text(token_hash), LeaveReason.CLOSED.value)
        elif reply[0] is Reply.GONE:
            await self.redis.hset(keys.meta_key(room_id), "closed", "1")
        self.closed.add(room_id)
        live = self.rooms.get(room_id)
        if live is not None:
            # Our members are told when the X entry comes back; wait for it briefly.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.wait_for(1 << 62), MIRROR_WAIT)
        self.persistence.room_closed(room_id)

    def fanout(self, room_id: str) -> RoomFanout:
        live = self._live(room_id)
        fanout = self.hub.room(room_id, lambda: self._state(room_id),
                               lambda: self.epoch(room_id), room_type=live.room.room_type)
        fanout.docs_source = lambda: self.documents.ids(room_id)
        return fanout

    # -- recovery by version (§14) ------------------------------------------------

    def epoch(self, room_id: str) -> str | None:
        live = self.rooms.get(room_id)
        return live.epoch if live is not None else None

    async def fetch_epoch(self, room_id: str, *, replace: str | None = None) -> str | None:
        """The room's epoch from its meta hash. A room seeded without one (Redis had lost
        it: its state came back from a snapshot or a mirror, versions may repeat) gets a
        new one there, first process wins; so does a room whose epoch is still
        ``replace`` (state may have been lost since: a cluster fail-over, Redis behind
        a mirror). None when Redis has no such room."""
        reply = await self.scripts.room("epoch", room_id, new_epoch(), replace or "")
        return text(reply[1]) if reply[0] is Reply.OK else None

    async def recent_changes(self, room_id: str, since: int) -> list[Change] | None:
        """The changes after ``since`` from the room's log, read with its epoch in one
        step: None when the log does not reach back to ``since`` or Redis's epoch is not
        the one this process knows (then the room is reloaded)."""
        live = self.rooms.get(room_id)
        if live is None or since > live.room.version:
            return None
        reply = await self.scripts.room("since", room_id, since, self.scripts.log_maxlen * 2)
        if reply[0] is not Reply.OK or text(reply[1]) != live.epoch:
            live.stale = True  # Redis lost the room or re-seeded it: reload it
            self.wake()
            return None
        if not int(reply[2]):
            return None
        changes = []
        for flat in reversed(reply[3:]):
            pairs = iter(flat)
            change = change_of(dict(zip(pairs, pairs, strict=True)))
            if change.version > since:
                changes.append(change)
        return changes

    # -- history (§15) -------------------------------------------------------------

    def record_backlog(self, room_id: str) -> None:
        """Hand the history every change still in the room's log, in the background.

        Called when this process takes the room's snapshot lease (the process holding
        it records the changes it reads) and when it reloads the room after a gap. The
        previous holder may have died with changes it had read but not yet written, or
        the lease may have been nobody's for a moment: the log still holds them (its
        last ``KASAGI_RECOVERY_LOG`` changes at least), and the writer skips the ones
        already recorded (unique room and version). So a move of the lease leaves no
        gap unless the room made more changes than the log keeps while nobody held it.
        """
        if not self.persistence.history:
            return
        task = asyncio.get_running_loop().create_task(self._record_backlog(room_id))
        self.reader._background.add(task)
        task.add_done_callback(self.reader._background.discard)

    async def _record_backlog(self, room_id: str) -> None:
        try:
            entries = await self.redis.xrange(keys.log_key(room_id), "-", "+")
        except (RedisError, OSError) as exc:
            logger.warning("room %s: could not read its log for the history: %s", room_id, exc)
            return
        persistence = self.persistence
        for entry_id, fields in entries:
            if b"b" not in fields:
                continue  # a marker (T, C, X, events), not a change
            raw_id = entry_id if isinstance(entry_id, bytes) else entry_id.encode()
            persistence.change_made(
                room_id, change_of(fields), Author.from_wire(fields.get(b"a")),
                int(raw_id.split(b"-", 1)[0]))
        persistence.room_changed(room_id)

    def _state(self, room_id: str) -> tuple[int, dict[str, Any]]:
        live = self.rooms.get(room_id)
        return live.state() if live is not None else (0, {"players": {}, "entities": {}})

    async def snapshot(self, room_id: str) -> tuple[int, dict[str, Any]] | None:
        """(version, state) of a room: this process's mirror, else read from Redis."""
        live = self.rooms.get(room_id)
        if live is not None:
            return live.state()
        reply = await self.scripts.room("load", room_id)
        if reply[0] is not Reply.OK:
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

    def _live(self, room_id: str) -> MirroredRoom:
        live = super()._live(room_id)
        live.last_used = time.monotonic()
        return live

    async def _reach(self, live: MirroredRoom, version: int) -> None:
        """Wait until the mirror has applied ``version`` (read-your-writes for the caller)."""
        if live.room.version >= version:
            return
        try:
            await asyncio.wait_for(live.wait_for(version), MIRROR_WAIT)
        except TimeoutError:
            logger.warning("room %s: mirror did not reach %s; reloading", live.config.room_id,
                           version)
            live.stale = True
            self.wake()

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
