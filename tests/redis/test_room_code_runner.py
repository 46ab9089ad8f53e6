"""Room code on two processes (§12): one runner per room, messages and events cross
processes, and a SIGKILLed runner's game goes on in the other process."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.request
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sync.store import redis_keys as keys
from tests.api.livehttp import HttpClient, create_users
from tests.redis.local_cluster import client
from tests.wsclient import Conn

pytestmark = [pytest.mark.redis, pytest.mark.asyncio, pytest.mark.timeout(90)]


def make_potato_room(server: Any, database_url: str, room_id: str, *, owner: str) -> None:
    """A ``potato`` room created over REST by a new user (named ``owner``-pid)."""
    user = next(iter(create_users(database_url, [
        {"username": f"{owner}-{os.getpid()}", "password": "runner-pw-1"}]).values()))
    made = HttpClient(server.http_url, token=user.token).post("/api/rooms/", json_body={
        "roomId": room_id, "name": room_id, "roomType": "potato"})
    assert made.status == 201, made.text


def message(room_id: str, kind: str, data: Any = None, **extra: Any) -> dict[str, Any]:
    return {"type": "MESSAGE", "roomId": room_id, "payload": {"kind": kind, "data": data},
            **extra}


async def test_the_game_goes_on_when_its_runner_is_killed(
    cluster, redis_url, live_database_url, room_id,
):
    first, second = cluster(2, REDIS_URL=redis_url, KASAGI_GRACE_PERIOD="30")
    make_potato_room(first, live_database_url, room_id, owner="runner")

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


def runner_pid(redis_url: str, room_id: str) -> int | None:
    """The pid of the process holding the room's runner lease ("host-pid-xx|n")."""
    with client(redis_url) as redis_client:
        token = redis_client.get(keys.runner_key(room_id))
    return int(token.decode().split("|")[0].rsplit("-", 2)[1]) if token else None


def rooms_loaded(server: Any) -> float:
    with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=5) as answer:
        for family in text_string_to_metric_families(answer.read().decode()):
            if family.name == "kasagi_rooms":
                return family.samples[0].value
    raise AssertionError("kasagi_rooms is not in /metrics")


async def test_a_process_that_unloads_the_room_hands_its_code_over_at_once(
    cluster, redis_url, live_database_url, room_id,
):
    """The runner's process loses its last member and unloads the room: it hands the
    lease back then, so the process whose members still play runs the code from its
    next janitor round, not after the lease's 3 s have run out."""
    first, second = cluster(2, REDIS_URL=redis_url, KASAGI_GRACE_PERIOD="30",
                            KASAGI_ROOM_IDLE_UNLOAD="0.5")
    make_potato_room(first, live_database_url, room_id, owner="unload")
    a = await Conn.open(first.ws_url)
    await a.join(room_id, playerName="A")
    b = await Conn.open(second.ws_url)
    await b.join(room_id, playerName="B")
    assert runner_pid(redis_url, room_id) == first.pid
    await a.send({"type": "LEAVE_ROOM", "roomId": room_id})
    await a.close()
    deadline = time.monotonic() + 15
    while await asyncio.to_thread(rooms_loaded, first) > 0:
        assert time.monotonic() < deadline, "the first process never unloaded the room"
        await asyncio.sleep(0.05)
    unloaded = time.monotonic()
    while runner_pid(redis_url, room_id) != second.pid:
        # the lease's time-to-live is 3 s: a hand-over has to beat it by far
        assert time.monotonic() - unloaded < 1.5, "the lease was not handed over"
        await asyncio.sleep(0.05)
    await b.close()


async def test_a_message_sent_while_no_runner_holds_the_lease_is_handled_by_the_next(
    cluster, redis_url, live_database_url, room_id,
):
    """The runner's process is killed; for up to the lease's 3 s nobody runs the room's
    code. A MESSAGE sent then waits in the log: the next runner handles it (once) when
    it takes the lease, from the id the dead runner recorded as its last handled."""
    first, second = cluster(2, REDIS_URL=redis_url, KASAGI_GRACE_PERIOD="30")
    make_potato_room(first, live_database_url, room_id, owner="gap")
    a = await Conn.open(first.ws_url)
    pa = (await a.join(room_id, playerName="A"))["payload"]["playerId"]
    b = await Conn.open(second.ws_url)
    pb = (await b.join(room_id, playerName="B"))["payload"]["playerId"]
    await b.expect("EVENT", kind="potato.yours")  # B's join started the round: B holds it
    assert runner_pid(redis_url, room_id) == first.pid
    # one message through the first runner (refused: A does not hold the potato); the
    # runner records its log id as handled
    await a.send(message(room_id, "pass", {"to": pb}, requestId="a-0"))
    assert (await a.expect("ERROR"))["payload"]["code"] == "INVALID_UPDATE"
    deadline = time.monotonic() + 5
    with client(redis_url) as redis_client:
        while redis_client.get(keys.handled_key(room_id)) is None:
            assert time.monotonic() < deadline, "the runner never recorded a handled id"
            await asyncio.sleep(0.05)

    first.stop(signal.SIGKILL)
    assert runner_pid(redis_url, room_id) == first.pid  # the dead process's lease lives on
    await b.send(message(room_id, "pass", {"to": pa}, requestId="b-1"))
    passed = await b.expect("EVENT", timeout=10, kind="potato.passed")
    assert passed["payload"]["data"] == {"from": pb, "to": pa}
    assert runner_pid(redis_url, room_id) == second.pid
    with client(redis_url) as redis_client:  # the room's state, as Redis holds it
        game = orjson.loads(redis_client.hget(keys.room_keys(room_id)[1], "e:game"))
    assert game["holder"] == pa
    # handled once: no second pass event (a replay that ran twice would send two)
    with pytest.raises(TimeoutError):
        await b.expect("EVENT", timeout=1.0, kind="potato.passed")
