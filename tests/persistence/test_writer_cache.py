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
