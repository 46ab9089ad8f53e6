"""The writer with the engine alone, in a process of its own (see engine_run.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from sync.tokens import hash_token
from tests.live import ROOT, server_env
from tests.persistence.livedb import LiveDB


def run(database_url: str, scenario: str, room_id: str, **env: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.persistence.engine_run", scenario, room_id],
        cwd=ROOT, env=server_env(database_url, KASAGI_LOG_LEVEL="WARNING", REDIS_URL="", **env),
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_closing_a_room_writes_its_end(live_database_url: str, live_db: LiveDB, room_id: str):
    result = run(live_database_url, "close", room_id, KASAGI_SNAPSHOT_INTERVAL="300")
    assert result["queued"] >= 1  # the metric sees the dirty room and the session
    assert result["flushed"] is True
    assert result["after"] == 0
    assert result["writes"] >= 1  # kasagi_persistence_write_seconds observed the batches

    room = live_db.room(room_id)
    assert room["closed_at"] is not None
    latest = live_db.snapshots(room_id)[0]
    # join (1), three updates (2..4), the player leaves with reason "closed" (5)
    assert latest["version"] == 5
    assert latest["state"].pop("epoch")["clean"] is False  # §14: not a clean stop
    assert latest["state"] == {"players": {}, "entities": {"doc": {"n": 2}}}
    session = live_db.session(hash_token(result["token"]))
    assert session["ended_at"] is not None
    assert session["end_reason"] == "closed"


def test_a_process_that_just_exits_flushes(
    live_database_url: str, live_db: LiveDB, room_id: str
):
    result = run(live_database_url, "exit", room_id, KASAGI_SNAPSHOT_INTERVAL="300")
    latest = live_db.snapshots(room_id)[0]
    assert latest["version"] == result["version"]
    assert latest["state"]["entities"]["doc"] == {"text": "kept at exit"}


def test_persistence_off_writes_nothing(live_database_url: str, live_db: LiveDB, room_id: str):
    run(live_database_url, "exit", room_id, KASAGI_PERSISTENCE="false")
    assert live_db.room(room_id) is None
