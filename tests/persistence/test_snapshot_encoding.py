"""A snapshot's state is stored as orjson's compact JSON (the writer's hot spot for big
rooms) and reads back exactly, an integer beyond 64 bits included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from rooms.models import Room, RoomSnapshot
from rooms.persistence import Batch, SnapshotWrite, write_batch

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stored_text(snapshot_pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT state FROM rooms_roomsnapshot WHERE id = %s", [snapshot_pk])
        (value,) = cursor.fetchone()
    return value if isinstance(value, str) else str(value)


def test_the_writer_stores_compact_json_that_reads_back_exactly() -> None:
    Room.objects.create(room_id="enc")
    state = {"players": {"p-1": {"x": 1, "t": 0.5, "name": "Ünï"}}, "entities": {}}
    write_batch(Batch(snapshots={"enc": SnapshotWrite("enc", 4, state, T0)}), kept=3)
    snapshot = RoomSnapshot.objects.get(room__room_id="enc")
    assert snapshot.state == state
    if connection.vendor == "sqlite":  # PostgreSQL's jsonb keeps its own text form
        assert stored_text(snapshot.pk) == (
            '{"players":{"p-1":{"x":1,"t":0.5,"name":"Ünï"}},"entities":{}}')


def test_an_integer_orjson_refuses_is_stored_by_the_standard_encoder() -> None:
    Room.objects.create(room_id="big")
    state = {"players": {}, "entities": {"e": {"n": 2**70}}}
    write_batch(Batch(snapshots={"big": SnapshotWrite("big", 1, state, T0)}), kept=3)
    assert RoomSnapshot.objects.get(room__room_id="big").state == state
