"""Migration 0005 on a database that holds history rows from before it: every row
becomes a record of a chunk, in order, and only the logged-in users' rows stay as
the per-user index."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from rooms import history

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("rooms", "0004_roomchange_write_indexes")]
AFTER = [("rooms", "0005_history_chunks")]


def test_history_rows_become_chunks_and_user_rows_stay() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    user = old.get_model("auth", "User").objects.create(username="old-alice", password="!")
    room = old.get_model("rooms", "Room").objects.create(room_id="mig-1")
    RoomChange = old.get_model("rooms", "RoomChange")
    for version in range(1, 1203):  # more than two chunks' worth
        RoomChange.objects.create(
            room=room, version=version, base_version=version - 1, kind="update",
            player_id="p-1", user=user if version % 2 else None,
            username="old-alice" if version % 2 else None, source="player",
            patch={"players": {"p-1": {"x": version}}}, timestamp=1_700_000_000_000 + version)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    chunks = new.get_model("rooms", "HistoryChunk").objects.filter(room_id=room.pk)
    assert sorted(chunks.values_list("count", flat=True)) == [202, 500, 500]
    records = list(history.records(room.pk))
    assert [r.version for r in records] == list(range(1, 1203))
    assert records[0].user_id == user.pk and records[1].user_id is None
    assert records[1201].patch == {"players": {"p-1": {"x": 1202}}}
    assert history.floor_of(room.pk) == 0
    kept = new.get_model("rooms", "RoomChange").objects.filter(room_id=room.pk)
    assert kept.count() == 601 and not kept.filter(user__isnull=True).exists()

    executor = MigrationExecutor(connection)  # and back: the rows again
    executor.migrate(BEFORE)
    back = executor.loader.project_state(BEFORE).apps
    assert back.get_model("rooms", "RoomChange").objects.filter(room_id=room.pk).count() == 1202
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
