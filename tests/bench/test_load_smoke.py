"""Smoke tests of the benchmark tool: a short real run of ``bench.load`` against a live
Kasagi server and against the tutorial-style baseline. No timing assertions: only that
updates are delivered, the version chain holds and every mirror converges."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench.compare import free_port, stop, wait_for_port
from bench.load import parse_result

REPO = Path(__file__).resolve().parents[2]
SMALL_WORKLOAD = [
    "--clients",
    "6",
    "--rooms",
    "2",
    "--rate",
    "5",
    "--duration",
    "3",
    "--warmup",
    "1",
    "--drain",
    "3",
]


def run_load(ws_url: str, pid: int, prefix: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            "--json-only",
            "--url",
            ws_url,
            "--pids",
            str(pid),
            "--room-prefix",
            prefix,
            *SMALL_WORKLOAD,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return parse_result(done.stdout)


@pytest.fixture(scope="module")
def baseline_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.baseline.settings"}
    env.pop("REDIS_URL", None)
    log = tmp_path_factory.mktemp("baseline") / "daphne.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "bench.baseline.asgi:application",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc)
        yield SimpleNamespace(ws_url=f"ws://127.0.0.1:{port}/sync", pid=proc.pid, log=log)
    finally:
        stop(proc)


def test_load_against_kasagi(kasagi_server: Any) -> None:
    result = run_load(kasagi_server.ws_url, kasagi_server.pid, f"smoke-k-{os.getpid()}")

    assert result["clients"] == 6
    assert result["deliveries"] > 0
    assert result["gaps"] == 0
    assert result["tool_errors"] == 0
    assert result["all_converged"] is True
    assert result["rooms_converged"] == 2
    assert result["server"]["cpu_s"] is not None


def test_load_against_baseline(baseline_server: SimpleNamespace) -> None:
    result = run_load(baseline_server.ws_url, baseline_server.pid, f"smoke-b-{os.getpid()}")

    assert result["clients"] == 6
    assert result["deliveries"] > 0
    assert result["tool_errors"] == 0
    assert result["all_converged"] is True


def test_idle_mode_against_baseline(baseline_server: SimpleNamespace) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            "--json-only",
            "--url",
            baseline_server.ws_url,
            "--pids",
            str(baseline_server.pid),
            "--room-prefix",
            f"smoke-i-{os.getpid()}",
            "--idle",
            "30",
            "--duration",
            "1",
            "--drain",
            "3",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = parse_result(done.stdout)

    assert result["mode"] == "idle"
    assert result["idle"]["connections"] == 30
    assert result["all_converged"] is True
