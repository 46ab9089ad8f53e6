"""Smoke test of ``bench.ticks``: a few ``ticker`` rooms and a tiny workload on the process it
starts. No timing assertions: the result line parses, the server's on_tick histogram counted
calls of the ticker type, the spectators saw the ball's tick number advance in every room, and
the workload converged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.load import parse_result

REPO = Path(__file__).resolve().parents[2]


def test_ticks_bench_measures_the_ticker_rooms() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ticks", "--tick-rooms", "3", "--clients", "4",
         "--rooms", "2", "--rate", "2", "--duration", "1", "--warmup", "0.5", "--procs", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith("BENCH_RESULT {")
    result = parse_result(done.stdout)

    assert result["bench"] == "kasagi-bench-ticks"
    for phase in ("ticks_alone", "ticks_with_c"):
        assert result[phase]["on_tick_ms"]["count"] > 0
        assert result[phase]["on_tick_ms"]["mean"] is not None
        assert result[phase]["lateness_ms"]["count"] > 0
        assert result[phase]["ticks_seen"]["rooms"] == 3
        assert result[phase]["ticks_seen"]["min_per_room_per_s"] > 0
    for load in (result["c_alone"], result["ticks_with_c"]["load"]):
        assert load["clients"] == 4 and load["gaps"] == 0 and load["rooms_converged"] == "2/2"
