"""Room code on Redis (§12): one runner per room across processes, and events.

**Who runs a room's code.** Every process that has a room with code loaded
asks for the room's runner lease (``runner.lua``: a key ``proc|n`` with a
TTL, renewed every janitor round; a new holder gets a new ``n`` from the
room's fence counter). The holder starts a ``RoomRunner`` from the code
state saved in Redis (``code_key``: server-only data and timers with due
times), so when the holder dies another process takes over within the lease
TTL and its timers fire where they would have. Every write the runner makes
carries its token: ``commit.lua`` and ``fenced.lua`` refuse it once the lease
moved on, so a paused runner that wakes up can never write (it stops).

**The runner's writes** are validated at once on a scratch room and kept in
an overlay, so room code reads its own changes immediately (as in memory);
then they are committed in order, one at a time, together with its events
and code-state saves (``_drain``): an event is in the log after the changes
made before it, which is what §11's order needs across processes.

**Messages and events ride the room's log** next to its changes: ``M`` (a
MESSAGE for the runner, from whatever process the sender is on), ``E`` (an
EVENT for every process's members), ``R`` (the runner refused a message:
ERROR for the sender on its own process). One stream gives one order, per
sender and relative to the changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import orjson

from ..core.changes import Change, ChangeKind
from ..core.envelope import Message
from ..core.errors import ErrorCode, ProtocolError
from ..hub import OutEvent
from ..room_runner import RoomRunner, message_route
from . import redis_keys as keys
from .redis_scripts import LOG_MAXLEN

if TYPE_CHECKING:
    from .redis import RedisRoomStore
    from .redis_mirror import MirroredRoom

logger = logging.getLogger(__name__)

#: a runner lease lives this long without renewal (the janitor renews it every round)
RUNNER_LEASE_MS = 3000


class Fenced(Exception):
    """A room code runner's write was refused: its lease is no longer current."""


