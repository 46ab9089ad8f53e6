"""The in-process store: rooms live in this process's memory (one server).

It is the authority for its rooms: it runs the pure ``Room`` transitions,
keeps session tokens (hashed) and grace-period timers, and hands every
change to the hub and the persistence hooks. Methods are ``async`` so the
Redis store can share the interface; here only ``activate`` may await (the
directory, once per room), everything else completes without suspending.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..core.changelog import EPOCH_KEY, ChangeLog, new_epoch
from ..core.changes import (
    ANONYMOUS_PLAYER,
    SERVER,
    Author,
    Change,
    HistoryKind,
    LeaveReason,
)
from ..core.documents import DocumentSet
from ..core.envelope import Message, StateUpdate
from ..core.errors import ErrorCode, ProtocolError
from ..core.limits import Limits
from ..core.room import Room
from ..core.room_types import get_room_type
from ..directory import Identity, RoomConfig, RoomDirectory
from ..documents import LocalDocuments, load_documents, stored_documents
from ..hub import Hub, OutEvent, RoomFanout
from ..room_runner import RoomRunner, message_route
from ..tokens import hash_token, new_player_id, new_token
from .base import JoinResult, LoadedRooms, NullPersistence, Persistence, SingleFlight

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class PlayerSession:
    token_hash: str
    connection: object | None = None
    grace: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class LiveRoom:
    config: RoomConfig
    room: Room
    sessions: dict[str, PlayerSession] = field(default_factory=dict)
    last_change: float = field(default_factory=time.time)
    #: the room's code (None: its type has none)
    runner: RoomRunner | None = None
    #: the code's server-only data and timers, as last saved, and a save counter
    code_state: dict[str, Any] | None = None
    code_revision: int = 0
    #: §14: the room's epoch and its recent changes (recovery by version)
    epoch: str = field(default_factory=new_epoch)
    log: ChangeLog = field(default_factory=lambda: ChangeLog(1000))
    #: §16: the room's documents
    docs: DocumentSet = field(default_factory=lambda: DocumentSet(1048576))

    def state(self) -> tuple[int, dict[str, Any]]:
        return self.room.version, self.room.snapshot()


class MemoryHost:
    """The ``RoomHost`` of a room in this process: room code's changes go through
    the same ``Room`` transitions and ``_emit`` as a client's."""

    __slots__ = ("live", "room_id", "store")

    def __init__(self, store: MemoryRoomStore, room_id: str, live: LiveRoom) -> None:
        self.store, self.room_id, self.live = store, room_id, live

    def view(self) -> tuple[int, Mapping[str, Any], Mapping[str, Any]]:
        room = self.live.room
        return room.version, MappingProxyType(room.players), MappingProxyType(room.entities)

    def apply_player(self, player_id: str, patch: dict[str, Any]) -> None:
        change = self.live.room.update_player(
            player_id, patch, now=time.monotonic(), server=True)
        if change is not None:
            self.store._emit(self.room_id, self.live, change, SERVER)

    def apply_entity(self, entity_id: str, patch: dict[str, Any]) -> None:
        change = self.live.room.update_entity(entity_id, patch, player_id=None)
        if change is not None:
            self.store._emit(self.room_id, self.live, change, SERVER)

    def emit_event(
        self, kind: str, data: Any, *, sender: str | None, to: frozenset[str] | None,
    ) -> None:
        self.store.hub.publish_event(self.room_id, OutEvent(kind, data, sender, to))

    def save_code_state(self, state: dict[str, Any]) -> None:
        self.live.code_state = state
        self.live.code_revision += 1
        self.store.persistence.room_changed(self.room_id)


