"""``KASAGI_HISTORY=false`` (§15) on a real daphne: the snapshots are written as ever,
and no history row with them (history rows go in the same batch as the snapshot of
the same interval, so once the snapshot is there a row would be too)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.livehttp import HttpClient
from tests.persistence.livedb import LiveDB, eventually
from tests.wsclient import Conn

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_history_off_records_nothing(start_server: Any, live_db: LiveDB, room_id: str):
    server = start_server(KASAGI_HISTORY="false")
    conn = await Conn.open(server.ws_url)
    await conn.join(room_id, playerName="P")
    for x in range(3):
        await conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": x}})
        await conn.expect("DELTA_UPDATE")
    await eventually(lambda: live_db.latest_version(room_id) == 4, what="the snapshot at 4")
    rows = live_db.rows(
        "SELECT c.version FROM rooms_historychunk c JOIN rooms_room r ON r.id = c.room_id"
        " WHERE r.room_id = ?", room_id)
    assert rows == []
    listed = HttpClient(server.http_url).get(f"/api/rooms/{room_id}/history/")
    assert listed.status == 200 and listed.json() == {"results": [], "next": None}
    past = HttpClient(server.http_url).get(f"/api/rooms/{room_id}/state/?version=2")
    assert past.status == 404
    now = HttpClient(server.http_url).get(f"/api/rooms/{room_id}/state/?version=4")
    assert now.status == 200 and now.json()["state"]["entities"] == {}