class RedisHost:
    """The ``RoomHost`` of a room whose code runs in this process on Redis."""

    def __init__(self, store: RedisRoomStore, room_id: str, token: str) -> None:
        self.store = store
        self.room_id = room_id
        self.token = token
        #: field → (object or None when deleted, writes of it still queued)
        self.overlay: dict[str, list[Any]] = {}
        self.queue: deque[tuple[str, Any]] = deque()
        self.drainer: asyncio.Task[None] | None = None
        self.code_state: dict[str, Any] | None = None
        self.fenced = False
        #: while the runner replays the MESSAGEs it missed: the live ones, held in order
        self.backlog: list[tuple[bytes, dict[str, Any]]] | None = None
        #: the log id of the last MESSAGE a runner of the room handled before this one
        #: (a reader behind it brings them again: not handled twice)
        self.floor = (0, 0)
        self._view: tuple[int, int, Any, Any] | None = None
        self._overlay_rev = 0

    def _live(self) -> MirroredRoom | None:
        return self.store.rooms.get(self.room_id)

    # -- reads --------------------------------------------------------------

    def view(self) -> tuple[int, Mapping[str, Any], Mapping[str, Any]]:
        live = self._live()
        if live is None:
            return 0, MappingProxyType({}), MappingProxyType({})
        mirror = live.room
        if not self.overlay:
            return mirror.version, MappingProxyType(mirror.players), MappingProxyType(
                mirror.entities)
        cached = self._view
        if cached is None or cached[0] != mirror.version or cached[1] != self._overlay_rev:
            players, entities = dict(mirror.players), dict(mirror.entities)
            for field, (value, _) in self.overlay.items():
                table = players if field[0] == "p" else entities
                if value is None:
                    table.pop(field[2:], None)
                else:
                    table[field[2:]] = value
            cached = self._view = (mirror.version, self._overlay_rev,
                                   MappingProxyType(players), MappingProxyType(entities))
        return mirror.version, cached[2], cached[3]

    # -- writes (validated now, committed in order) -------------------------------

    def apply_player(self, player_id: str, patch: dict[str, Any]) -> None:
        self._apply("p:" + player_id, patch)

    def apply_entity(self, entity_id: str, patch: dict[str, Any]) -> None:
        self._apply("e:" + entity_id, patch)

    def _apply(self, field: str, patch: dict[str, Any]) -> None:
        live = self._live()
        if live is None or self.fenced:
            raise ProtocolError(ErrorCode.INTERNAL, "the room's code no longer runs here")
        name = field[2:]
        _, players, entities = self.view()
        current = (players if field[0] == "p" else entities).get(name)
        now = time.monotonic()
        scratch = live.room.scratch(field, dict(current) if current is not None else None,
                                    now=now)
        if field[0] == "p":
            if current is None:
                raise ProtocolError(ErrorCode.NOT_IN_ROOM, f"player {name} is not in the room")
            change = scratch.update_player(name, dict(patch), now=now, server=True)
            updated = scratch.players.get(name)
        else:
            change = scratch.update_entity(name, dict(patch), player_id=None)
            updated = scratch.entities.get(name)
        if change is None:
            return
        entry = self.overlay.get(field)
        if entry is None:
            self.overlay[field] = [updated, 1]
        else:
            entry[0] = updated
            entry[1] += 1
        self._overlay_rev += 1
        self._queue(("w", (field, patch)))

    def emit_event(
        self, kind: str, data: Any, *, sender: str | None, to: frozenset[str] | None,
    ) -> None:
        self._queue(("e", event_entry(kind, data, sender, to, None)))

    def save_code_state(self, state: dict[str, Any]) -> None:
        self.code_state = state
        self._queue(("c", orjson.dumps(state)))

    def handled(self, entry_id: bytes) -> None:
        """Record a MESSAGE's log id as handled, after the writes it made (in order):
        the next runner replays from there. Consecutive records collapse into one."""
        queue = self.queue
        if queue and queue[-1][0] == "m":
            queue[-1] = ("m", entry_id)
        else:
            self._queue(("m", entry_id))

    def _queue(self, op: tuple[str, Any]) -> None:
        self.queue.append(op)
        if self.drainer is None:
            self.drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        store = self.store
        try:
            while self.queue and not self.fenced:
                op, arg = self.queue.popleft()
                try:
                    if op == "w":
                        field, patch = arg
                        live = self._live()
                        if live is None:
                            continue
                        try:
                            version = await store._write(
                                self.room_id, live, field, patch,
                                player_id=None, server=True, fence=self.token)
                            await store._reach(live, version)  # the mirror holds it now
                        finally:
                            self._settle(field)
                    else:
                        done = await store.scripts.plain(
                            "fenced",
                            _fenced_keys(self.room_id),
                            [self.token, op, arg, LOG_MAXLEN])
                        if not done:
                            self._lost()
                except Fenced:
                    self._lost()
                except ProtocolError as exc:
                    logger.warning("room %s: room code change refused: %s",
                                   self.room_id, exc.message)
                except Exception:
                    logger.exception("room %s: room code change failed", self.room_id)
        finally:
            self.drainer = None

    def _settle(self, field: str) -> None:
        entry = self.overlay.get(field)
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del self.overlay[field]
                self._overlay_rev += 1

    def _lost(self) -> None:
        if not self.fenced:
            logger.warning("room %s: runner lease lost; room code stops here", self.room_id)
        self.fenced = True
        self.queue.clear()
        self.overlay.clear()
        self.store.room_code.stop(self.room_id)


def _log_id(entry_id: bytes | str) -> tuple[int, int]:
    """A stream entry id ``ms-seq`` as numbers (ids compare numerically, not as text)."""
    raw = entry_id.encode() if isinstance(entry_id, str) else entry_id
    ms, _, seq = raw.partition(b"-")
    return int(ms), int(seq or 0)


def _fenced_keys(room_id: str) -> list[str]:
    """The KEYS of ``fenced.lua`` (one room, one slot)."""
    return [keys.runner_key(room_id), keys.log_key(room_id), keys.code_key(room_id),
            keys.handled_key(room_id)]


def event_entry(
    kind: str, data: Any, sender: str | None, to: frozenset[str] | None, exclude: str | None,
) -> bytes:
    return orjson.dumps({"kind": kind, "data": data, "from": sender,
                         "to": sorted(to) if to is not None else None, "exclude": exclude})