class MemoryRoomStore(LoadedRooms, LocalDocuments):
    #: update() and message() never suspend: the consumer may run them in the data callback
    inline_updates = True

    def __init__(
        self,
        hub: Hub,
        directory: RoomDirectory,
        *,
        limits: Limits,
        grace_seconds: float,
        persistence: Persistence | None = None,
        recovery_log: int = 1000,
    ) -> None:
        self.hub = hub
        self.directory = directory
        self.limits = limits
        self.grace_seconds = grace_seconds
        #: changes each room keeps for recovery by version (§14, KASAGI_RECOVERY_LOG)
        self.recovery_log = recovery_log
        #: a clean stop took its last snapshots (``seal_epochs``): no change goes out any more
        self.sealed = False
        self.persistence = persistence or NullPersistence()
        self.rooms: dict[str, LiveRoom] = {}
        self.closed: set[str] = set()
        self._tokens: dict[str, tuple[str, str]] = {}
        self._activating: SingleFlight[LiveRoom] = SingleFlight()

    # -- activation ------------------------------------------------------

    async def activate(self, room_id: str, *, who: Identity, create: bool) -> RoomConfig:
        """Load a room on first use (config, latest snapshot); refuse closed/unknown ones."""
        if room_id in self.closed:
            raise ProtocolError(ErrorCode.ROOM_CLOSED, "the room was closed")
        live = self.rooms.get(room_id)
        if live is None:
            live = await self._activating.run(
                room_id, lambda: self._load(room_id, who=who, create=create)
            )
        return live.config

    async def _load(self, room_id: str, *, who: Identity, create: bool) -> LiveRoom:
        config = await self._config_for(room_id, who=who, create=create)
        snapshot = await self.directory.latest_snapshot(room_id)
        stored = await stored_documents(self.directory, room_id)
        if room_id in self.rooms:  # loaded meanwhile by the server-side API
            return self.rooms[room_id]
        room = Room(
            room_id, get_room_type(config.room_type), self.limits,
            state=snapshot.state if snapshot else None,
            version=snapshot.version if snapshot else 0,
            max_players=config.max_players, now=self._now(),
        )
        live = self.rooms[room_id] = LiveRoom(
            config, room, epoch=_epoch_of(snapshot.state if snapshot else None),
            log=ChangeLog(self.recovery_log), docs=DocumentSet(self.limits.max_room_state_bytes))
        load_documents(live.docs, stored, room_id)
        for player_id in room.players:
            # Restored players are disconnected until they resume within the grace period.
            session = live.sessions[player_id] = PlayerSession(token_hash="")
            self._start_grace(room_id, player_id, session)
        if room.room_type.has_code():
            live.code_state = (snapshot.state.get("server") if snapshot else None) or None
            live.runner = RoomRunner(
                room_id, room.room_type, MemoryHost(self, room_id, live),
                code_state=live.code_state)
            live.runner.start()
        return live

    # -- player lifecycle ------------------------------------------------

    async def join(
        self, room_id: str, fields: dict[str, Any], *, who: Identity,
        session_token: str | None, connection: object,
    ) -> JoinResult:
        live = self._live(room_id)
        if session_token:
            resumed = await self._resume(live, session_token, connection)
            if resumed is not None:
                return resumed
        player_id = new_player_id()
        identity = who.player_fields()
        live.room.room_type.check_join(live.room.players, fields, identity=identity)
        change = live.room.join(player_id, fields, now=self._now(), identity=identity)
        token = new_token()
        token_hash = hash_token(token)
        live.sessions[player_id] = PlayerSession(token_hash, connection)
        self._tokens[token_hash] = (room_id, player_id)
        self.persistence.session_issued(token_hash, room_id, player_id, who.user_id)
        self._emit(room_id, live, change, Author.player(who.user_id, who.username, player_id))
        if live.runner is not None:
            live.runner.joined(player_id)
        return JoinResult(player_id, token, resumed=False)

    async def _resume(
        self, live: LiveRoom, token: str, connection: object
    ) -> JoinResult | None:
        token_hash = hash_token(token)
        found = self._tokens.get(token_hash)
        if found is None:
            stored = await self.directory.find_session(token_hash)
            found = (stored.room_id, stored.player_id) if stored else None
        if found is None or found[0] != live.config.room_id:
            return None
        player_id = found[1]
        session = live.sessions.get(player_id)
        if session is None or not live.room.has_player(player_id):
            return None
        if session.token_hash and session.token_hash != token_hash:
            return None
        session.token_hash = token_hash
        self._tokens[token_hash] = (live.config.room_id, player_id)
        if session.grace is not None:
            session.grace.cancel()
            session.grace = None
        previous, session.connection = session.connection, connection
        if previous is not None and previous is not connection:
            # A socket the server still thought alive: the new one takes over.
            fanout = self.hub.get(live.config.room_id)
            if fanout is not None:
                fanout.detach(previous)  # type: ignore[arg-type]
            detached = getattr(previous, "on_detached", None)
            if detached is not None:
                detached(live.config.room_id, "resumed")
        self.persistence.session_seen(token_hash, connected=True)
        return JoinResult(player_id, token, resumed=True)

    async def leave(
        self, room_id: str, player_id: str, reason: LeaveReason, *, by: Author | None = None,
    ) -> None:
        live = self._live(room_id)
        change = live.room.leave(player_id, reason)
        session = live.sessions.pop(player_id, None)
        if session is not None:
            if session.grace is not None:
                session.grace.cancel()
            if session.token_hash:
                self._tokens.pop(session.token_hash, None)
                self.persistence.session_ended(session.token_hash, reason.value)
        self._emit(room_id, live, change, by or SERVER)
        if live.runner is not None:
            live.runner.left(player_id, reason.value)

    async def disconnect(self, room_id: str, player_id: str, connection: object) -> None:
        """The socket went away without LEAVE_ROOM: keep the player for the grace period."""
        live = self.rooms.get(room_id)
        session = live.sessions.get(player_id) if live else None
        if session is None or session.connection is not connection:
            return
        session.connection = None
        if session.token_hash:
            self.persistence.session_seen(session.token_hash, connected=False)
        self._start_grace(room_id, player_id, session)

    def _start_grace(self, room_id: str, player_id: str, session: PlayerSession) -> None:
        if session.grace is not None:
            session.grace.cancel()
        session.grace = asyncio.get_running_loop().call_later(
            self.grace_seconds, self._expire, room_id, player_id, session
        )

    def _expire(self, room_id: str, player_id: str, session: PlayerSession) -> None:
        live = self.rooms.get(room_id)
        if live is None or live.sessions.get(player_id) is not session or session.connection:
            return
        session.grace = None
        try:
            live_change = live.room.leave(player_id, LeaveReason.TIMEOUT)
        except ProtocolError:
            return
        live.sessions.pop(player_id, None)
        if session.token_hash:
            self._tokens.pop(session.token_hash, None)
            self.persistence.session_ended(session.token_hash, LeaveReason.TIMEOUT.value)
        self._emit(room_id, live, live_change, SERVER)
        if live.runner is not None:
            live.runner.left(player_id, LeaveReason.TIMEOUT.value)

    # -- state changes ---------------------------------------------------

    async def update(
        self, room_id: str, player_id: str, message: StateUpdate, *, by: Author | None = None,
    ) -> None:
        live = self.rooms.get(room_id) or self._live(room_id)  # (_live: the refusal)
        room = live.room
        if message.entity_id is not None:
            change = room.update_entity(
                message.entity_id, message.patch, player_id=player_id,
                expected_version=message.expected_version,
            )
        else:
            change = room.update_player(
                player_id, message.patch, now=time.monotonic(),  # self._now(), inlined
                expected_version=message.expected_version,
            )
            if change is not None:
                self._emit(room_id, live, change, by or ANONYMOUS_PLAYER)
                if live.runner is not None:
                    live.runner.updated(player_id, change.patch["players"][player_id])
                return
        if change is not None:
            self._emit(room_id, live, change, by or ANONYMOUS_PLAYER)

    # -- events and room code (§11, §12) -----------------------------------

    async def message(self, room_id: str, player_id: str, message: Message) -> None:
        """A player's MESSAGE: to the room's code if it handles the kind, else
        relayed as EVENT to the other members (or UNKNOWN_MESSAGE)."""
        live = self._live(room_id)
        if message_route(live.room.room_type, message.kind) == "handle":
            if live.runner is None:
                raise ProtocolError(ErrorCode.INTERNAL, "the room's code is not running")
            live.runner.message(player_id, message.kind, message.data)
        else:
            self.hub.publish_event(
                room_id, OutEvent(message.kind, message.data, player_id, exclude=player_id))

    async def send_event(
        self, room_id: str, kind: str, data: Any, to: frozenset[str] | None = None,
    ) -> None:
        """EVENT from the server (``from`` null) to a loaded room's members here."""
        if room_id not in self.rooms:
            await self._server_live(room_id)
        self.hub.publish_event(room_id, OutEvent(kind, data, None, to))

    def persisted(self, room_id: str) -> tuple[int, dict[str, Any], int] | None:
        """(version, state with the code's server-only data under ``server``, revision)
        for the database snapshot; the revision changes when either changes."""
        live = self.rooms.get(room_id)
        if live is None:
            return None
        state = live.room.snapshot()
        if live.code_state is not None:
            state["server"] = live.code_state
        state[EPOCH_KEY] = {"id": live.epoch, "clean": self.sealed}
        return live.room.version, state, live.code_revision

    def seal_epochs(self) -> list[str]:
        """A clean stop: the next snapshot of every loaded room is its last state, and
        says so (``clean``), so the room keeps its epoch when it is loaded again. From
        here on changes are no longer sent to anyone: a version no snapshot holds must
        not reach a client (it would name another state in the same epoch after the
        restart). Returns the rooms to snapshot."""
        self.sealed = True
        for live in self.rooms.values():
            live.code_revision += 1  # a new revision: snapshot even an unchanged room
        return list(self.rooms)

    def epoch(self, room_id: str) -> str | None:
        live = self.rooms.get(room_id)
        return live.epoch if live is not None else None

    async def recent_changes(self, room_id: str, since: int) -> list[Change] | None:
        """The room's changes after ``since`` up to its version, from its change log;
        None when the log no longer holds them all (or ``since`` is in the future)."""
        live = self.rooms.get(room_id)
        return live.log.since(since, live.room.version) if live is not None else None

    # -- server-side operations (sync.api) ---------------------------------

    async def server_update_player(
        self, room_id: str, player_id: str, patch: dict, *, by: Author | None = None,
    ) -> int:
        live = await self._server_live(room_id)
        change = live.room.update_player(player_id, patch, now=self._now(), server=True)
        return self._emit(room_id, live, change, by or SERVER) if change else live.room.version

    async def server_update_entity(
        self, room_id: str, entity_id: str, patch: dict, *, by: Author | None = None,
    ) -> int:
        live = await self._server_live(room_id)
        change = live.room.update_entity(entity_id, patch, player_id=None)
        return self._emit(room_id, live, change, by or SERVER) if change else live.room.version

    async def reset(
        self, room_id: str, state: dict | None = None, *, by: Author | None = None,
    ) -> int:
        live = await self._server_live(room_id)
        change = live.room.reset(state)
        if change is None:
            return live.room.version
        return self._emit(room_id, live, change, (by or SERVER).doing(HistoryKind.RESET))

    async def restore(self, room_id: str, state: dict, *, by: Author | None = None) -> int:
        live = await self._server_live(room_id)
        change = live.room.restore(state)
        if change is None:
            return live.room.version
        return self._emit(room_id, live, change, (by or SERVER).doing(HistoryKind.RESTORE))

    async def kick(self, room_id: str, player_id: str, *, by: Author | None = None) -> None:
        await self._server_live(room_id)
        await self.leave(room_id, player_id, LeaveReason.KICKED, by=by)

    async def close(self, room_id: str, *, by: Author | None = None) -> None:
        """Every player leaves with reason ``closed``; members then get ROOM_CLOSED."""
        live = self.rooms.get(room_id)
        if live is not None:
            for player_id in list(live.room.players):
                await self.leave(room_id, player_id, LeaveReason.CLOSED, by=by)
        self.persistence.room_closed(room_id)  # may read the final state: before the room goes
        gone = self.rooms.pop(room_id, None)
        if gone is not None and gone.runner is not None:
            gone.runner.stop()
        self.closed.add(room_id)
        fanout = self.hub.get(room_id)
        if fanout is not None:
            fanout.close()

    def fanout(self, room_id: str) -> RoomFanout:
        """This process's fan-out for a loaded room (created on demand)."""
        live = self._live(room_id)
        fanout = self.hub.room(
            room_id, live.state, lambda: self.epoch(room_id), room_type=live.room.room_type)
        fanout.docs_source = live.docs.ids
        return fanout

    async def snapshot(self, room_id: str) -> tuple[int, dict[str, Any]] | None:
        """(version, state) of a live room, or None if it is not loaded here."""
        return self.peek(room_id)

    def connected_players(self, room_id: str) -> dict[str, bool]:
        live = self.rooms.get(room_id)
        if live is None:
            return {}
        return {pid: s.connection is not None for pid, s in live.sessions.items()}

    # -- internals -------------------------------------------------------

    def _emit(self, room_id: str, live: LiveRoom, change: Change, author: Author) -> int:
        live.last_change = now = time.time()
        live.log.append(change)
        if not self.sealed:
            fanout = self.hub.rooms.get(room_id)  # Hub.publish, inlined
            if fanout is not None:
                fanout.publish(change)
        persistence = self.persistence
        persistence.room_changed(room_id)
        if persistence.history:
            persistence.change_made(room_id, change, author, int(now * 1000))
        return change.version

    @staticmethod
    def _now() -> float:
        return time.monotonic()


def _epoch_of(state: dict[str, Any] | None) -> str:
    """The epoch of a room loaded from a snapshot's state (§14): the snapshot's own
    when a clean stop wrote it as the room's last state, else a new one (the process
    may have sent versions past the snapshot that are lost now)."""
    saved = (state or {}).get(EPOCH_KEY)
    if type(saved) is dict and saved.get("clean") is True and type(saved.get("id")) is str:
        return saved["id"]
    return new_epoch()
