"""Write-behind persistence: room snapshots, session tokens and the rooms' change
history (§15) reach the database in the background, never on the path of a message
(docs/persistence.md).

Two halves, one per side of a thread boundary:

- :class:`DatabasePersistence` lives on the event loop. The store calls its hooks
  (``room_changed``, ``session_*``...); they only mark a room dirty or queue a
  small record, and return at once (``change_made``: one change and its author,
  appended to a list). At most every ``KASAGI_SNAPSHOT_INTERVAL`` it reads the
  dirty rooms' ``(version, state)`` from the store, on the loop: cheap and
  consistent, because the core never mutates a stored object in place, so the
  state it hands out is a frozen view. The changes recorded so far go with
  those snapshots, so a batch never holds a snapshot ahead of its history.
- :class:`BackgroundWriter` is one thread that owns every write. Its queue is
  bounded by coalescing: one pending snapshot per room (the newest), one
  pending record per session token (the fields merged); history records, which
  cannot coalesce, are capped (``MAX_PENDING_CHANGES``, the oldest go first). It
  writes history with ``bulk_create(ignore_conflicts=True)`` on the unique
  (room, version), so a record written twice (a retry, a Redis lease that moved)
  stays one, and prunes each room to ``KASAGI_HISTORY_KEPT`` in the same batch
  (``rooms.history``). A failed write is logged and retried with backoff; the
  rooms never wait for it.

A clean stop (SIGTERM/SIGINT to daphne) takes a last snapshot of every dirty
room on the loop and waits for the writer to drain (Twisted's before-shutdown
trigger; ``atexit`` under other servers). A crash loses at most one interval.
Only the SHA-256 of a session token is ever written.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

import orjson
from django.contrib.auth import get_user_model
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    close_old_connections,
    connections,
    router,
    transaction,
)
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from sync.conf import KasagiSettings
from sync.core.changes import Author, Change, ChangeKind, HistoryKind, Source, record_kind
from sync.metrics import METRICS

from . import history
from .documents import DocKey, DocumentReader, DocumentWrite, no_document, take_documents
from .documents import write_documents as _write_documents
from .models import EndReason, HistoryChunk, PlayerSession, Room, RoomChange, RoomSnapshot

logger = logging.getLogger(__name__)

#: Pending session records kept while the database is away; past it the oldest go.
MAX_PENDING_SESSIONS = 50_000
#: Pending history records kept while the database is away; past it the oldest go.
MAX_PENDING_CHANGES = 200_000
#: history rows built or inserted between two pauses of the writer, and the pause:
#: building and binding rows holds the GIL, and a thread that holds it for tens of
#: milliseconds at a stretch makes the event loop wait on every socket write it
#: makes meanwhile (it gives the GIL up at each one); short stretches keep the
#: loop's latency (see docs/performance.md, history)
HISTORY_CHUNK_ROWS = 200
HISTORY_PAUSE = 0.002
#: Room pks the writer keeps (room id → pk); past it the cache starts again.
MAX_CACHED_ROOMS = 10_000
#: How long a clean stop waits for the last writes.
SHUTDOWN_TIMEOUT = 10.0
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0

#: room id → (version, state to store, revision) or None; the revision changes when
#: the room's server-only data changes without a new version (sync.store ``persisted``)
StateReader = Callable[[str], "tuple[int, dict[str, Any], int] | None"]


# -- what travels from the loop to the writer thread --------------------------


@dataclass(slots=True)
class SnapshotWrite:
    room_id: str
    version: int
    state: dict[str, Any]
    taken_at: datetime


@dataclass(slots=True)
class SessionWrite:
    """Everything pending for one token: its creation and the latest field values."""

    token_hash: str
    issued: tuple[str, str, Any] | None = None  # (room_id, player_id, user_id)
    fields: dict[str, Any] = field(default_factory=dict)

    def merge(self, newer: SessionWrite) -> None:
        if self.issued is None:
            self.issued = newer.issued
        self.fields.update(newer.fields)


class ChangeWrite(NamedTuple):
    """One change for the history (§15), turned into a record by the writer. The loop
    queues the same fields as a plain tuple (:data:`ChangeRecord`), the change packed
    (:func:`pack_change`); the writer reads them by position, so either will do."""

    room_id: str
    change: Change | PackedChange
    author: Author
    at_ms: int


#: a change as the history queue holds it: kind (``ChangeKind`` value), base version,
#: version, player id, the patch as JSON, whether the patch touches entities
PackedChange = tuple[str, int, int, str | None, bytes, bool]

#: a :class:`ChangeWrite`'s fields, as ``change_made`` queues them
ChangeRecord = tuple[str, PackedChange, Author, int]


def pack_change(change: Change | PackedChange) -> PackedChange:
    """``change`` as plain values, its patch serialized. Why: the queue holds a second's
    changes (10,000 in a busy world room) until the writer takes them; as ``Change``
    objects and patch dicts they survived young collections by the tens of thousands
    and made every collection of the cyclic GC longer (25-40 ms pauses, a p99 tail),
    where a tuple of strings, ints and bytes is untracked by the GC at its first pass.
    The writer needs the patch only as the JSON it stores."""
    if isinstance(change, tuple):
        return change
    patch = change.patch
    return (change.kind.value, change.base_version, change.version, change.player_id,
            orjson.dumps(patch), "entities" in patch)


class Rewind(NamedTuple):
    """A room's timeline starts again at ``version`` (§14: a new epoch after Redis
    lost changes this process had seen). The records and snapshots above that
    version belong to the lost timeline: the new one reuses their versions, and
    ``ON CONFLICT DO NOTHING`` would keep the old ones. Queued among the changes, so
    the writer applies it after the records read before it and before the ones
    read after."""

    room_id: str
    version: int


@dataclass(slots=True)
class Batch:
    snapshots: dict[str, SnapshotWrite] = field(default_factory=dict)
    sessions: dict[str, SessionWrite] = field(default_factory=dict)
    closed: dict[str, datetime] = field(default_factory=dict)
    #: (§16) one pending write per document: its newest whole state
    documents: dict[DocKey, DocumentWrite] = field(default_factory=dict)
    changes: list[ChangeRecord | Rewind] = field(default_factory=list)

    def __len__(self) -> int:
        pending = len(self.documents) + len(self.snapshots)
        return pending + len(self.sessions) + len(self.closed) + len(self.changes)

    def add_session(self, write: SessionWrite) -> None:
        pending = self.sessions.get(write.token_hash)
        if pending is None:
            self.sessions[write.token_hash] = write
        else:
            pending.merge(write)

    def absorb(self, newer: Batch) -> None:
        """Fold a newer batch into this one (newest snapshot wins, session fields merge)."""
        self.snapshots.update(newer.snapshots)
        for write in newer.sessions.values():
            self.add_session(write)
        self.closed.update(newer.closed)
        self.documents.update(newer.documents)
        self.changes.extend(newer.changes)


# -- the database side ----------------------------------------------------------


def write_batch(
    batch: Batch, *, kept: int, players_written: dict[str, frozenset[str]] | None = None,
    history_kept: int = 10_000, floors: dict[int, int] | None = None,
    checkpoints: history.Checkpoints | None = None, tops: dict[int, int] | None = None,
    pk_cache: dict[str, int] | None = None,
) -> None:
    """Write one batch in the calling thread and transaction. Idempotent: safe to retry.

    ``players_written`` (room → player ids of the last snapshot written) limits
    the search for sessions to end to the players that vanished since; ``floors``
    (room pk → first kept history version, the writer's cache) saves a query a room,
    and ``tops`` (room pk → the newest version it stored) the check for repeats;
    ``checkpoints`` (the writer's) lets retention move a floor without a replay;
    ``pk_cache`` (room id → pk, the writer's) saves the query for the rooms it holds
    (the caller forgets a room's entry when its row may have gone: ``BackgroundWriter``).
    """
    now = timezone.now()
    wanted = set(batch.snapshots) | set(batch.closed)
    wanted.update(room_id for room_id, _ in batch.documents)
    wanted.update(w.issued[0] for w in batch.sessions.values() if w.issued)
    wanted.update(map(itemgetter(0), batch.changes))  # every record's room id
    pks = _room_pks(wanted, {} if pk_cache is None else pk_cache)

    # Sessions first: a token is on disk no later than the snapshot holding its player.
    created = []
    for write in batch.sessions.values():
        if write.issued is None:
            PlayerSession.objects.filter(token_hash=write.token_hash).update(**write.fields)
            continue
        room_id, player_id, user_id = write.issued
        if room_id not in pks:
            logger.warning("no row for room %s; session of %s not stored", room_id, player_id)
            continue
        created.append(PlayerSession(
            token_hash=write.token_hash, room_id=pks[room_id], player_id=player_id,
            user_id=user_id, **write.fields,
        ))
    if created:
        PlayerSession.objects.bulk_create(
            created, update_conflicts=True, unique_fields=["token_hash"],
            update_fields=["last_seen_at", "disconnected_at", "ended_at", "end_reason"],
        )

    if checkpoints is None:
        checkpoints = history.Checkpoints(kept=history_kept)
    if floors is None:
        floors = {}
    if tops is None:
        tops = {}
    _rewind(batch.changes, pks, floors=floors, checkpoints=checkpoints, tops=tops)
    snapshots = [s for s in batch.snapshots.values() if s.room_id in pks]
    if snapshots:
        RoomSnapshot.objects.bulk_create(
            [RoomSnapshot(room_id=pks[s.room_id], version=s.version, state=s.state)
             for s in snapshots],
            update_conflicts=True, unique_fields=["room", "version"], update_fields=["state"],
        )
        room_pks = [pks[s.room_id] for s in snapshots]
        Room.objects.filter(pk__in=room_pks).update(last_activity_at=now)
    if batch.changes:
        for snapshot in snapshots:
            checkpoints.add(pks[snapshot.room_id], snapshot.version, snapshot.state)
        _write_history(batch.changes, pks, kept=history_kept, floors=floors,
                       checkpoints=checkpoints, tops=tops)
    for room_id in batch.closed:
        if room_id in pks:
            checkpoints.forget(pks[room_id])
    if snapshots:
        _prune(room_pks, kept=kept)
        for snapshot in snapshots:
            _end_vanished_sessions(
                pks[snapshot.room_id], snapshot, now=now,
                before=(players_written or {}).get(snapshot.room_id),
                reason=(  # TextChoices members are str (no django-stubs)
                    EndReason.CLOSED if snapshot.room_id in batch.closed  # type: ignore[arg-type]
                    else EndReason.TIMEOUT
                ),
            )

    _write_documents(batch.documents.values(), pks)
    for room_id, closed_at in batch.closed.items():
        Room.objects.filter(room_id=room_id, closed_at__isnull=True).update(closed_at=closed_at)


def _room_pks(wanted: set[str], cache: dict[str, int]) -> dict[str, int]:
    """The pks of the ``wanted`` rooms that have a row, looking up only those ``cache``
    lacks (a room without a row is looked up again next time: it may get one)."""
    missing = wanted.difference(cache)
    if missing:
        if len(cache) >= MAX_CACHED_ROOMS:
            cache.clear()  # rooms that went idle without a close: start again
        cache.update(Room.objects.filter(room_id__in=missing).values_list("room_id", "pk"))
    return {room_id: cache[room_id] for room_id in wanted if room_id in cache}


def _prune(room_pks: list[int], *, kept: int) -> None:
    """Keep the newest ``kept`` snapshots of each room, and its history's floor (§15)."""
    ranked = RoomSnapshot.objects.filter(room_id__in=room_pks).order_by().annotate(
        rank=Window(RowNumber(), partition_by=[F("room_id")], order_by=F("version").desc())
    )
    stale = list(ranked.filter(rank__gt=max(kept, 1)).values_list("pk", "room_id", "version"))
    if not stale:
        return
    floors = history.floors_of({room_pk for _, room_pk, _ in stale})
    doomed = [pk for pk, room_pk, version in stale if version != floors.get(room_pk)]
    if doomed:
        RoomSnapshot.objects.filter(pk__in=doomed).delete()


#: RoomChange's columns (the per-user index), in the order ``_write_history`` builds rows
CHANGE_COLUMNS = ("room_id", "version", "base_version", "kind", "player_id", "user_id",
                  "username", "source", "patch", "timestamp")
#: HistoryChunk's columns, likewise
CHUNK_COLUMNS = ("room_id", "base_version", "version", "count", "records")


def _insert_new(
    model: Any, columns: tuple[str, ...], rows: list[tuple[Any, ...]], *,
    json_column: str | None = None,
) -> None:
    """Insert ``rows`` of ``model``, skipping any whose (room, version) is stored.

    On PostgreSQL and SQLite this is what ``bulk_create(ignore_conflicts=True)``
    means, sent as plain ``executemany`` of ``INSERT … ON CONFLICT DO NOTHING``
    with ``json_column`` serialized by orjson: the ORM's per-field preparation
    cost ~37 µs a row, and on PostgreSQL Django 5.2 sends a bulk insert as
    ``UNNEST`` of arrays, whose text literal psycopg builds by escaping every
    quote in Python (a regex), which cost more than the rows chunks replaced.
    Other databases get ``bulk_create``. Paced like the writer's other work.
    """
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        model.objects.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows],
            ignore_conflicts=True, batch_size=500)
        return
    quote = connection.ops.quote_name
    values = ", ".join("%s::jsonb" if column == json_column and vendor == "postgresql" else "%s"
                       for column in columns)
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} "
        f"({', '.join(quote(column) for column in columns)}) VALUES ({values}) "
        f"ON CONFLICT ({quote('room_id')}, {quote('version')}) DO NOTHING"
    )
    at = columns.index(json_column) if json_column is not None else None
    with connection.cursor() as cursor:
        for start in range(0, len(rows), HISTORY_CHUNK_ROWS):
            if start:
                time.sleep(HISTORY_PAUSE)
            part = rows[start:start + HISTORY_CHUNK_ROWS]
            if at is not None:
                part = [(*row[:at], orjson.dumps(row[at]).decode(), *row[at + 1:])
                        for row in part]
            cursor.executemany(sql, part)


