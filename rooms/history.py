"""A room's change history (PROTOCOL.md §15) as the database holds it: the state at a
version, and the retention that keeps that answerable.

Records (``RoomChange``) hold the merge patch each change made. The state right
after version N is the nearest snapshot at or below N plus the patches of the
records after it, in order, with no gap. For every kept version to be
answerable, the room keeps a snapshot at its *floor*: the ``base_version`` of
its oldest record (none is needed at 0, the empty room). When retention drops
the oldest records, the writer first writes the state at the new floor
(``advance_floor``), so the range stays answerable. Replaying the records up to
the new floor cost as much CPU as inserting them, so the writer keeps a few of
the snapshot states it wrote (:class:`Checkpoints`) and moves the floor to one
of those instead when it can. Both the background writer (``rooms.persistence``,
its thread) and the request side (``rooms.selectors``) read through here;
nothing here runs on the event loop.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from sync.core.merge_patch import apply_patch
from sync.core.views import public_state_of, without_private

from .models import Room, RoomChange, RoomSnapshot


def prune_margin(kept: int) -> int:
    """Records a room may hold beyond ``KASAGI_HISTORY_KEPT`` before a prune, so that
    deletes (and the floor snapshot they need) come in batches, not once a change."""
    return max(100, kept // 10)


def empty_state() -> dict[str, Any]:
    return {"players": {}, "entities": {}}


def state_of_snapshot(state: dict[str, Any] | None) -> dict[str, Any]:
    """Only ``players`` and ``entities`` of a stored snapshot (not its server-only data
    nor its epoch bookkeeping)."""
    state = state or {}
    return {"players": dict(state.get("players") or {}),
            "entities": dict(state.get("entities") or {})}


def floor_of(room_pk: int) -> int | None:
    """The version the room's history starts from (its oldest record's base), or None
    when it has no record."""
    return (
        RoomChange.objects.filter(room_id=room_pk).order_by("version")
        .values_list("base_version", flat=True).first()
    )


def state_at(room_pk: int, version: int, *, floor: int | None = None) -> dict[str, Any] | None:
    """The room's state right after ``version``, from the history; None when the history
    cannot say (before its floor, a version not recorded yet, or a gap in the records)."""
    if floor is None:
        floor = floor_of(room_pk)
    if floor is None or version < floor:
        return None
    snapshot = (
        RoomSnapshot.objects.filter(room_id=room_pk, version__gte=floor, version__lte=version)
        .order_by("-version").values_list("version", "state").first()
    )
    if snapshot is not None:
        at, state = snapshot[0], state_of_snapshot(snapshot[1])
    elif floor == 0:
        at, state = 0, empty_state()
    else:
        return None
    records = (
        RoomChange.objects.filter(room_id=room_pk, version__gt=at, version__lte=version)
        .order_by("version").values_list("base_version", "version", "patch")
    )
    for base, record_version, patch in records.iterator(chunk_size=1000):
        if base != at:
            return None  # a gap: a change the history does not hold
        state = apply_patch(state, patch)
        at = record_version
    return state if at == version else None


def has_base(room_pk: int, floor: int) -> bool:
    """Whether the state at ``floor`` is known (a snapshot there, or the empty room)."""
    return floor == 0 or RoomSnapshot.objects.filter(room_id=room_pk, version=floor).exists()


class Checkpoints:
    """The states at some versions of each room, as the writer wrote them in snapshots
    (the writer thread's own): a floor can move to one of them without replaying the
    records before it. Kept at least ``step`` versions apart and only above the floor,
    so a room holds about ``(kept + margin) / step`` of them (shallow copies: the
    core shares the objects inside a state between versions); the rooms changed
    least recently are forgotten past ``max_rooms``, which only costs a replay."""

    def __init__(self, *, kept: int, max_rooms: int = 1000) -> None:
        self.step = max(1, prune_margin(kept) // 2)
        self.max_rooms = max_rooms
        self._rooms: OrderedDict[int, list[tuple[int, dict[str, Any]]]] = OrderedDict()

    def add(self, room_pk: int, version: int, state: dict[str, Any]) -> None:
        held = self._rooms.pop(room_pk, None) or []
        if not held or version >= held[-1][0] + self.step:
            held.append((version, state))
        elif version < held[-1][0]:
            held = [(version, state)]  # an older version: the room started again
        self._rooms[room_pk] = held
        while len(self._rooms) > self.max_rooms:
            self._rooms.popitem(last=False)

    def best(self, room_pk: int, *, above: int, at_most: int) -> tuple[int, dict[str, Any]] | None:
        """The newest held (version, state) with ``above < version <= at_most``."""
        for version, state in reversed(self._rooms.get(room_pk, ())):
            if version <= at_most:
                return (version, state) if version > above else None
        return None

    def drop_below(self, room_pk: int, floor: int) -> None:
        held = self._rooms.get(room_pk)
        if held:
            held[:] = [c for c in held if c[0] >= floor]

    def forget(self, room_pk: int) -> None:
        self._rooms.pop(room_pk, None)


def advance_floor(
    room_pk: int, target: int, *, newest: int, known: tuple[int, dict[str, Any]] | None = None,
) -> int | None:
    """Drop the records up to ``target`` (a version), writing the state there as the
    room's new floor snapshot first. ``known`` is a (version, state) the caller already
    holds at or below ``target``: the floor goes there, without replaying the records.
    When the history cannot compute the state (a gap), the floor goes to the first
    snapshot after ``target`` instead (at most ``newest``). Returns the new floor, or
    None when nothing could be dropped."""
    if known is not None:
        target, whole = known
        RoomSnapshot.objects.bulk_create(
            [RoomSnapshot(room_id=room_pk, version=target, state=state_of_snapshot(whole))],
            ignore_conflicts=True)  # one the room still keeps is the same state
        RoomChange.objects.filter(room_id=room_pk, version__lte=target).delete()
        return target
    state = state_at(room_pk, target)
    if state is None:
        later = (
            RoomSnapshot.objects.filter(room_id=room_pk, version__gte=target, version__lte=newest)
            .order_by("version").values_list("version", flat=True).first()
        )
        if later is None:
            return None
        target = later
    elif not RoomSnapshot.objects.filter(room_id=room_pk, version=target).exists():
        RoomSnapshot.objects.create(room_id=room_pk, version=target, state=state)
    RoomChange.objects.filter(room_id=room_pk, version__lte=target).delete()
    return target


# -- reads for the REST API and the admin -------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryPage:
    records: list[dict[str, Any]]
    #: the ``after`` of the next page, None when this is the last one
    next_after: int | None


def record_of(change: RoomChange, *, private: bool) -> dict[str, Any]:
    """A record as the REST API shows it (§15); private fields only when ``private``."""
    return {
        "version": change.version,
        "baseVersion": change.base_version,
        "kind": change.kind,
        "playerId": change.player_id,
        "userId": change.user_id,
        "username": change.username,
        "source": change.source,
        "patch": change.patch if private else without_private(change.patch, None),
        "timestamp": change.timestamp,
    }


def history_page(*, room: Room, after: int, limit: int, private: bool) -> HistoryPage:
    """The room's records after version ``after``, oldest first, at most ``limit``."""
    rows = list(
        RoomChange.objects.filter(room=room, version__gt=after).order_by("version")[:limit + 1]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return HistoryPage(
        [record_of(row, private=private) for row in rows],
        rows[-1].version if more and rows else None,
    )


def room_state_at(*, room: Room, version: int) -> dict[str, Any] | None:
    """The whole state right after ``version`` (private fields included: the caller
    decides who sees them), or None outside the kept history. The current version is
    always answerable (the live room, or its latest snapshot)."""
    from .selectors import room_state_or_snapshot  # selectors import the engine

    current = room_state_or_snapshot(room)
    if version == current.version:
        return state_of_snapshot(current.state)
    if version > current.version:
        return None
    return state_at(room.pk, version)


def shown_state(room: Room, state: dict[str, Any], *, private: bool) -> dict[str, Any]:
    """``state`` as a caller may see it: staff whole, everyone else without private
    fields (the view of a spectator, as ``/state/``)."""
    return state if private else public_state_of(room.room_type, state)


def user_changes(user: Any) -> QuerySet[RoomChange]:
    """Every kept change this user made, newest first (the admin's filter)."""
    return RoomChange.objects.filter(user=user).order_by("-timestamp")
