"""What a room change is, once applied: the unit of fan-out and persistence, and
who made it (``Author``, for the room's history; it never travels in a frame)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from .frozen import fast_init


class ChangeKind(StrEnum):
    DELTA = "DELTA_UPDATE"
    JOINED = "PLAYER_JOINED"
    LEFT = "PLAYER_LEFT"


class LeaveReason(StrEnum):
    LEFT = "left"
    TIMEOUT = "timeout"
    KICKED = "kicked"
    CLOSED = "closed"


@fast_init
@dataclass(frozen=True, slots=True)
class Change:
    """One applied change: ``patch`` turns the room at ``base_version`` into ``version``.

    DELTA changes may be composed into one DELTA_UPDATE; JOINED and LEFT are
    always sent alone (§5), with ``payload`` as their message payload.
    """

    kind: ChangeKind
    base_version: int
    version: int
    patch: dict[str, Any]
    payload: dict[str, Any] | None = None

    @property
    def player_id(self) -> str | None:
        return self.payload.get("playerId") if self.payload else None


# -- who made a change (§15: the room's history) -------------------------------


class Source(StrEnum):
    """Where a change came from."""

    PLAYER = "player"  # a member's message (STATE_UPDATE, JOIN_ROOM, LEAVE_ROOM)
    SERVER = "server"  # the room's code, a grace period running out
    ADMIN = "admin"  # an administrator (the admin site, rooms.services)
    API = "api"  # a site's own code through sync.api, the REST API


class HistoryKind(StrEnum):
    """What a history record calls a change (PROTOCOL.md §15)."""

    JOIN = "join"
    LEAVE = "leave"
    UPDATE = "update"
    ENTITY = "entity"
    SERVER = "server"
    RESET = "reset"
    RESTORE = "restore"
    CONFIG = "config"


@dataclass(frozen=True, slots=True)
class Author:
    """Who made a change, passed by the store's entry points next to the change
    (never part of the fan-out). ``action`` names a change whose patch does not say
    what it was (a reset, a restore); ``player_id`` is the player a socket plays
    (one Author per join, not per message); ``wire`` is its compact form for a log entry."""

    source: Source
    user_id: int | str | None = None
    username: str | None = None
    action: HistoryKind | None = None
    player_id: str | None = None
    wire: bytes = field(default=b"", init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "wire", orjson.dumps(
            [self.source.value, self.user_id, self.username,
             self.action.value if self.action else None, self.player_id]))

    @classmethod
    def player(
        cls, user_id: int | str | None = None, username: str | None = None,
        player_id: str | None = None,
    ) -> Author:
        if user_id is not None and type(user_id) is not int:
            user_id = str(user_id)  # a UUID key: its string form, as in the state
        return cls(Source.PLAYER, user_id, username if user_id is not None else None,
                   player_id=player_id)

    def doing(self, action: HistoryKind) -> Author:
        """The same author making a change of kind ``action``."""
        return Author(self.source, self.user_id, self.username, action, self.player_id)

    @classmethod
    def from_wire(cls, raw: bytes | str | None) -> Author:
        """The author of a log entry (``SERVER`` when the entry names none). A room has
        few authors (one per joined socket), so each distinct entry is parsed once."""
        if not raw:
            return SERVER
        known = _FROM_WIRE.get(raw)
        if known is not None:
            return known
        try:
            source, user_id, username, action, player_id = orjson.loads(raw)
            author = cls(Source(source), user_id, username,
                         HistoryKind(action) if action else None, player_id)
        except (ValueError, TypeError):
            return SERVER
        if len(_FROM_WIRE) >= _FROM_WIRE_MAX:
            _FROM_WIRE.clear()
        _FROM_WIRE[raw] = author
        return author


#: parsed log-entry authors (``Author.from_wire``), emptied when it reaches its bound
_FROM_WIRE: dict[bytes | str, Author] = {}
_FROM_WIRE_MAX = 10_000

SERVER = Author(Source.SERVER)
API = Author(Source.API)
ANONYMOUS_PLAYER = Author(Source.PLAYER)


def history_kind(change: Change, author: Author) -> HistoryKind:
    """The record kind of ``change`` made by ``author``."""
    return record_kind(change.kind, "entities" in change.patch, author)


def record_kind(kind: str, entities: bool, author: Author) -> HistoryKind:
    """The record kind of a change of ``kind`` (a ``ChangeKind`` or its value) whose
    patch touches ``entities`` or not, made by ``author``."""
    if author.action is not None:
        return author.action
    if kind == ChangeKind.JOINED:
        return HistoryKind.JOIN
    if kind == ChangeKind.LEFT:
        return HistoryKind.LEAVE
    if author.source is Source.PLAYER:
        return HistoryKind.ENTITY if entities else HistoryKind.UPDATE
    return HistoryKind.SERVER
