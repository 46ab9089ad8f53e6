"""A member whose socket stops draining (docs: the hub's slow readers): the server
stops writing to it once the kernel and Twisted hold more than ``LAG_HIGH`` bytes
for it (``DaphneFrameWriter.backlog``), composes what it misses, and when it reads
again it gets a gapless chain to the room's last state, in far fewer frames than
the changes it missed. Without a working backlog the server would queue every
frame for it in memory and it would receive each one.
"""

from __future__ import annotations

import asyncio

import pytest
import websockets

from sync.core.merge_patch import apply_patch
from tests.wsclient import Conn

pytestmark = pytest.mark.asyncio

UPDATES = 300
BLOB = 50_000  # bytes of text per update: UPDATES x BLOB is far past any socket buffer


async def test_a_member_that_stops_reading_catches_up_gaplessly(start_server, room_id):
    # a 5 ms tick and paced updates: each change is its own frame unless held back
    server = start_server(KASAGI_RATE_LIMIT="5000", KASAGI_TICK_MS="5")
    slow = Conn(await websockets.connect(server.ws_url, max_size=None, max_queue=1,
                                         compression=None))
    joined = await slow.join(room_id, playerName="slow")
    writer = await Conn.open(server.ws_url, compression=None)
    await writer.join(room_id, playerName="writer")
    arrived = await slow.expect("PLAYER_JOINED")
    drained = asyncio.create_task(drain(writer))
    try:
        for i in range(UPDATES):
            await writer.send({"type": "STATE_UPDATE", "roomId": room_id, "entityId": "board",
                               "payload": {"n": i, "text": f"{i:06d}" * (BLOB // 6)}})
            await asyncio.sleep(0.01)
        version, state, frames = arrived["version"], joined["payload"]["state"], 0
        last = version + UPDATES
        while version < last:  # the slow member reads again
            frame = await slow.recv(timeout=20)
            frames += 1
            if frame["type"] == "FULL_STATE":
                version, state = frame["version"], frame["payload"]["state"]
            elif frame["type"] in ("DELTA_UPDATE", "PLAYER_JOINED"):
                assert frame["baseVersion"] == version, (frame["baseVersion"], version)
                version = frame["version"]
                if frame["type"] == "DELTA_UPDATE":
                    state = apply_patch(state, frame["payload"])
        assert version == last
        assert state["entities"]["board"]["n"] == UPDATES - 1
        assert state["entities"]["board"]["text"] == f"{UPDATES - 1:06d}" * (BLOB // 6)
        assert frames < UPDATES - 100, f"{frames} frames for {UPDATES} changes: never held back"
    finally:
        drained.cancel()
        await slow.close()
        await writer.close()


async def drain(conn: Conn) -> None:
    while True:
        await conn.ws.recv()