def _rewind(
    changes: list[ChangeRecord | Rewind], pks: dict[str, int], *, floors: dict[int, int],
    checkpoints: history.Checkpoints, tops: dict[int, int],
) -> None:
    """Delete what each rewound room stored above the version its timeline starts
    again at (the lowest, when a batch holds several): records, snapshots, and the
    floor and checkpoints that assumed them."""
    if Rewind not in map(type, changes):
        return  # the common case, seen without a Python loop over every change
    lowest: dict[int, int] = {}
    for write in changes:
        if isinstance(write, Rewind) and write.room_id in pks:
            room_pk = pks[write.room_id]
            lowest[room_pk] = min(lowest.get(room_pk, write.version), write.version)
    for room_pk, version in lowest.items():
        history.drop_above(room_pk, version)
        RoomSnapshot.objects.filter(room_id=room_pk, version__gt=version).delete()
        floors.pop(room_pk, None)
        tops.pop(room_pk, None)
        checkpoints.forget(room_pk)


def _stored_versions(room_pk: int, low: int, high: int) -> set[int]:
    """The versions in [``low``, ``high``] the room's history already holds (a batch
    handed over again: a retry after a commit that did report, a Redis lease that
    moved). One indexed query that finds nothing, normally."""
    stored: set[int] = set()
    for text in history.chunks_of(room_pk, after=low - 1, upto=high).values_list(
        "records", flat=True,
    ):
        stored.update(r.version for r in history.decode_records(text) if low <= r.version)
    return stored


