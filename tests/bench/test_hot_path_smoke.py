"""Smoke test of ``bench.hot_path`` and ``bench.history_writer``: they run on this tree and
print every figure they promise. No timing assertions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_hot_path_prints_every_operation() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.hot_path", "--rounds", "1", "--ticks", "3", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    expected = {"parse", "consumer._parse"} | {
        f"{room} {op}" for room in ("freeform", "world")
        for op in ("room.update_player", "store.update", "consumer.on_frame", "flush / tick")}
    assert set(figures) == expected
    assert all(value > 0 for value in figures.values())


def test_hot_path_takes_more_members_than_a_room_holds_by_default() -> None:
    done = subprocess.run(  # the default room limit is 64 players
        [sys.executable, "-m", "bench.hot_path", "--rounds", "1", "--ticks", "2",
         "--members", "70", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["world flush / tick"] > 0


def test_history_writer_writes_chunks_and_keeps_them_bounded(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.history_writer", "--kept", "500", "--changes", "400",
         "--rooms", "4", "--batches", "8", "--skip", "4"],
        cwd=REPO, capture_output=True, text=True, timeout=180,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'hw.sqlite3'}"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("BENCH_HISTORY_WRITER ")
    summary = json.loads(line.removeprefix("BENCH_HISTORY_WRITER "))
    assert summary["cpu_ms_per_batch"]["_write_history"] > 0
    # 4 rooms of 100 changes a batch, at most kept + margin + a batch each
    assert 4 * 500 <= summary["records_at_end"] <= 4 * (500 + 100 + 100)
    assert summary["chunks_at_end"] < summary["records_at_end"] / 50
