"""Reads about rooms for the REST API and the admin: who may see what, and live numbers.

Access rules come from the engine (``sync.directory.may_join``), applied to
the room's row, so the REST API, the admin and the socket agree. Live
numbers (players, version, state) come from the room store through
``sync.api``; a room the store does not hold falls back to its latest
snapshot. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery

from sync import api as live_api
from sync.conf import kasagi_settings
from sync.consumer import identity_of
from sync.directory import Identity, may_join

from .directory import room_config
from .models import Room, RoomSnapshot, Visibility

EMPTY_STATE: dict[str, Any] = {"players": {}, "entities": {}}


@dataclass(frozen=True, slots=True)
class RoomLive:
    """A room's live numbers; ``loaded`` False: read from its latest snapshot."""

    player_count: int
    version: int
    loaded: bool


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """A room as the REST API shows it (PROTOCOL.md §10)."""

    room_id: str
    name: str
    room_type: str
    visibility: str
    max_players: int
    player_count: int
    version: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RoomStateView:
    """A room's state to show: the live one, or ``loaded`` False: its latest snapshot's."""

    room_id: str
    version: int
    state: dict[str, Any]
    #: playerId → socket connected (False: in its grace period); empty when not loaded.
    connected: dict[str, bool]
    loaded: bool


# -- access -------------------------------------------------------------------


def user_identity(user: Any) -> Identity:
    """The engine's view of a Django user (the same one the socket uses)."""
    return identity_of({"user": user})


def rooms_visible_to(user: Any) -> QuerySet[Room]:
    """Open rooms this user may see: public ones to anyone, ``login`` ones to users,
    private ones to their owner and members, all to staff."""
    rooms = Room.objects.filter(closed_at__isnull=True).select_related("owner")
    if getattr(user, "is_staff", False) and user.is_authenticated:
        return rooms
    if not user.is_authenticated:
        return rooms.filter(visibility=Visibility.PUBLIC)
    own = Q(owner=user) | Q(pk__in=Room.objects.filter(members=user).values("pk"))
    return rooms.filter(Q(visibility__in=[Visibility.PUBLIC, Visibility.LOGIN]) | own)


def room_get_visible(*, user: Any, room_id: str) -> Room | None:
    return rooms_visible_to(user).filter(room_id=room_id).first()


def user_may_join(*, user: Any, room: Room) -> bool:
    """§7's join rule (``KASAGI_ALLOW_ANONYMOUS`` included), as the socket applies it."""
    allow_anonymous = kasagi_settings().allow_anonymous
    return may_join(room_config(room), user_identity(user), allow_anonymous=allow_anonymous)


def user_may_close(*, user: Any, room: Room) -> bool:
    """The owner or staff."""
    if not user.is_authenticated:
        return False
    return bool(user.is_staff) or (room.owner_id is not None and room.owner_id == user.pk)


# -- live numbers -------------------------------------------------------------


def rooms_live(rooms: Iterable[Room]) -> dict[str, RoomLive]:
    """Player count and version of each room: live when the store holds it, else from
    its latest snapshot, else zero. One call to the store and one query in all."""
    rooms = list(rooms)
    live = live_api.room_states([room.room_id for room in rooms]) if rooms else {}
    found = {
        room_id: RoomLive(state.player_count, state.version, loaded=True)
        for room_id, state in live.items()
    }
    missing = [room.pk for room in rooms if room.room_id not in found]
    if missing:
        latest = RoomSnapshot.objects.filter(room=OuterRef("pk")).order_by("-version")
        rows = Room.objects.filter(pk__in=missing).annotate(
            snapshot_version=Subquery(latest.values("version")[:1]),
            snapshot_players=Subquery(latest.values("state__players")[:1]),
        ).values_list("room_id", "snapshot_version", "snapshot_players")
        for room_id, version, players in rows:
            count = len(players) if isinstance(players, dict) else 0
            found[room_id] = RoomLive(count, version or 0, loaded=False)
    return found


def room_infos(rooms: Sequence[Room]) -> list[RoomInfo]:
    """Rooms with their live numbers, in the order given."""
    live = rooms_live(rooms)
    default_max = kasagi_settings().max_players
    return [
        RoomInfo(
            room_id=room.room_id,
            name=room.name or room.room_id,
            room_type=room.room_type,
            visibility=room.visibility,
            max_players=room.max_players or default_max,
            player_count=live[room.room_id].player_count,
            version=live[room.room_id].version,
            created_at=room.created_at,
        )
        for room in rooms
    ]


def room_info(room: Room) -> RoomInfo:
    return room_infos([room])[0]


def room_state_or_snapshot(room: Room) -> RoomStateView:
    """The live state of a room; its latest snapshot when the store does not hold it
    (``sync.api.room_state`` is the live state alone, None when not loaded)."""
    live = live_api.room_state(room.room_id)
    if live is not None:
        return RoomStateView(room.room_id, live.version, live.state, live.connected, loaded=True)
    snapshot = room_latest_snapshot(room)
    if snapshot is None:
        return RoomStateView(room.room_id, 0, EMPTY_STATE, {}, loaded=False)
    state = {"players": {}, "entities": {}, **(snapshot.state or {})}
    state.pop("epoch", None)  # §14 bookkeeping of the snapshot (sync.core.changelog), not state
    return RoomStateView(room.room_id, snapshot.version, state, {}, loaded=False)


def room_latest_snapshot(room: Room) -> RoomSnapshot | None:
    return RoomSnapshot.objects.filter(room=room).order_by("-version").first()