def _write_history(
    changes: list[ChangeRecord | Rewind], pks: dict[str, int], *, kept: int, floors: dict[int, int],
    checkpoints: history.Checkpoints, tops: dict[int, int] | None = None,
) -> None:
    """Insert the records, one chunk per room (a repeat of a stored one is skipped),
    and the rows of the changes made by logged-in users; then keep each room's
    history answerable and bounded: its floor has a known state, and at most
    ``kept`` plus a margin records stay (``rooms.history``), the floor moving to a
    checkpoint when one fits. ``floors`` and ``tops`` are updated."""
    if tops is None:
        tops = {}
    #: room id → (its records by version, its first kept version)
    runs: dict[str, tuple[dict[int, tuple[Any, ...]], int]] = {}
    authors: dict[int, tuple[Any, ...]] = {}  # id(author) → _author_fields
    delta = ChangeKind.DELTA.value
    update, entity = HistoryKind.UPDATE.value, HistoryKind.ENTITY.value
    for start in range(0, len(changes), HISTORY_CHUNK_ROWS):
        if start:
            time.sleep(HISTORY_PAUSE)
        for write in changes[start:start + HISTORY_CHUNK_ROWS]:
            room = runs.get(write[0])
            if room is None:
                room_pk = pks.get(write[0])
                if room_pk is None:
                    continue
                room = runs[write[0]] = ({}, floors.get(room_pk, 0))
            run, low = room
            if isinstance(write, Rewind):  # the records read before it above it are lost
                for version in [v for v in run if v > write.version]:
                    del run[version]
                continue
            _, change, author, at_ms = write
            kind_of, base_version, version, change_player, patch, entities = pack_change(change)
            if version < low:
                continue  # older than the kept history (a lease holder's backfill)
            if version in run:
                continue  # a repeat
            fields = authors.get(id(author))  # a room has few authors: one per socket
            if fields is None:
                fields = authors[id(author)] = _author_fields(author)
            plain, player_id, user_id, username, source = fields
            if plain and kind_of == delta:  # record_kind's common case
                kind = entity if entities else update
            else:
                kind = record_kind(kind_of, entities, author).value
            run[version] = (
                version, base_version, kind, change_player or player_id,
                user_id, username, source, orjson.Fragment(patch), at_ms,
            )
    users = {fields[2] for fields in authors.values() if fields[2] is not None}
    known = set(
        get_user_model().objects.filter(pk__in=users).values_list("pk", flat=True)
    ) if users else set()
    deleted = users - known  # since the change: its record names no user (as SET_NULL does)
    newest: dict[int, int] = {}
    chunks: list[tuple[Any, ...]] = []
    by_user: list[tuple[Any, ...]] = []
    size = HistoryChunk.CHUNK_RECORDS
    for room_id, (run, _) in runs.items():
        versions = sorted(run)
        if not versions:
            continue
        pk = pks[room_id]
        top = tops.get(pk)
        if top is None or versions[0] <= top:  # a batch handed over again, or unknown
            stored = _stored_versions(pk, versions[0], versions[-1])
            ordered = [run[v] for v in versions if v not in stored]
        elif list(run) == versions:  # already in order: as they normally come
            ordered = list(run.values())
        else:
            ordered = [run[v] for v in versions]
        if not ordered:
            continue
        if deleted:
            ordered = [(*r[:4], None, *r[5:]) if r[4] in deleted else r for r in ordered]
        newest[pk] = ordered[-1][0]
        tops[pk] = max(top or 0, ordered[-1][0])
        for start in range(0, len(ordered), size):
            part = ordered[start:start + size]
            chunks.append((pk, part[0][1], part[-1][0], len(part),
                           history.encode_records(part)))
        # RoomChange's columns are the record's, after the room
        by_user.extend((pk, *r) for r in ordered if r[4] is not None)
    if not chunks:
        return
    _insert_new(HistoryChunk, CHUNK_COLUMNS, chunks)
    _insert_new(RoomChange, CHANGE_COLUMNS, by_user, json_column="patch")
    margin = history.prune_margin(kept)
    to_checkpoint: dict[int, tuple[int, dict[str, Any]]] = {}  # floors moved to a checkpoint
    for room_pk, last in newest.items():
        first = floors.get(room_pk)
        if first is None:
            floor = history.floor_of(room_pk)
            if floor is None:
                continue
            if not history.has_base(room_pk, floor):
                # The history starts with no known state before it (history turned on for
                # an old room, records lost): it starts again at the next snapshot.
                moved = history.advance_floor(room_pk, floor, newest=last)
                if moved is None:
                    continue
                floor = moved
            first = floors[room_pk] = floor + 1
        if last - first + 1 > kept + margin:
            held = checkpoints.best(room_pk, above=first - 1, at_most=last - kept)
            # A checkpoint is a batch's snapshot, so the newest one at or below the
            # target is at most one batch further back: the room then keeps up to a
            # batch's changes more than ``kept`` (a world room: 10,000 a second), which
            # costs nothing, where replaying to the exact target read and applied
            # every record again. Only one further back than that bound is replayed.
            if held is not None and last - held[0] > 2 * (kept + margin):
                held = None
            if held is not None:
                to_checkpoint[room_pk] = held  # moved with the others', below
                continue
            moved = history.advance_floor(room_pk, last - kept, newest=last)
            if moved is not None:
                floors[room_pk] = moved + 1
                checkpoints.drop_below(room_pk, moved)
    if to_checkpoint:
        history.advance_floors(to_checkpoint)
        for room_pk, (moved, _) in to_checkpoint.items():
            floors[room_pk] = moved + 1
            checkpoints.drop_below(room_pk, moved)