class RoomCode:
    """This process's runners of room code, and the log entries they use."""

    def __init__(self, store: RedisRoomStore) -> None:
        self.store = store
        self.runners: dict[str, tuple[RoomRunner, RedisHost]] = {}

    # -- leases (the janitor calls ``renew`` every round) ------------------------

    async def renew(self) -> None:
        for room_id, live in list(self.store.rooms.items()):
            if live.room.room_type.has_code():
                await self.claim(room_id)
        for room_id in [r for r in self.runners if r not in self.store.rooms]:
            await self.release(room_id)

    async def claim(self, room_id: str) -> None:
        """Take or renew the room's runner lease; start or stop its runner here."""
        store = self.store
        token = await store.scripts.plain(
            "runner", [keys.runner_key(room_id), keys.fence_key(room_id)],
            [store.proc, RUNNER_LEASE_MS])
        token = token.decode() if isinstance(token, bytes) else token
        running = self.runners.get(room_id)
        if not token:
            if running is not None:
                self.stop(room_id)
            return
        if running is not None and running[1].token == token:
            return
        if running is not None:
            self.stop(room_id)
        live = store.rooms.get(room_id)
        if live is None:
            return
        raw, cursor = await store.redis.mget(keys.code_key(room_id), keys.handled_key(room_id))
        code_state = orjson.loads(raw) if raw else None
        live = store.rooms.get(room_id)
        if live is None or room_id in self.runners:
            return
        host = RedisHost(store, room_id, token)
        host.code_state = code_state
        host.backlog = []  # MESSAGEs the reader brings from now on wait for the replay
        if cursor:
            host.floor = _log_id(cursor)
        runner = RoomRunner(room_id, live.room.room_type, host, code_state=code_state)
        self.runners[room_id] = (runner, host)
        logger.info("room %s: room code runs in this process (lease %s)", room_id, token)
        runner.start()
        await self._replay(room_id, runner, host, cursor, live.stream_id)

    async def _replay(self, room_id: str, runner: RoomRunner, host: RedisHost,
                      cursor: bytes | None, position: bytes | str | None) -> None:
        """Handle the MESSAGEs that reached the log after the last one a runner handled
        (``cursor``) and up to where this process's reader was when this runner started
        (``upto``): sent while no runner held the lease, nobody handled them. Then the
        ones the reader brought meanwhile, in log order. Without a cursor (the room's
        first runner) nothing is replayed; the cursor starts at ``upto``."""
        upto = position.encode() if isinstance(position, str) else position
        missed: list[tuple[bytes, dict[str, Any]]] = []
        try:
            if cursor and upto and _log_id(cursor) < _log_id(upto):
                for entry_id, fields in await self.store.redis.xrange(
                        keys.log_key(room_id), b"(" + cursor, upto):
                    if fields.get(b"k") == b"M":
                        missed.append((entry_id, orjson.loads(fields[b"m"])))
        except Exception:
            logger.warning("room %s: could not read the MESSAGEs sent during the hand-over",
                           room_id, exc_info=True)
        if self.runners.get(room_id, (None, None))[1] is not host:
            return  # stopped meanwhile
        if missed:
            logger.info("room %s: %d MESSAGEs sent while no runner held the lease are "
                        "handled now", room_id, len(missed))
        backlog, host.backlog = host.backlog or [], None
        for entry_id, message in [*missed, *backlog]:
            self._handle(room_id, runner, host, entry_id, message)
        if not missed and not backlog and upto and upto != cursor:
            host.handled(upto)

    def stop(self, room_id: str) -> None:
        running = self.runners.pop(room_id, None)
        if running is not None:
            running[0].stop()
            running[1].fenced = True

    async def release(self, room_id: str) -> None:
        """Stop the room's runner here and hand its lease back (after its queued
        writes), so a process that still has the room loaded takes over at its next
        janitor round instead of when the lease runs out: a clean stop, or the room
        unloaded here while members elsewhere still play."""
        running = self.runners.pop(room_id, None)
        if running is None:
            return
        runner, host = running
        runner.stop()
        if host.queue and host.drainer is not None:
            await asyncio.wait([host.drainer], timeout=2)
        host.fenced = True
        await self.store.scripts.plain(
            "fenced",
            _fenced_keys(room_id),
            [host.token, "r", "", LOG_MAXLEN])

    async def release_all(self) -> None:
        """A clean stop: hand the leases back so another process takes over at once."""
        for room_id in list(self.runners):
            await self.release(room_id)

    def code_state(self, room_id: str) -> dict[str, Any] | None:
        running = self.runners.get(room_id)
        return running[1].code_state if running is not None else None

    # -- what clients and Django code send ------------------------------------------

    async def message(self, room_id: str, player_id: str, message: Message, conn_id: str,
                      room_type: Any) -> None:
        if message_route(room_type, message.kind) == "handle":
            entry = {"k": "M", "m": orjson.dumps({
                "pid": player_id, "kind": message.kind, "data": message.data,
                "rid": message.request_id, "conn": conn_id})}
        else:
            entry = {"k": "E", "e": event_entry(
                message.kind, message.data, player_id, None, player_id)}
        await self.store.redis.xadd(keys.log_key(room_id), entry,  # type: ignore[arg-type]
                                    maxlen=LOG_MAXLEN, approximate=True)

    async def send_event(self, room_id: str, kind: str, data: Any,
                         to: frozenset[str] | None) -> None:
        await self.store.redis.xadd(
            keys.log_key(room_id), {"k": "E", "e": event_entry(kind, data, None, to, None)},
            maxlen=LOG_MAXLEN, approximate=True)

    # -- what the log reader hands over ------------------------------------------------

    def on_entry(self, room_id: str, kind: bytes, fields: dict[bytes, bytes]) -> None:
        """An ``E``, ``M`` or ``R`` entry of a room's log, in log order."""
        if kind == b"E":
            event = orjson.loads(fields[b"e"])
            to = event.get("to")
            self.store.hub.publish_event(room_id, OutEvent(
                event["kind"], event["data"], event["from"],
                frozenset(to) if to is not None else None, event.get("exclude")))
        elif kind == b"M":
            running = self.runners.get(room_id)
            live = self.store.rooms.get(room_id)
            if running is None or live is None:
                return
            message = orjson.loads(fields[b"m"])
            position = live.stream_id  # the reader sets it before handing the entry over
            entry_id = position.encode() if isinstance(position, str) else position
            if running[1].backlog is not None:  # the runner is still replaying
                running[1].backlog.append((entry_id, message))
            else:
                self._handle(room_id, *running, entry_id, message)
        elif kind == b"R":
            reply = orjson.loads(fields[b"r"])
            local = self.store.local.get((room_id, reply["pid"]))
            if local is not None and local.conn_id == reply["conn"]:
                error = ProtocolError(ErrorCode(reply["code"]), reply["message"],
                                      request_id=reply["rid"], room_id=room_id)
                send_error = getattr(local.connection, "send_error", None)
                if send_error is not None:
                    send_error(error)

    def _handle(self, room_id: str, runner: RoomRunner, host: RedisHost, entry_id: bytes,
                message: dict[str, Any]) -> None:
        """One MESSAGE for the runner; its log id is recorded after what it wrote."""
        if _log_id(entry_id) <= host.floor:
            return  # a runner before this one handled it
        try:
            runner.message(message["pid"], message["kind"], message["data"])
        except ProtocolError as exc:
            self._refuse(room_id, message, exc)
        host.handled(entry_id)

    def _refuse(self, room_id: str, message: dict[str, Any], exc: ProtocolError) -> None:
        reply = orjson.dumps({"pid": message["pid"], "conn": message["conn"],
                              "code": exc.code.value, "message": exc.message,
                              "rid": message["rid"]})

        async def send() -> None:
            try:
                await self.store.redis.xadd(keys.log_key(room_id), {"k": "R", "r": reply},
                                            maxlen=LOG_MAXLEN, approximate=True)
            except Exception:
                logger.warning("room %s: could not send a refusal", room_id, exc_info=True)

        asyncio.get_running_loop().create_task(send())

    def on_change(self, room_id: str, change: Change, source: bytes | None) -> None:
        """A change applied to the mirror: the runner's hooks (not for its own writes)."""
        running = self.runners.get(room_id)
        if running is None:
            return
        runner = running[0]
        if change.kind is ChangeKind.JOINED:
            runner.joined(change.payload["playerId"])  # type: ignore[index]
        elif change.kind is ChangeKind.LEFT:
            payload = change.payload or {}
            runner.left(payload["playerId"], payload["reason"])
        elif source != b"r":
            for player_id, sub in (change.patch.get("players") or {}).items():
                if sub is not None:
                    runner.updated(player_id, sub)
