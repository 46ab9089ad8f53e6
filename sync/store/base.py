"""The room store interface (``RoomStore``), what a store calls (``Persistence``), and
the parts both stores share (``LoadedRooms``, ``SingleFlight``). Nothing here touches
Redis or the database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from ..core.changes import Author, Change, LeaveReason
from ..core.envelope import Message, StateUpdate
from ..core.errors import ErrorCode, ProtocolError
from ..core.limits import Limits
from ..core.room import Room
from ..directory import Identity, RoomConfig, RoomDirectory
from ..hub import Hub, RoomFanout


@dataclass(frozen=True, slots=True)
class JoinResult:
    player_id: str
    session_token: str
    resumed: bool


class Persistence(Protocol):
    """Write-behind hooks; every method returns at once and never raises."""

    def room_changed(self, room_id: str) -> None: ...
    def room_closed(self, room_id: str) -> None: ...
    def session_issued(
        self, token_hash: str, room_id: str, player_id: str, user_id: Any
    ) -> None: ...
    def session_seen(self, token_hash: str, *, connected: bool) -> None: ...
    def session_ended(self, token_hash: str, reason: str) -> None: ...

    #: §15: whether ``change_made`` records anything (KASAGI_HISTORY)
    history: bool

    def change_made(self, room_id: str, change: Change, author: Author, at_ms: int) -> None:
        """A change for the room's history, by ``author`` at ``at_ms`` (epoch ms). The
        store calls it once per change, in version order (on Redis: the process holding
        the room's snapshot lease; repeats are harmless, the writer skips them)."""
        ...

    def history_rewound(self, room_id: str, version: int) -> None:
        """The room's timeline starts again at ``version`` (a new epoch, §14): what
        the history holds above it was lost with the old one. Called by the process
        that records the room's changes, between the last change of the old timeline
        it recorded and the first of the new."""
        ...


class NullPersistence:
    history = False

    def change_made(self, room_id: str, change: Change, author: Author, at_ms: int) -> None:
        pass

    def history_rewound(self, room_id: str, version: int) -> None:
        pass

    def room_changed(self, room_id: str) -> None:
        pass

    def room_closed(self, room_id: str) -> None:
        pass

    def session_issued(self, token_hash: str, room_id: str, player_id: str, user_id: Any) -> None:
        pass

    def session_seen(self, token_hash: str, *, connected: bool) -> None:
        pass

    def session_ended(self, token_hash: str, reason: str) -> None:
        pass


class LoadedRoom(Protocol):
    """A room loaded in a store's process (``MemoryRoomStore``'s ``LiveRoom``, the Redis
    store's ``MirroredRoom``): what code outside the store may read of it."""

    @property
    def config(self) -> RoomConfig: ...
    @property
    def room(self) -> Room: ...
    def state(self) -> tuple[int, dict[str, Any]]: ...


class RoomStore(Protocol):
    """What a room store must implement: the one interface the consumer, ``sync.api``,
    ``rooms`` and the runtime use, whichever store is configured.

    A store is the authority on the rooms' state: it applies every change through
    the pure core (``sync.core``), hands each one to ``hub`` once in version order,
    and tells ``persistence``. ``MemoryRoomStore`` keeps rooms in this process,
    ``RedisRoomStore`` shares them through Redis; ``LoadedRooms`` holds what both
    implement the same way. Every method is called on the event loop; a method
    that returns without awaiting is a plain ``def`` and must never block.
    Errors are ``ProtocolError`` with the contract's codes (ROOM_NOT_FOUND,
    ROOM_CLOSED, NOT_IN_ROOM, ROOM_FULL, VERSION_CONFLICT, INTERNAL...).

    To add an operation: declare it here (with what it must do), implement it in
    both stores (or once in ``LoadedRooms``), and type its callers against this.
    """

    hub: Hub
    directory: RoomDirectory
    limits: Limits
    #: set by the runtime after construction (the persistence factory needs the store)
    persistence: Persistence
    #: True when ``update`` and ``message`` never suspend (they return at their first
    #: step): the consumer then runs them in the socket's data callback (sync.reader)
    inline_updates: bool

    @property
    def rooms(self) -> Mapping[str, LoadedRoom]:
        """The rooms loaded in this process, by id (metrics and tools read it)."""
        ...

    # -- the consumer: one socket's life in a room ---------------------------

    async def activate(self, room_id: str, *, who: Identity, create: bool) -> RoomConfig:
        """Load a room for use in this process (created on first use when ``create``);
        its configuration. Raises ROOM_NOT_FOUND / ROOM_CLOSED."""
        ...

    async def join(
        self, room_id: str, fields: dict[str, Any], *, who: Identity,
        session_token: str | None, connection: object,
    ) -> JoinResult:
        """Add a player with ``fields`` owned by ``connection``, or resume the player of
        ``session_token`` (unknown tokens join a new player). The room is activated."""
        ...

    async def leave(
        self, room_id: str, player_id: str, reason: LeaveReason, *, by: Author | None = None,
    ) -> None:
        """Remove a player (PLAYER_LEFT with ``reason``). Raises NOT_IN_ROOM. ``by``: the
        change's author for the history (every ``by`` below: None is the server)."""
        ...

    async def update(
        self, room_id: str, player_id: str, message: StateUpdate, *, by: Author | None = None,
    ) -> None:
        """Apply a player's STATE_UPDATE (its own object or an entity); ``by`` None: an
        anonymous player."""
        ...

    async def message(self, room_id: str, player_id: str, message: Message) -> None:
        """A player's MESSAGE: to the room's code if it handles the kind, else relayed."""
        ...

    async def disconnect(self, room_id: str, player_id: str, connection: object) -> None:
        """``connection`` closed without LEAVE_ROOM: if it still owns the player, the
        grace period starts (PLAYER_LEFT ``timeout`` when it ends unresumed)."""
        ...

    def fanout(self, room_id: str) -> RoomFanout:
        """This process's fan-out of a loaded room (created on demand)."""
        ...

    # -- server-side operations (sync.api, rooms.services) --------------------

    async def server_update_player(
        self, room_id: str, player_id: str, patch: dict[str, Any], *, by: Author | None = None,
    ) -> int:
        """Patch a player's state as the server (server-owned fields allowed); the
        room version after it. The room is loaded on demand, never created."""
        ...

    async def server_update_entity(
        self, room_id: str, entity_id: str, patch: dict[str, Any], *, by: Author | None = None,
    ) -> int:
        """Patch (or create; ``None`` deletes) an entity as the server; the version."""
        ...

    async def reset(
        self, room_id: str, state: dict[str, Any] | None = None, *, by: Author | None = None,
    ) -> int:
        """Players back to their join state, entities to ``state``'s; the version."""
        ...

    async def restore(self, room_id: str, state: dict[str, Any], *, by: Author | None = None
                      ) -> int:
        """§15: entities, and the objects of the players in both, back to ``state`` (the
        room at an earlier version) as one change (history kind ``restore``); players
        are never added or removed. The version after it (unchanged when equal)."""
        ...

    async def kick(self, room_id: str, player_id: str, *, by: Author | None = None) -> None:
        """Remove a player with reason ``kicked``."""
        ...

    async def close(self, room_id: str, *, by: Author | None = None) -> None:
        """Every player leaves (``closed``), members get ROOM_CLOSED, the room refuses
        every later activation."""
        ...

    async def reconfigure(self, room_id: str) -> None:
        """The room's configuration changed in the directory: re-read it where loaded."""
        ...

    async def send_event(
        self, room_id: str, kind: str, data: Any, to: frozenset[str] | None = None,
    ) -> None:
        """An EVENT from the server (``from`` null) to the room's members (or ``to``)."""
        ...

    # -- reads ------------------------------------------------------------------

    async def snapshot(self, room_id: str) -> tuple[int, dict[str, Any]] | None:
        """(version, state) of a room, or None if this store cannot read it now."""
        ...

    def connected_players(self, room_id: str) -> dict[str, bool]:
        """Player id → whether a socket holds it (False: in its grace period)."""
        ...

    def peek(self, room_id: str) -> tuple[int, dict[str, Any]] | None:
        """(version, state) of a room loaded here, without awaiting; else None."""
        ...

    def persisted(self, room_id: str) -> tuple[int, dict[str, Any], int] | None:
        """(version, state, revision) for the database snapshot, without awaiting."""
        ...

    def player_count(self, room_id: str) -> int:
        """Players in a room loaded here (0 if it is not loaded)."""
        ...

    async def stop(self) -> None:
        """A clean stop: end background work and close connections."""
        ...


@runtime_checkable
class ChangeHistory(Protocol):
    """What a store that keeps each room's recent changes adds (§14: a resuming client
    gets the changes it missed instead of a FULL_STATE). Optional: the consumer asks
    ``isinstance(store, ChangeHistory)``."""

    def epoch(self, room_id: str) -> str | None:
        """The room's epoch (changes when state may have been lost), None if unknown."""
        ...

    async def recent_changes(self, room_id: str, since: int) -> list[Change] | None:
        """The room's changes after ``since`` up to its version; None when not all kept."""
        ...


T = TypeVar("T")


class SingleFlight(Generic[T]):
    """One load per key at a time: concurrent callers await the same result.

    Two sockets joining a cold room at once must not load (and seed) it twice.
    """

    def __init__(self) -> None:
        self._pending: dict[str, asyncio.Future[T]] = {}

    async def run(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            result = await load()
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning
            raise
        finally:
            del self._pending[key]


class LoadedRooms:
    """The rooms loaded in this process: the lookups both stores share.

    A loaded room (``LiveRoom`` of either store) offers ``state()`` and ``room``.
    Subclasses fill ``rooms`` and ``closed`` and implement ``activate``.
    """

    rooms: dict[str, Any]
    closed: set[str]
    directory: Any

    async def activate(self, room_id: str, *, who: Identity, create: bool) -> RoomConfig:
        raise NotImplementedError

    async def _config_for(self, room_id: str, *, who: Identity, create: bool) -> RoomConfig:
        """The directory's configuration of a room being loaded (created on first
        use when ``create``); refuses unknown and closed rooms."""
        config = await self.directory.get(room_id)
        if config is None:
            if not create:
                raise ProtocolError(ErrorCode.ROOM_NOT_FOUND, f"room {room_id} does not exist")
            config = await self.directory.create(room_id, owner=who)
        if config.closed:
            self.closed.add(room_id)
            raise ProtocolError(ErrorCode.ROOM_CLOSED, "the room was closed")
        return config

    async def reconfigure(self, room_id: str) -> None:
        """The room's configuration changed in the directory (the admin, a signal):
        re-read it for a loaded room, so access rules and the player limit apply to
        the next JOIN_ROOM. Players already in stay; the room type of a live room
        does not change (it applies from its next load)."""
        await self._reload_config(room_id)

    async def _reload_config(self, room_id: str) -> None:
        if room_id not in self.rooms:
            return
        config = await self.directory.get(room_id)
        live = self.rooms.get(room_id)
        if config is None or live is None:
            return
        live.config = replace(config, room_type=live.config.room_type)
        live.room.max_players = config.max_players or live.room.limits.max_players

    def peek(self, room_id: str) -> tuple[int, dict[str, Any]] | None:
        """(version, state) without awaiting; the persistence writer reads it on the loop."""
        live = self.rooms.get(room_id)
        return live.state() if live else None

    def persisted(self, room_id: str) -> tuple[int, dict[str, Any], int] | None:
        """(version, state, revision) for the database snapshot, without awaiting: the
        state plus the room code's server-only data (``server``) where the store keeps
        it; the revision changes when that data changes without a new version."""
        taken = self.peek(room_id)
        return (taken[0], taken[1], 0) if taken is not None else None

    def player_count(self, room_id: str) -> int:
        live = self.rooms.get(room_id)
        return len(live.room.players) if live else 0

    async def stop(self) -> None:
        """Nothing runs in the background by default."""

    def _live(self, room_id: str) -> Any:
        live = self.rooms.get(room_id)
        if live is None:
            if room_id in self.closed:
                raise ProtocolError(ErrorCode.ROOM_CLOSED, "the room was closed")
            raise ProtocolError(ErrorCode.NOT_IN_ROOM, f"not in room {room_id}")
        return live

    async def _server_live(self, room_id: str) -> Any:
        """A room for a server-side change: loaded on demand, never created."""
        if room_id not in self.rooms:
            await self.activate(room_id, who=Identity(), create=False)
        return self.rooms[room_id]