def _author_fields(author: Author) -> tuple[bool, str | None, Any, str | None, str]:
    """What a record takes from its author, read once a batch per author: whether
    ``record_kind`` needs only the change (a player's plain change), the player id,
    the user id, the username and the source, enum values as plain strings (orjson
    writes a ``StrEnum`` member through its ``value``, a Python property)."""
    plain = author.action is None and author.source is Source.PLAYER
    return (plain, author.player_id, author.user_id, author.username, author.source.value)


def players_of(snapshot: SnapshotWrite) -> frozenset[str]:
    return frozenset(snapshot.state.get("players") or ())


def _end_vanished_sessions(
    room_pk: int, snapshot: SnapshotWrite, *, now: datetime, reason: str,
    before: frozenset[str] | None,
) -> None:
    """End sessions whose player is no longer in the room.

    Players restored from a snapshot after a restart have no token in memory
    until they resume; when their grace period runs out the store cannot name
    their session, so the snapshot that no longer holds them closes it. Only
    sessions older than the snapshot are considered, and once a room has a
    snapshot written by this process only the players gone since then.
    """
    players = players_of(snapshot)
    gone = before - players if before is not None else None
    if gone is not None and not gone:
        return  # nobody left since: no query (building one costs more than the check)
    live = PlayerSession.objects.filter(
        room_id=room_pk, ended_at__isnull=True, created_at__lt=snapshot.taken_at
    )
    if gone is None:
        live = live.exclude(player_id__in=list(players))
    else:
        live = live.filter(player_id__in=list(gone))
    live.update(ended_at=now, end_reason=reason)


