"""Smoke tests of the Colyseus comparison (issue 17): ``bench.load --payload xyt``
(exactly ``{x, y, t}``, no sequence number), wire bytes next to payload bytes (and
permessage-deflate making them smaller), and ``bench.compare --servers kasagi,colyseus``
running the real Colyseus 0.16 peer (bench/colyseus) after Kasagi. No timing assertions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from bench.load import XYT_STEP, Client, Config, Worker, parse_result
from tests.bench.test_load_smoke import REPO, run_load


def test_an_xyt_move_is_exactly_x_y_and_a_float_ms_send_time() -> None:
    cfg = Config(payload="xyt", clients=1, rooms=1)
    worker = Worker(cfg, [0], None)
    client = Client(cfg, 0)
    assert client.x == client.y == 500  # where load.mjs's Colyseus clients start
    client.x = x = 1000  # at the edge: clamped, still an integer
    y = client.y
    for seq in range(1, 50):
        move = worker.make_xyt(client, seq)
        assert set(move) == {"x", "y", "t"}
        assert type(move["x"]) is int and type(move["y"]) is int
        assert abs(move["x"] - x) <= XYT_STEP and abs(move["y"] - y) <= XYT_STEP
        assert 0 <= move["x"] <= 1000 and 0 <= move["y"] <= 1000
        assert type(move["t"]) is float and move["t"] > 1.7e12  # epoch ms
        x, y = move["x"], move["y"]


def test_load_with_xyt_moves(kasagi_server: Any) -> None:
    result = run_load(kasagi_server.ws_url, kasagi_server.pid, f"smoke-xyt-{os.getpid()}",
                      "--payload", "xyt")

    assert result["clients"] == 6 and result["gaps"] == 0 and result["tool_errors"] == 0
    assert result["duplicates"] == 0
    assert result["deliveries"] is None and result["delivery_ratio"] is None  # no seq
    assert result["expected_deliveries"] == result["sent"] * 3  # moves x members (3 a room)
    assert result["observed"] > 0
    assert result["latency_ms"]["count"] == result["observed"]
    assert result["all_converged"] is True  # the final x, y, t of every member everywhere
    assert result["server"]["cpu_s_per_1000_deliveries"] is not None
    # framing: a socket reads more than the message payloads it yields
    assert result["wire_bytes_rx_per_client_per_s"] > result["bytes_rx_per_client_per_s"]


def test_json_clients_offering_deflate_read_fewer_wire_bytes(kasagi_server: Any) -> None:
    result = run_load(kasagi_server.ws_url, kasagi_server.pid, f"smoke-xytd-{os.getpid()}",
                      "--payload", "xyt", "--encoding", "json-deflate")

    assert result["config"]["encoding"] == "json-deflate"
    assert result["gaps"] == 0 and result["all_converged"] is True
    assert result["wire_bytes_rx_per_client_per_s"] < result["bytes_rx_per_client_per_s"]


def compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench.compare", "--json-only", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=240)


def test_compare_refuses_colyseus_without_xyt_moves() -> None:
    done = compare("--servers", "kasagi,colyseus", "--clients", "2")

    assert done.returncode == 2
    assert "colyseus runs only --payload xyt" in done.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (Colyseus 0.16 peer)")
def test_compare_kasagi_with_colyseus() -> None:
    done = compare("--servers", "kasagi,colyseus", "--payload", "xyt", "--clients", "4",
                   "--rooms", "2", "--rate", "5", "--duration", "2", "--warmup", "1",
                   "--drain", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = parse_result(done.stdout)

    colyseus = summary["results"]["colyseus"]
    assert colyseus["peer"].startswith("@colyseus/core 0.16.") and colyseus["clients"] == 4
    assert colyseus["expected_deliveries"] == colyseus["sent"] * 2  # 2 members a room
    assert colyseus["observed"] > 0
    assert colyseus["latency_ms"]["count"] == colyseus["observed"]
    assert colyseus["all_converged"] is True and colyseus["rooms_total"] == 2
    assert colyseus["server"]["cpu_s"] is not None
    assert colyseus["wire_bytes_rx_per_client_per_s"] > colyseus["bytes_rx_per_client_per_s"] > 0
    assert summary["results"]["kasagi"]["all_converged"] is True
    rows = {row["metric"]: row for row in summary["rows"]}
    assert rows["changes received/s (xyt)"]["colyseus"] == colyseus["changes_rx_per_s"] > 0
    for metric in ("bytes rx / client / s", "wire bytes rx / client / s",
                   "wire bytes / change received",
                   "server CPU s / 1000 deliveries", "latency p99 (ms)"):
        assert rows[metric]["ratios"]["colyseus"] == pytest.approx(
            rows[metric]["kasagi"] / rows[metric]["colyseus"], rel=1e-2, abs=1e-3)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (the Node load tool)")
def test_compare_drives_kasagi_with_the_node_tool_in_a_world() -> None:
    """``--node-tool``: bench/colyseus/kasagi-load.mjs instead of bench.load, here on a
    small world room: everyone joins, observers time other players' moves, no gap."""
    done = compare("--servers", "kasagi", "--node-tool", "--room-type", "world",
                   "--clients", "6", "--rooms", "1", "--rate", "5", "--observe", "2",
                   "--duration", "2", "--warmup", "1", "--drain", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    result = parse_result(done.stdout)["results"]["kasagi"]

    assert result["bench"] == "kasagi-node-load" and result["config"]["tool"] == "node"
    assert result["clients"] == 6 and result["observers"] == 3
    assert result["connect_failures"] == {} and result["errors"] == {}
    assert result["gaps"] == 0 and result["disconnects"] == 0
    assert result["sent"] > 0 and result["observed"] > 0
    assert result["latency_ms"]["count"] == result["observed"]
    assert result["server"]["cpu_s"] is not None
    assert result["wire_bytes_rx_per_client_per_s"] > result["bytes_rx_per_client_per_s"] > 0
