"""Room code on two processes (§12): one runner per room, messages and events cross
processes, and a SIGKILLed runner's game goes on in the other process."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from tests.api.livehttp import HttpClient, create_users
from tests.wsclient import Conn

pytestmark = [pytest.mark.redis, pytest.mark.asyncio, pytest.mark.timeout(90)]


def message(room_id: str, kind: str, data: Any = None, **extra: Any) -> dict[str, Any]:
    return {"type": "MESSAGE", "roomId": room_id, "payload": {"kind": kind, "data": data},
            **extra}


async def test_the_game_goes_on_when_its_runner_is_killed(
    cluster, redis_url, live_database_url, room_id,
):
    first, second = cluster(2, REDIS_URL=redis_url, KASAGI_GRACE_PERIOD="30")
    owner = next(iter(create_users(live_database_url, [
        {"username": f"runner-{os.getpid()}", "password": "runner-pw-1"}]).values()))
    made = HttpClient(first.http_url, token=owner.token).post("/api/rooms/", json_body={
        "roomId": room_id, "name": room_id, "roomType": "potato"})
    assert made.status == 201, made.text

    a = await Conn.open(first.ws_url)  # the room loads on the first process: its runner
    joined_a = await a.join(room_id, playerName="A")
    pa = joined_a["payload"]["playerId"]
    b = await Conn.open(second.ws_url)
    pb = (await b.join(room_id, playerName="B"))["payload"]["playerId"]
    started = time.monotonic()
    yours = await b.expect("EVENT", kind="potato.yours")  # B's join started the round
    assert yours["payload"]["from"] is None

    # B's message crosses to the runner; the refusal of A's comes back to A.
    await a.send(message(room_id, "pass", {"to": pb}, requestId="a-1"))
    error = await a.expect("ERROR")
    assert error["payload"]["code"] == "INVALID_UPDATE" and error["requestId"] == "a-1"
    await b.send(message(room_id, "pass", {"to": pa}))
    passed = await a.expect("EVENT", kind="potato.passed")
    assert passed["payload"]["data"] == {"from": pb, "to": pa}
    await a.expect("EVENT", kind="potato.yours")
    await b.expect("EVENT", kind="potato.passed")
    await b.send(message(room_id, "dance", requestId="b-1"))
    assert (await b.expect("ERROR"))["payload"]["code"] == "UNKNOWN_MESSAGE"

    first.stop(signal.SIGKILL)
    a = await Conn.open(second.ws_url)
    resumed = await a.join(room_id, sessionToken=joined_a["payload"]["sessionToken"])
    assert resumed["payload"]["playerId"] == pa
    # The round's timer was data in Redis: it fires on the second process, on time-ish.
    over = await b.expect("EVENT", timeout=20, kind="round.over")
    assert time.monotonic() - started < 20
    assert over["payload"]["data"] == {"loser": pa, "lives": 2}
    # and messages are handled there now
    deadline = time.monotonic() + 10
    seen: list[dict[str, Any]] = []
    while True:  # the next round, started by the same timer handler after the event
        assert time.monotonic() < deadline, f"no round 2 within 10 s; saw {seen[-6:]}"
        frame = await b.expect("DELTA_UPDATE", timeout=10)
        seen.append(frame)
        game = (frame["payload"].get("entities") or {}).get("game") or {}
        if game.get("round") == 2:
            break
    holder = game["holder"]
    sender, target, other = (a, pb, b) if holder == pa else (b, pa, a)
    await sender.send(message(room_id, "pass", {"to": target}))
    passed = await other.expect("EVENT", timeout=10, kind="potato.passed")
    assert passed["payload"]["data"]["to"] == target