def keep_connections() -> None:
    """Keep this thread's open database connections between batches.

    ``CONN_MAX_AGE = 0`` (settings) closes a connection at the end of each request,
    which is right for request threads under ASGI; applied to the writer, one long-lived
    thread writing many batches a second, it reconnected for every batch (a new SQLite
    handle and its PRAGMAs, a new PostgreSQL backend). ``close_old_connections`` still
    closes a connection that an error left unusable, so an outage is recovered from."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            connection.close_at = None


class BackgroundWriter:
    """The one thread that writes; callers only hand it records."""

    def __init__(self, *, kept: int, history_kept: int = 10_000) -> None:
        self.kept = kept
        self.history_kept = history_kept
        #: room pk → its first kept history version (the writer's own cache)
        self._floors: dict[int, int] = {}
        #: room pk → the newest history version this writer stored (``write_batch``)
        self._tops: dict[int, int] = {}
        self._checkpoints = history.Checkpoints(kept=history_kept)
        self._cond = threading.Condition()
        self._pending = Batch()
        self._inflight = 0
        self._stopping = False
        self._deadline = float("inf")
        self._wakeup = threading.Event()
        self._failures = 0
        self._players_written: dict[str, frozenset[str]] = {}
        #: room id → its row's pk (``write_batch``): rooms are rarely created, so one
        #: query a batch for rows that did not change was the cost of every batch
        self._room_pks: dict[str, int] = {}
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="kasagi-persistence", daemon=True)
        self._thread.start()

    # -- called from the loop (or anywhere): never blocks on the database ----

    def submit(
        self, *, snapshots: Iterable[SnapshotWrite] = (), sessions: Iterable[SessionWrite] = (),
        documents: Iterable[DocumentWrite] = (),
        closed: dict[str, datetime] | None = None, changes: Iterable[ChangeRecord | Rewind] = (),
    ) -> None:
        with self._cond:
            pending = self._pending
            pending.changes.extend(changes)  # before the snapshots: never behind them
            for snapshot in snapshots:
                pending.snapshots[snapshot.room_id] = snapshot
            for write in sessions:
                pending.add_session(write)
            if closed:
                pending.closed.update(closed)
            for document in documents:
                pending.documents[(document.room_id, document.doc_id)] = document
            self._bound(pending)
            self._cond.notify()

    def queue_length(self) -> int:
        return len(self._pending) + self._inflight

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> bool:
        """Write what is pending (retrying until ``timeout``), then end the thread."""
        with self._cond:
            if not self._stopping:
                self._stopping = True
                self._deadline = time.monotonic() + timeout
            self._cond.notify()
        self._wakeup.set()
        self._thread.join(timeout + 1.0)
        return not self._thread.is_alive() and self.queue_length() == 0

    # -- the thread -----------------------------------------------------------

    def _bound(self, pending: Batch) -> None:
        while len(pending.sessions) > MAX_PENDING_SESSIONS:
            oldest = next(iter(pending.sessions))
            del pending.sessions[oldest]
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning(
                    "persistence queue full: %d session records dropped so far", self.dropped
                )
        excess = len(pending.changes) - MAX_PENDING_CHANGES
        if excess > 0:
            rewinds = [w for w in pending.changes[:excess] if isinstance(w, Rewind)]
            pending.changes[:excess] = rewinds  # a rewind must still reach the database
            self.dropped += excess
            logger.warning("persistence queue full: %d history records dropped", excess)

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            connections.close_all()  # this thread's connection: nobody else would close it

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    return  # stopping, and all written
                batch, self._pending = self._pending, Batch()
                self._inflight = len(batch)
            written = self._write(batch)
            with self._cond:
                self._inflight = 0
                if not written:
                    batch.absorb(self._pending)
                    self._pending = batch
                    self._bound(batch)
            if not written and not self._back_off(len(batch)):
                return

    def _write(self, batch: Batch) -> bool:
        started = time.perf_counter()
        close_old_connections()
        try:
            try:
                self._write_one(batch)
            except (IntegrityError, DataError):
                # One bad record must not hold back the others: write each alone.
                self._write_each(batch)
        except DatabaseError as exc:
            self._failures += 1
            if self._failures == 1:
                logger.error("persistence write failed; will retry: %s", exc, exc_info=True)
            else:
                logger.warning("persistence write failed again (%d): %s", self._failures, exc)
            return False
        except Exception:
            # A bug, not an outage: retrying would loop on it. Drop the batch, loudly.
            logger.exception("persistence write crashed; %d records dropped", len(batch))
            return True
        finally:
            keep_connections()
            close_old_connections()  # a connection left unusable by an error goes now
        if self._failures:
            logger.warning("persistence writes recovered after %d failures", self._failures)
            self._failures = 0
        METRICS.persistence_write_seconds.observe(time.perf_counter() - started)
        return True

    def _write_each(self, batch: Batch) -> None:
        # the changes first: a rewind among them deletes the snapshots above its
        # version, which must not take the new timeline's snapshot of this batch
        singles = [Batch(changes=batch.changes)] if batch.changes else []
        singles += [Batch(sessions={k: v}) for k, v in batch.sessions.items()]
        singles += [Batch(snapshots={k: v}) for k, v in batch.snapshots.items()]
        singles += [Batch(closed={k: v}) for k, v in batch.closed.items()]
        singles += [Batch(documents={k: v}) for k, v in batch.documents.items()]
        for single in singles:
            try:
                self._write_one(single)
            except (IntegrityError, DataError) as exc:
                logger.error("persistence record refused by the database, dropped: %s", exc)

    def _write_one(self, batch: Batch) -> None:
        try:
            self._write_once(batch)
        except (IntegrityError, DataError):
            if not self._room_pks:
                raise
            # A room's row deleted (and maybe made again) since its pk was cached fails
            # the foreign keys: look every room up again, as the first write did.
            self._room_pks.clear()
            self._write_once(batch)

    def _write_once(self, batch: Batch) -> None:
        floors = dict(self._floors)  # kept only if the transaction commits
        tops = dict(self._tops)
        with transaction.atomic():
            write_batch(batch, kept=self.kept, players_written=self._players_written,
                        history_kept=self.history_kept, floors=floors, tops=tops,
                        checkpoints=self._checkpoints, pk_cache=self._room_pks)
        self._floors = floors
        self._tops = tops
        for room_id, snapshot in batch.snapshots.items():
            self._players_written[room_id] = players_of(snapshot)
        for room_id in batch.closed:
            self._players_written.pop(room_id, None)
            self._room_pks.pop(room_id, None)  # a closed room's row is the one deleted

    def _back_off(self, waiting: int) -> bool:
        """Sleep before a retry; False when a stop's deadline has passed (give up)."""
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(self._failures - 1, 16))
        if self._stopping:
            left = self._deadline - time.monotonic()
            if left <= 0:
                logger.error("persistence stopped with %d records not written", waiting)
                return False
            time.sleep(min(delay, left))
        else:
            self._wakeup.wait(delay)
        return True


