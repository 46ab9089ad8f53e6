"""Smoke test of ``bench.documents`` against a live Kasagi server: two small rooms for two
seconds. No timing assertions: the result line parses, every keystroke reached every other
editor, the rooms converged, and the stored document is of the order of its text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.load import parse_result

REPO = Path(__file__).resolve().parents[2]


def test_documents_bench_runs_and_converges(kasagi_server: Any) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.documents", "--url", kasagi_server.ws_url,
         "--rooms", "2", "--editors", "3", "--rate", "5", "--seconds", "2",
         "--room", f"smoke-docs-{os.getpid()}", "--server-pid", str(kasagi_server.pid)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = parse_result(done.stdout)
    assert result["bench"] == "kasagi-bench-documents"
    assert result["keystrokes"] > 20
    assert result["relays_seen"] == result["relays_expected"]  # each once, to every other
    assert result["converged"] is True
    assert result["latency_ms"]["p99"] is not None
    assert result["server_cpu_seconds"] is not None
    assert result["text_chars_mean"] > 5
    assert result["document_bytes_mean"] < 40 * result["text_chars_mean"] + 200
