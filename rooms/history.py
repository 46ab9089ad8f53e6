"""A room's change history (PROTOCOL.md §15) as the database holds it: the state at a
version, and the retention that keeps that answerable.

Records hold the merge patch each change made; they are stored in runs, one
``HistoryChunk`` row per room per writer batch (see its docstring for why), and
read back here as :class:`Record`. The state right after version N is the
nearest snapshot at or below N plus the patches of the records after it, in
order, with no gap. For every kept version to be answerable, the room keeps a
snapshot at its *floor*: the ``base_version`` of its oldest record (none is
needed at 0, the empty room). When retention drops the oldest records, the
writer first writes the state at the new floor (``advance_floor``), so the
range stays answerable. Replaying the records up to the new floor cost as much
CPU as inserting them, so the writer keeps a few of the snapshot states it
wrote (:class:`Checkpoints`) and moves the floor to one of those instead when it
can. Both the background writer (``rooms.persistence``, its thread) and the
request side (``rooms.selectors``) read through here; nothing here runs on the
event loop.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from django.contrib.auth import get_user_model
from django.db.models import Min, Q, QuerySet

from sync.core.merge_patch import apply_patch
from sync.core.views import public_state_of, without_private

from .models import HistoryChunk, Room, RoomChange, RoomSnapshot


class Record(NamedTuple):
    """One change of the history, in the order a chunk's JSON array holds its fields."""

    version: int
    base_version: int
    kind: str
    player_id: str | None
    user_id: Any
    username: str | None
    source: str
    patch: dict[str, Any]
    timestamp: int


def encode_records(records: Iterable[tuple[Any, ...]]) -> str:
    """A chunk's ``records`` column (each record a JSON array in :class:`Record` order).
    orjson writes plain tuples as arrays itself; a :class:`Record` (a named tuple,
    which it does not take) goes through ``default``."""
    return orjson.dumps(list(records), default=tuple).decode()


def decode_records(text: str) -> list[Record]:
    return [Record(*fields) for fields in orjson.loads(text)]


def chunks_of(room_pk: int, *, after: int = 0, upto: int | None = None) -> QuerySet[HistoryChunk]:
    """The chunks that may hold records in (``after``, ``upto``], by their first version."""
    chunks = HistoryChunk.objects.filter(room_id=room_pk, version__gt=after)
    if upto is not None:
        chunks = chunks.filter(base_version__lt=upto)
    return chunks.order_by("base_version", "version")


def records(room_pk: int, *, after: int = 0, upto: int | None = None) -> Iterator[Record]:
    """The room's records with ``after`` < version <= ``upto``, ascending, each version once.

    Chunks normally hold disjoint runs; two writers (a Redis lease that moved) may
    have stored overlapping ones. A record in a chunk is above the chunk's base, so
    once a chunk with base B is read, every record at or below B is final.
    """
    pending: list[tuple[int, Record]] = []
    seen: set[int] = set()
    rows = chunks_of(room_pk, after=after, upto=upto).values_list("base_version", "records")
    for base, text in rows.iterator(chunk_size=20):
        while pending and pending[0][0] <= base:
            yield heapq.heappop(pending)[1]
        for record in decode_records(text):
            version = record.version
            if version <= after or (upto is not None and version > upto) or version in seen:
                continue
            seen.add(version)
            heapq.heappush(pending, (version, record))
    while pending:
        yield heapq.heappop(pending)[1]


def record_count(room_pk: int) -> int:
    """How many records the room keeps (chunks may overlap after a lease moved: an
    upper bound then)."""
    return sum(HistoryChunk.objects.filter(room_id=room_pk).values_list("count", flat=True))


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
    return (HistoryChunk.objects.filter(room_id=room_pk).order_by("base_version")
            .values_list("base_version", flat=True).first())


def floors_of(room_pks: Iterable[int]) -> dict[int, int]:
    """``floor_of`` of several rooms in one query (the rooms without a record left out)."""
    rows = (HistoryChunk.objects.filter(room_id__in=list(room_pks)).order_by()
            .values_list("room_id").annotate(floor=Min("base_version")))
    return dict(rows)


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
    for record in records(room_pk, after=at, upto=version):
        if record.base_version != at:
            return None  # a gap: a change the history does not hold
        state = apply_patch(state, record.patch)
        at = record.version
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
        advance_floors({room_pk: known})
        return known[0]
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
    drop_through(room_pk, target)
    return target


#: rooms a query of ``advance_floors`` covers (SQLite parses a run of ORs as a tree
#: of that depth, and stops at 1,000)
ROOMS_A_QUERY = 100