# -- the loop side ----------------------------------------------------------------


class DatabasePersistence:
    """:class:`sync.store.base.Persistence` writing behind, through a BackgroundWriter."""

    def __init__(
        self, *, interval: float, read_state: StateReader, writer: BackgroundWriter,
        history: bool = False,
    ):
        self.interval = interval
        #: §15: record every change for the room's history (KASAGI_HISTORY)
        self.history = history
        self._changes: list[ChangeRecord | Rewind] = []
        self.read_state = read_state
        self.writer = writer
        self._dirty: set[str] = set()
        self._taken: dict[str, tuple[int, int]] = {}
        #: (§16) documents with merged updates not yet taken, and the revision last taken
        self._dirty_docs: set[DocKey] = set()
        self._docs_taken: dict[DocKey, int] = {}
        self.read_document: DocumentReader = no_document
        self._connected: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        #: the store's ``seal_epochs`` (§14): rooms whose last snapshot a clean stop takes
        self.seal_epochs: Callable[[], Iterable[str]] = tuple

    # -- hooks the store calls (return at once, never raise) --------------------

    def room_changed(self, room_id: str) -> None:
        timer_loop = self._timer_loop
        if (
            room_id in self._dirty
            and self._timer is not None
            and timer_loop is not None
            and not timer_loop.is_closed()
        ):
            return  # already queued for the armed write: the common case, once per change
        self._dirty.add(room_id)
        if self._stopped:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on the loop: the next tick or the stop flush takes it
        if self._timer is None or self._timer_loop is not loop:
            self._timer_loop = loop
            self._timer = loop.call_later(self.interval, self._tick)

    def change_made(self, room_id: str, change: Change, author: Author, at_ms: int) -> None:
        if self.history:
            self._changes.append((room_id, pack_change(change), author, at_ms))

    def history_rewound(self, room_id: str, version: int) -> None:
        if self.history:
            self._changes.append(Rewind(room_id, version))

    def document_changed(self, room_id: str, doc_id: str) -> None:
        """(§16) a document merged an update: its state goes with the room's next write."""
        self._dirty_docs.add((room_id, doc_id))
        self.room_changed(room_id)  # arms the timer; an unchanged room writes no snapshot

    def document_cleared(self, room_id: str, doc_id: str) -> None:
        """(§16) staff cleared a document: its row goes."""
        self._dirty_docs.discard((room_id, doc_id))
        self._docs_taken.pop((room_id, doc_id), None)
        self.writer.submit(documents=[DocumentWrite(room_id, doc_id, None, timezone.now())])

    def room_closed(self, room_id: str) -> None:
        try:
            self._dirty.discard(room_id)
            snapshots = self._take([room_id])
            self._taken.pop(room_id, None)
            changes, self._changes = self._changes, []
            self.writer.submit(snapshots=snapshots, closed={room_id: timezone.now()},
                               changes=changes)
        except Exception:
            logger.exception("could not queue the close of room %s", room_id)

    def session_issued(self, token_hash: str, room_id: str, player_id: str, user_id: Any) -> None:
        now = timezone.now()
        self._connected.add(token_hash)
        self._submit_session(SessionWrite(
            token_hash, (room_id, player_id, user_id), {"last_seen_at": now}
        ))

    def session_seen(self, token_hash: str, *, connected: bool) -> None:
        now = timezone.now()
        if connected:
            self._connected.add(token_hash)
        else:
            self._connected.discard(token_hash)
        fields = {"last_seen_at": now, "disconnected_at": None if connected else now}
        self._submit_session(SessionWrite(token_hash, fields=fields))

    def session_ended(self, token_hash: str, reason: str) -> None:
        self._connected.discard(token_hash)
        self._submit_session(SessionWrite(
            token_hash, fields={"ended_at": timezone.now(), "end_reason": reason}
        ))

    # -- snapshots ----------------------------------------------------------------

    def queue_length(self) -> int:
        return len(self._dirty) + self.writer.queue_length()

    def _tick(self) -> None:
        self._timer = None
        self.collect()

    def collect(self) -> None:
        """Hand the dirty rooms' current state to the writer (on the loop, or with it stopped)."""
        try:
            dirty_docs, self._dirty_docs = self._dirty_docs, set()
            documents = take_documents(dirty_docs, self.read_document, self._docs_taken)
            if documents:
                self.writer.submit(documents=documents)
            dirty, self._dirty = self._dirty, set()
            changes, self._changes = self._changes, []
            snapshots = self._take(dirty)
            if snapshots or changes:
                self.writer.submit(snapshots=snapshots, changes=changes)
        except Exception:
            logger.exception("could not take room snapshots")

    def _take(self, room_ids: Iterable[str]) -> list[SnapshotWrite]:
        now = timezone.now()
        snapshots = []
        for room_id in room_ids:
            taken = self.read_state(room_id)
            if taken is None or self._taken.get(room_id) == (taken[0], taken[2]):
                continue
            self._taken[room_id] = (taken[0], taken[2])
            snapshots.append(SnapshotWrite(room_id, taken[0], taken[1], now))
        return snapshots

    def _submit_session(self, write: SessionWrite) -> None:
        try:
            self.writer.submit(sessions=[write])
        except Exception:
            logger.exception("could not queue a session record")

    # -- a clean stop ---------------------------------------------------------------

    def begin_stop(self) -> None:
        """Last snapshots and disconnect marks (on the loop, or with the loop stopped)."""
        if self._stopped:
            return
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            self._dirty.update(self.seal_epochs())
        except Exception:
            logger.exception("could not seal the rooms' epochs")
        self.collect()
        now = timezone.now()
        sessions = [
            SessionWrite(token_hash, fields={"disconnected_at": now})
            for token_hash in self._connected
        ]
        self._connected.clear()
        self.writer.submit(sessions=sessions)

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> bool:
        """Flush everything and end the writer, blocking (atexit, tests)."""
        if not self._stopped:
            logger.info("flushing persistence")
        self.begin_stop()
        return self.writer.stop(timeout)

    def close(self, timeout: float = 2.0) -> None:
        """The runtime is replaced (tests): flush briefly, and no flush at exit."""
        atexit.unregister(self.stop)
        self.stop(timeout)

    def stop_from_twisted(self) -> Any:
        """Twisted's before-shutdown trigger: snapshot on the loop, wait off it."""
        from twisted.internet.threads import deferToThread

        logger.info("server stopping: flushing persistence (reactor shutdown)")
        self.begin_stop()
        return deferToThread(self.writer.stop, SHUTDOWN_TIMEOUT)


def flush_on_shutdown(persistence: DatabasePersistence) -> None:
    """Make a clean stop of the server process write everything first."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is not None and getattr(reactor, "running", False):
        # daphne: runs while the reactor (and the asyncio loop under it) still turns.
        reactor.callFromThread(
            reactor.addSystemEventTrigger, "before", "shutdown", persistence.stop_from_twisted
        )
    # Other servers, or a stop the trigger missed: at exit the loop no longer runs,
    # so the state can be read from here. A no-op after the trigger ran.
    atexit.register(persistence.stop)


def database_persistence(conf: KasagiSettings, store: Any) -> DatabasePersistence:
    """The persistence factory ``rooms`` installs into ``sync.runtime``."""
    read_state: StateReader = store.persisted
    persistence = DatabasePersistence(
        interval=conf.snapshot_interval, read_state=read_state,
        writer=BackgroundWriter(kept=conf.snapshots_kept, history_kept=conf.history_kept),
        history=conf.history,
    )
    METRICS.persistence_queue = persistence.queue_length
    persistence.seal_epochs = getattr(store, "seal_epochs", tuple)
    persistence.read_document = getattr(store, "persisted_document", no_document)
    flush_on_shutdown(persistence)
    return persistence
