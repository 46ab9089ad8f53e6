"""The writer keeps the rooms' pks between batches (``BackgroundWriter``): a room whose
row went (and maybe came back with another pk) is looked up again, not written to the
pk it had, and a closed room is forgotten."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from rooms.models import Room, RoomSnapshot
from rooms.persistence import BackgroundWriter, Batch, SnapshotWrite

# real commits: a foreign key to a row deleted meanwhile fails at the commit
pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def snapshot(room_id: str, version: int) -> Batch:
    return Batch(snapshots={room_id: SnapshotWrite(
        room_id, version, {"players": {}, "entities": {"v": {"n": version}}}, T0)})


@pytest.fixture
def writer() -> Iterator[BackgroundWriter]:
    writer = BackgroundWriter(kept=5)
    yield writer
    writer.stop(timeout=1.0)


def test_a_room_whose_row_was_replaced_is_written_to_its_new_row(writer: BackgroundWriter):
    Room.objects.create(room_id="pk-1")
    writer._write_one(snapshot("pk-1", 1))
    Room.objects.filter(room_id="pk-1").delete()  # the admin deletes it...
    again = Room.objects.create(room_id="pk-1")  # ...and a join makes it again
    writer._write_one(snapshot("pk-1", 2))
    assert list(RoomSnapshot.objects.filter(room=again).values_list("version", flat=True)) == [2]


def test_a_closed_room_is_forgotten(writer: BackgroundWriter):
    Room.objects.create(room_id="pk-2")
    Room.objects.create(room_id="pk-3")
    writer._write_one(snapshot("pk-2", 1))
    writer._write_one(snapshot("pk-3", 1))
    assert set(writer._room_pks) == {"pk-2", "pk-3"}
    closing = snapshot("pk-2", 2)
    closing.closed["pk-2"] = T0
    writer._write_one(closing)
    assert set(writer._room_pks) == {"pk-3"}
    assert Room.objects.get(room_id="pk-2").closed_at == T0


def test_the_writer_keeps_one_connection_across_batches(writer: BackgroundWriter):
    """CONN_MAX_AGE = 0 is for request threads: the writer thread writes many batches a
    second and must not open a connection for each (it did: a new SQLite handle and its
    PRAGMAs, a new PostgreSQL backend, per batch)."""
    import threading
    import time

    from django.db import connection
    from django.db.backends.signals import connection_created

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("in-memory SQLite keeps its connection anyway (the PostgreSQL pass runs it)")
    Room.objects.create(room_id="conn-1")
    opened: list[int] = []

    def created(sender: object, connection: object, **kwargs: object) -> None:
        opened.append(threading.get_ident())

    connection_created.connect(created)
    try:
        for version in range(1, 6):
            writer.submit(snapshots=snapshot("conn-1", version).snapshots.values())
            deadline = time.monotonic() + 10
            while writer.queue_length():  # each its own batch: the last one written
                assert time.monotonic() < deadline, "the writer never wrote the batch"
                time.sleep(0.01)
    finally:
        connection_created.disconnect(created)
    assert RoomSnapshot.objects.filter(room__room_id="conn-1").order_by("-version")[0].version == 5
    assert len([t for t in opened if t == writer._thread.ident]) <= 1


def test_a_queued_change_holds_nothing_the_cyclic_gc_must_walk():
    """``change_made`` queues a second of changes for the writer (10,000 in a busy world
    room): packed, each is a tuple of strings, ints and bytes, which the GC stops
    tracking at its first pass; as ``Change`` objects and patch dicts they lengthened
    every collection (docs/performance.md, "World")."""
    import gc

    import orjson

    from rooms.persistence import pack_change
    from sync.core.changes import Change, ChangeKind

    patch = {"players": {"p-1": {"x": 1, "y": 2.5}}, "entities": {"e": None}}
    change = Change(ChangeKind.DELTA, 41, 42, patch)
    packed = pack_change(change)
    gc.collect()
    assert not gc.is_tracked(packed)
    assert packed == ("DELTA_UPDATE", 41, 42, None, orjson.dumps(patch), True)
    assert pack_change(packed) is packed  # the writer takes either form
