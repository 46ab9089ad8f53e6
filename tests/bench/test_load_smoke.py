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


def run_load(ws_url: str, pid: int, prefix: str, *extra: str) -> dict[str, Any]:
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
            *extra,
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
    assert result["events"] is None  # no --messages-per-second


def test_observers_measure_and_the_others_only_receive(kasagi_server: Any) -> None:
    result = run_load(kasagi_server.ws_url, kasagi_server.pid, f"smoke-o-{os.getpid()}",
                      "--observe", "3")

    # 6 clients in 2 rooms (client i in room i % 2): the first member of each measures
    assert result["clients"] == 6 and result["observers"] == 2
    assert result["rooms_converged"] == 2  # each room has an observer
    # each observer expects every send of its room but its own, and got them all
    sends_per_client = result["sent"] // 6
    assert result["expected_deliveries"] == 2 * 2 * sends_per_client
    assert result["delivery_ratio"] == 1.0 and result["gaps"] == 0
    assert result["tool_errors"] == 0
    # bytes are every client's: the passive ones received as much as the observers
    assert result["bytes_rx_per_client_per_s"] > 0


def test_load_with_msgpack_frames(kasagi_server: Any) -> None:
    json_run = run_load(kasagi_server.ws_url, kasagi_server.pid, f"smoke-j-{os.getpid()}")
    packed = run_load(kasagi_server.ws_url, kasagi_server.pid, f"smoke-m-{os.getpid()}",
                      "--encoding", "msgpack")

    assert packed["config"]["encoding"] == "msgpack"
    assert packed["deliveries"] > 0 and packed["gaps"] == 0 and packed["tool_errors"] == 0
    assert packed["all_converged"] is True  # msgpack members, a JSON spectator: same state
    assert packed["bytes_rx_per_client_per_s"] < json_run["bytes_rx_per_client_per_s"]


def test_load_with_messages_relayed_as_events(kasagi_server: Any) -> None:
    result = run_load(kasagi_server.ws_url, kasagi_server.pid, f"smoke-e-{os.getpid()}",
                      "--messages-per-second", "2")

    events = result["events"]
    assert events["kind"] == "bench.ping" and events["messages_per_second"] == 2
    assert events["sent"] > 0
    assert events["expected"] == events["sent"] * 2  # 6 clients in 2 rooms: 2 others each
    assert events["delivered"] == events["expected"]
    assert events["latency_ms"]["count"] == events["delivered"]
    assert result["deliveries"] > 0 and result["gaps"] == 0
    assert result["all_converged"] is True


def test_cluster_sweep_on_redis() -> None:
    """bench.cluster end to end: two processes on Redis, one small step."""
    from tests.services import need_redis

    need_redis()
    done = subprocess.run(
        [sys.executable, "-m", "bench.cluster", "--json-only", "--servers", "2",
         "--rates", "5", "--clients", "8", "--rooms", "2", "--duration", "2",
         "--warmup", "1", "--redis-url", "redis://127.0.0.1:6379/15"],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = parse_result(done.stdout)
    (row,) = summary["rows"]
    assert row["processes"] == 2 and len(row["p99_ms"]) == 2
    assert row["delivery_ratio"] >= 0.99 and row["gaps"] == 0
    assert row["rooms_converged"] == "2/2"


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
