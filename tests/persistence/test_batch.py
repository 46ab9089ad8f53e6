"""What waits for the writer coalesces: one snapshot per room, one record per token."""

from __future__ import annotations

from datetime import UTC, datetime

from rooms.persistence import Batch, SessionWrite, SnapshotWrite

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)


def test_session_records_merge_into_one_per_token():
    batch = Batch()
    batch.add_session(SessionWrite("h1", ("r", "p-1", None), {"last_seen_at": T0}))
    batch.add_session(SessionWrite("h1", fields={"disconnected_at": T1, "last_seen_at": T1}))
    batch.add_session(SessionWrite("h1", fields={"ended_at": T1, "end_reason": "left"}))
    assert len(batch) == 1
    merged = batch.sessions["h1"]
    assert merged.issued == ("r", "p-1", None)
    assert merged.fields == {
        "last_seen_at": T1, "disconnected_at": T1, "ended_at": T1, "end_reason": "left",
    }


def test_a_failed_batch_takes_in_the_newer_one():
    failed = Batch(
        snapshots={"r": SnapshotWrite("r", 3, {"players": {}, "entities": {}}, T0)},
        sessions={"h1": SessionWrite("h1", ("r", "p-1", 7), {"last_seen_at": T0})},
    )
    newer = Batch(
        snapshots={"r": SnapshotWrite("r", 5, {"players": {}, "entities": {"e": {}}}, T1)},
        sessions={
            "h1": SessionWrite("h1", fields={"disconnected_at": T1}),
            "h2": SessionWrite("h2", ("r", "p-2", None)),
        },
        closed={"r": T1},
    )
    failed.absorb(newer)
    assert failed.snapshots["r"].version == 5  # the newest state wins
    assert failed.sessions["h1"].issued == ("r", "p-1", 7)  # creation is kept
    assert failed.sessions["h1"].fields == {"last_seen_at": T0, "disconnected_at": T1}
    assert list(failed.sessions) == ["h1", "h2"]  # oldest first, as written
    assert failed.closed == {"r": T1}
    assert len(failed) == 4
