"""A real daphne takes the fast paths (sync.compat.DaphneFrameWriter, direct socket sends;
sync.compat.DaphneFrameReader, frames parsed and handled in the data callback).

Without it the server still works (the generic outbox writer), only slower
(docs/performance.md: p99 84–101 ms instead of 52 ms at workload C), so only a
test that asks which path was taken catches a daphne, Twisted or autobahn
upgrade the compatibility module does not know. The answer comes from the
server's own ``/metrics``: ``kasagi_writer_connections_total{path=...}``.
"""

from __future__ import annotations

import asyncio
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live import LiveServer
from tests.wsclient import Conn, MsgpackConn

pytestmark = pytest.mark.asyncio


def _paths(server: LiveServer, family_name: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == family_name:
            return {
                sample.labels["path"]: sample.value
                for sample in family.samples if sample.name.endswith("_total")
            }
    raise AssertionError(f"{family_name} is not in /metrics")


async def paths(server: LiveServer, family: str = "kasagi_writer_connections") -> dict[str, float]:
    return await asyncio.to_thread(_paths, server, family)


async def test_connections_to_daphne_take_the_fast_path(kasagi_server, room_id):
    before = await paths(kasagi_server)
    readers_before = await paths(kasagi_server, "kasagi_reader_connections")
    a = await Conn.open(kasagi_server.ws_url)
    b = await MsgpackConn.open(kasagi_server.ws_url)
    await a.join(room_id, name="A")
    joined = await b.join(room_id, name="B")
    await a.expect("PLAYER_JOINED")
    await b.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 3}})
    # Frames the fast writer built by hand arrive whole, as text and as binary MessagePack.
    player = joined["payload"]["playerId"]
    delta = await a.expect("DELTA_UPDATE")
    assert delta["payload"]["players"][player]["x"] == 3
    assert (await b.expect("DELTA_UPDATE"))["version"] == delta["version"]
    assert all(b.binary)
    after = await paths(kasagi_server)
    assert set(after) == {"daphne", "daphne_buffered", "generic"}
    assert after["daphne"] - before["daphne"] == 2, (before, after, kasagi_server.log())
    # No connection of this server ever fell back (sync.compat refused nothing).
    assert after["generic"] == 0 and after["daphne_buffered"] == 0, (after, kasagi_server.log())
    # Both connections' frames come through the fast reader (sync.compat.DaphneFrameReader).
    readers = await paths(kasagi_server, "kasagi_reader_connections")
    assert readers["daphne"] - readers_before["daphne"] == 2, (readers, kasagi_server.log())
    assert readers["generic"] == 0 and readers["daphne_reactor"] == 0, readers
    assert "sync.compat" not in kasagi_server.log()
    await a.close()
    await b.close()
