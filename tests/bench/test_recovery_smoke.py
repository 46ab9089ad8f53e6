"""Smoke test of ``bench.recovery`` against a live Kasagi server: a small room, one drop per
mode. No timing assertions: the result line parses, the resume by version was answered
RESUMED (the token-only one FULL_STATE), it cost fewer bytes, and the mirror converged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.load import parse_result

REPO = Path(__file__).resolve().parents[2]


def test_recovery_bench_uses_resumed(kasagi_server: Any) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.recovery", "--url", kasagi_server.ws_url,
         "--state-kb", "20", "--changes", "5", "--runs", "1",
         "--room", f"smoke-recovery-{os.getpid()}"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith("BENCH_RESULT {")
    result = parse_result(done.stdout)

    assert result["bench"] == "kasagi-bench-recovery"
    assert result["resumed"]["answers"] == ["RESUMED"]
    assert result["full_state"]["answers"] == ["FULL_STATE"]
    assert result["resumed"]["frames"] >= 1
    assert result["resumed"]["bytes"] < result["full_state"]["bytes"]
    assert result["state_bytes"] > 15_000
    assert result["converged"] is True