def advance_floors(known: dict[int, tuple[int, dict[str, Any]]]) -> None:
    """``advance_floor(room_pk, …, known=known[room_pk])`` of several rooms: the same
    rows, in four queries for up to ``ROOMS_A_QUERY`` rooms instead of four a room (in
    workload C every room moves its floor in the same batch)."""
    rooms = list(known.items())
    for start in range(0, len(rooms), ROOMS_A_QUERY):
        part = rooms[start:start + ROOMS_A_QUERY]
        RoomSnapshot.objects.bulk_create(
            [RoomSnapshot(room_id=room_pk, version=version, state=state_of_snapshot(whole))
             for room_pk, (version, whole) in part],
            ignore_conflicts=True)  # one the room still keeps is the same state
        _drop_through({room_pk: version for room_pk, (version, _) in part})


def drop_through(room_pk: int, version: int) -> None:
    """Delete the room's records up to ``version``: whole chunks below it, the records
    of the chunk across it (which then starts at ``version``), and their user rows."""
    _drop_through({room_pk: version})


def _drop_through(floors: dict[int, int]) -> None:
    """``drop_through`` of each room pk → version, one query for all of them."""
    if not floors:
        return  # an empty Q() would match every row
    below, across = Q(), Q()
    for room_pk, version in floors.items():
        below |= Q(room_id=room_pk, version__lte=version)
        across |= Q(room_id=room_pk, base_version__lt=version, version__gt=version)
    HistoryChunk.objects.filter(below).delete()
    # any order: the model's ("room", …) joins the room row to sort by it
    for chunk in HistoryChunk.objects.filter(across).order_by():
        version = floors[chunk.room_id]
        _keep(chunk, [r for r in decode_records(chunk.records) if r.version > version])
    RoomChange.objects.filter(below).delete()


def drop_above(room_pk: int, version: int) -> None:
    """Delete the room's records above ``version`` (a new timeline starts there, §14):
    whole chunks above it, the records past it of the chunk across it, their user rows."""
    HistoryChunk.objects.filter(room_id=room_pk, base_version__gte=version).delete()
    for chunk in HistoryChunk.objects.filter(
        room_id=room_pk, base_version__lt=version, version__gt=version,
    ).order_by():
        _keep(chunk, [r for r in decode_records(chunk.records) if r.version <= version])
    RoomChange.objects.filter(room_id=room_pk, version__gt=version).delete()


def _keep(chunk: HistoryChunk, kept: list[Record]) -> None:
    """Rewrite ``chunk`` with only ``kept`` of its records (deleted when none are left)."""
    if not kept:
        chunk.delete()
        return
    HistoryChunk.objects.filter(pk=chunk.pk).update(
        base_version=kept[0].base_version, version=kept[-1].version, count=len(kept),
        records=encode_records(kept))


# -- reads for the REST API and the admin -------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryPage:
    records: list[dict[str, Any]]
    #: the ``after`` of the next page, None when this is the last one
    next_after: int | None


def record_of(record: Record, *, private: bool) -> dict[str, Any]:
    """A record as the REST API shows it (§15); private fields only when ``private``."""
    return {
        "version": record.version,
        "baseVersion": record.base_version,
        "kind": record.kind,
        "playerId": record.player_id,
        "userId": record.user_id,
        "username": record.username,
        "source": record.source,
        "patch": record.patch if private else without_private(record.patch, None),
        "timestamp": record.timestamp,
    }


def with_known_users(found: list[Record]) -> list[Record]:
    """``found`` with the ``userId`` of a user deleted since set to null (as the user
    rows' SET_NULL does); the username stays, the record still says who it was."""
    ids = {r.user_id for r in found if r.user_id is not None}
    if not ids:
        return found
    known = set(get_user_model().objects.filter(pk__in=ids).values_list("pk", flat=True))
    return [r if r.user_id is None or r.user_id in known else r._replace(user_id=None)
            for r in found]


def history_page(*, room: Room, after: int, limit: int, private: bool) -> HistoryPage:
    """The room's records after version ``after``, oldest first, at most ``limit``."""
    found: list[Record] = []
    for record in records(room.pk, after=after):
        found.append(record)
        if len(found) > limit:
            break
    more = len(found) > limit
    found = with_known_users(found[:limit])
    return HistoryPage(
        [record_of(record, private=private) for record in found],
        found[-1].version if more and found else None,
    )


def recent_records(room_pk: int, limit: int) -> list[Record]:
    """The room's newest ``limit`` records, newest first (the admin's room page)."""
    found: dict[int, Record] = {}
    for text in (HistoryChunk.objects.filter(room_id=room_pk).order_by("-version")
                 .values_list("records", flat=True).iterator(chunk_size=4)):
        for record in decode_records(text):
            found.setdefault(record.version, record)
        if len(found) >= limit:
            break
    newest = sorted(found.values(), key=lambda r: r.version, reverse=True)[:limit]
    return with_known_users(newest)


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
