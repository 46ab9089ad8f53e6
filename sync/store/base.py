"""What every store offers the consumer and the server-side API, and what it calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar

from ..core.changes import LeaveReason
from ..core.envelope import StateUpdate
from ..core.errors import ErrorCode, ProtocolError
from ..directory import Identity, RoomConfig


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


class NullPersistence:
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


class RoomStore(Protocol):
    async def activate(self, room_id: str, *, who: Identity, create: bool) -> RoomConfig: ...
    async def join(
        self, room_id: str, fields: dict[str, Any], *, who: Identity,
        session_token: str | None, connection: object,
    ) -> JoinResult: ...
    async def leave(self, room_id: str, player_id: str, reason: LeaveReason) -> None: ...
    async def update(self, room_id: str, player_id: str, message: StateUpdate) -> None: ...
    async def disconnect(self, room_id: str, player_id: str, connection: object) -> None: ...


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
