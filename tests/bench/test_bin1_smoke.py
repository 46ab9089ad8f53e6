"""Smoke test of ``bench.load --encoding bin1`` (the compact codec) against a live
Kasagi server: delivered, gapless, converged (bin1 members, a JSON spectator), and
fewer bytes than MessagePack. No timing assertions."""

from __future__ import annotations

import os
from typing import Any

from tests.bench.test_load_smoke import run_load


def test_load_with_bin1_frames(kasagi_server: Any) -> None:
    packed = run_load(kasagi_server.ws_url, kasagi_server.pid, f"smoke-m1-{os.getpid()}",
                      "--encoding", "msgpack")
    compact = run_load(kasagi_server.ws_url, kasagi_server.pid, f"smoke-b1-{os.getpid()}",
                       "--encoding", "bin1")

    assert compact["config"]["encoding"] == "bin1"
    assert compact["deliveries"] > 0 and compact["gaps"] == 0
    assert compact["tool_errors"] == 0
    assert compact["all_converged"] is True
    assert compact["bytes_rx_per_client_per_s"] < packed["bytes_rx_per_client_per_s"]
