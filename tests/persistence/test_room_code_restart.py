"""Room code's server-only data and timers survive a clean restart (§12, in memory)."""

from __future__ import annotations

import os
import time

import pytest

from tests.api.livehttp import HttpClient, create_users
from tests.persistence.livedb import LiveDB
from tests.wsclient import Conn

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


async def test_a_timer_set_before_a_restart_fires_after_it(
    start_server, live_db: LiveDB, live_database_url: str, room_id: str,
):
    server = start_server(REDIS_URL="", KASAGI_SNAPSHOT_INTERVAL="300")
    owner = next(iter(create_users(live_database_url, [
        {"username": f"potato-{os.getpid()}", "password": "potato-pw-1"}]).values()))
    made = HttpClient(server.http_url, token=owner.token).post("/api/rooms/", json_body={
        "roomId": room_id, "name": room_id, "roomType": "potato"})
    assert made.status == 201, made.text
    a, b = await Conn.open(server.ws_url), await Conn.open(server.ws_url)
    joined_a = await a.join(room_id, playerName="A")
    joined_b = await b.join(room_id, playerName="B")
    started = time.monotonic()  # the second join started a 10 s round (a timer)

    assert server.stop() == 0, server.log()
    snapshot = live_db.snapshots(room_id)[0]
    code = snapshot["state"]["server"]
    assert code["data"]["rounds"] == 1
    [timer] = code["timers"]
    assert timer[1] == "end_round" and timer[0] == code["data"]["roundTimer"]

    server.start()
    a, b = await Conn.open(server.ws_url), await Conn.open(server.ws_url)
    full = await a.join(room_id, sessionToken=joined_a["payload"]["sessionToken"])
    await b.join(room_id, sessionToken=joined_b["payload"]["sessionToken"])
    holder = full["payload"]["state"]["entities"]["game"]["holder"]
    assert "server" not in full["payload"]["state"]
    over = await a.expect("EVENT", timeout=15, kind="round.over")
    assert time.monotonic() - started < 14  # the saved due time, not a fresh 10 s
    assert over["payload"]["data"] == {"loser": holder, "lives": 2}
    await a.send({"type": "RESYNC", "roomId": room_id})
    state = (await a.expect("FULL_STATE"))["payload"]["state"]
    assert state["entities"]["game"]["round"] == 2  # the saved round count went on
    assert state["players"][holder]["lives"] == 2
