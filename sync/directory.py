"""Where room configurations come from, and who may join a room (§7).

The engine asks a :class:`RoomDirectory` once per room activation, never per
message. The default keeps configurations in memory; the ``rooms`` Django app
installs one backed by its models (with snapshots and persisted session
tokens) when persistence is on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is on a socket, read once at connect (no ORM object on the message path)."""

    user_id: int | str | None = None
    username: str | None = None
    is_staff: bool = False

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    def player_fields(self) -> dict[str, Any]:
        """Server-owned fields an authenticated player carries in its state."""
        if self.user_id is None:
            return {}
        # A UUID (or other non-integer) primary key travels as its string form, so
        # the state holds only JSON values and reads the same on every codec/process.
        user_id = self.user_id if type(self.user_id) is int else str(self.user_id)
        return {"userId": user_id, "username": self.username}


ANONYMOUS = Identity()


@dataclass(frozen=True, slots=True)
class RoomConfig:
    room_id: str
    name: str = ""
    room_type: str = "freeform"
    visibility: str = "public"
    max_players: int | None = None
    owner_id: int | str | None = None
    member_ids: frozenset[int | str] = field(default_factory=frozenset)
    closed: bool = False


@dataclass(frozen=True, slots=True)
class RoomSnapshot:
    version: int
    state: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredSession:
    room_id: str
    player_id: str


def may_join(config: RoomConfig, who: Identity, *, allow_anonymous: bool) -> bool:
    """The room access rule of §7 (spectators follow it too)."""
    if who.is_staff:
        return True
    if config.visibility == "public":
        return who.is_authenticated or allow_anonymous
    if config.visibility == "login":
        return who.is_authenticated
    return who.is_authenticated and (
        who.user_id == config.owner_id or who.user_id in config.member_ids
    )


class RoomDirectory(Protocol):
    async def get(self, room_id: str) -> RoomConfig | None: ...

    async def create(self, room_id: str, *, owner: Identity) -> RoomConfig: ...

    async def latest_snapshot(self, room_id: str) -> RoomSnapshot | None: ...

    async def find_session(self, token_hash: str) -> StoredSession | None: ...


class MemoryDirectory:
    """Configurations kept in this process; nothing survives a restart."""

    def __init__(self) -> None:
        self.configs: dict[str, RoomConfig] = {}

    async def get(self, room_id: str) -> RoomConfig | None:
        return self.configs.get(room_id)

    async def create(self, room_id: str, *, owner: Identity) -> RoomConfig:
        config = self.configs.get(room_id)
        if config is None:
            config = RoomConfig(room_id, name=room_id, owner_id=owner.user_id)
            self.configs[room_id] = config
        return config

    async def latest_snapshot(self, room_id: str) -> RoomSnapshot | None:
        return None

    async def find_session(self, token_hash: str) -> StoredSession | None:
        return None
