"""Several daphne processes on one Redis behave as one server (issue 6).

Real processes, real Redis (DB 9 by default, flushed per test); the outage
test runs a private redis-server it can kill. No timing assertions: waits
are upper bounds only.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from tests.redis.mirror import Mirror
from tests.wsclient import Conn

pytestmark = pytest.mark.redis


async def open_mirrors(servers: list, room_id: str, count: int, **join: Any) -> list[Mirror]:
    mirrors = []
    for i in range(count):
        server = servers[i % len(servers)]
        mirror = Mirror(await Conn.open(server.ws_url + f"?room={room_id}"), f"c{i}@{server.port}")
        await mirror.join(room_id, playerName=f"P{i}", **join)
        mirrors.append(mirror)
    return mirrors


async def fresh_view(server, room_id: str) -> Mirror:
    spectator = Mirror(await Conn.open(server.ws_url), "spectator")
    await spectator.join(room_id, spectate=True)
    return spectator


async def close_all(mirrors: list[Mirror]) -> None:
    for mirror in mirrors:
        await mirror.conn.close()


async def test_shared_room_three_processes_converge(cluster, redis_url, room_id):
    servers = cluster(3, REDIS_URL=redis_url)
    mirrors = await open_mirrors(servers, room_id, 6)
    start_version = mirrors[0].version
    rounds = 25

    async def drive(index: int, mirror: Mirror) -> None:
        for seq in range(1, rounds + 1):
            await mirror.conn.send({"type": "STATE_UPDATE", "roomId": room_id,
                                    "payload": {"x": seq, "who": index}})
            await mirror.conn.send({"type": "STATE_UPDATE", "roomId": room_id,
                                    "entityId": "ball", "payload": {"owner": index, "n": seq}})
            if seq % 5 == 0:
                await asyncio.sleep(0.01)

    await asyncio.gather(*(drive(i, m) for i, m in enumerate(mirrors)),
                         *(m.pump(until_quiet=1.5) for m in mirrors))
    await asyncio.gather(*(m.pump(until_quiet=1.0) for m in mirrors))

    view = await fresh_view(servers[1], room_id)
    for mirror in mirrors:
        assert not mirror.errors, mirror.errors[:3]
        assert mirror.full_states == 1
        assert mirror.version == view.version, mirror.name
        assert mirror.state == view.state, mirror.name
    # Every accepted write got its own version: none lost, none handed out twice
    # (5 later joins after c0's FULL_STATE, 2 writes per round per client).
    assert view.version == start_version + 5 + rounds * 2 * len(mirrors)
    for index, mirror in enumerate(mirrors):
        assert view.state["players"][mirror.player_id]["x"] == rounds
        assert view.state["players"][mirror.player_id]["who"] == index
    assert view.state["entities"]["ball"]["n"] == rounds  # last write wins on the shared one
    await close_all([*mirrors, view])


async def test_expected_version_and_limits_hold_across_processes(cluster, redis_url, room_id):
    servers = cluster(2, REDIS_URL=redis_url, KASAGI_MAX_PLAYERS="2")
    a, b = await open_mirrors(servers, room_id, 2)
    await a.pump(0.3)
    stale = b.version - 1
    await b.conn.send({"type": "STATE_UPDATE", "roomId": room_id, "entityId": "d",
                       "expectedVersion": stale, "payload": {"t": 1}, "requestId": 7})
    error = await b.until(lambda f: f["type"] == "ERROR")
    assert error["payload"]["code"] == "VERSION_CONFLICT"
    assert error["payload"]["currentVersion"] == b.version
    third = await Conn.open(servers[0].ws_url)
    await third.send({"type": "JOIN_ROOM", "roomId": room_id, "payload": {}})
    refused = await third.expect("ERROR")
    assert refused["payload"]["code"] == "ROOM_FULL"
    await close_all([a, b])
    await third.close()


async def test_token_resumes_on_another_process(cluster, redis_url, room_id):
    one, two = cluster(2, REDIS_URL=redis_url, KASAGI_GRACE_PERIOD="30")
    first = Mirror(await Conn.open(one.ws_url), "first")
    await first.join(room_id, playerName="A")
    other = Mirror(await Conn.open(two.ws_url), "other")
    await other.join(room_id, playerName="B")
    await first.conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 5}})
    await other.until(lambda f: f["type"] == "DELTA_UPDATE")
    await first.conn.close()

    again = Mirror(await Conn.open(two.ws_url), "again")
    await again.join(room_id, sessionToken=first.token)
    frame = again.conn.seen[-1]
    assert frame["payload"]["resumed"] is True
    assert again.player_id == first.player_id
    assert again.state["players"][first.player_id]["x"] == 5
    await other.conn.nothing(0.5)  # a resume changes no state
    await again.conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 6}})
    await other.until(lambda f: f["type"] == "DELTA_UPDATE")
    assert other.state["players"][first.player_id]["x"] == 6
    await close_all([again, other])


async def test_resume_elsewhere_takes_over_a_live_socket(cluster, redis_url, room_id):
    one, two = cluster(2, REDIS_URL=redis_url)
    first = Mirror(await Conn.open(one.ws_url), "first")
    await first.join(room_id, playerName="A")
    second = Mirror(await Conn.open(two.ws_url), "second")
    await second.join(room_id, sessionToken=first.token)
    assert second.player_id == first.player_id
    # The old socket was let go: its room messages are now refused.
    await asyncio.sleep(0.5)
    await first.conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 1}})
    error = await first.until(lambda f: f["type"] == "ERROR")
    assert error["payload"]["code"] == "NOT_IN_ROOM"
    await close_all([first, second])


async def test_killed_process_players_time_out_elsewhere(cluster, redis_url, room_id):
    victim, survivor = cluster(2, REDIS_URL=redis_url, KASAGI_GRACE_PERIOD="2")
    doomed = Mirror(await Conn.open(victim.ws_url), "doomed")
    await doomed.join(room_id, playerName="D")
    await doomed.conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 9}})
    await doomed.until(lambda f: f["type"] == "DELTA_UPDATE")  # acknowledged
    watcher = Mirror(await Conn.open(survivor.ws_url), "watcher")
    await watcher.join(room_id, playerName="W")
    assert watcher.state["players"][doomed.player_id]["x"] == 9
    victim.stop(signal.SIGKILL)
    left = await watcher.until(lambda f: f["type"] == "PLAYER_LEFT", timeout=30)
    assert left["payload"] == {"playerId": doomed.player_id, "reason": "timeout"}
    await watcher.pump(1.0)
    # exactly once, and the room goes on
    assert sum(1 for f in watcher.conn.seen if f["type"] == "PLAYER_LEFT") == 1
    await watcher.conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 1}})
    await watcher.until(lambda f: f["type"] == "DELTA_UPDATE")
    await watcher.conn.close()


async def test_server_side_change_reaches_every_process(cluster, redis_url, room_id):
    from sync.core.limits import Limits
    from sync.directory import MemoryDirectory, RoomConfig
    from sync.hub import Hub
    from sync.store.redis import RedisRoomStore

    servers = cluster(2, REDIS_URL=redis_url)
    mirrors = await open_mirrors(servers, room_id, 2)
    directory = MemoryDirectory()
    directory.configs[room_id] = RoomConfig(room_id)
    store = RedisRoomStore(Hub(0.05), directory, limits=Limits(), grace_seconds=5,
                           redis_url=redis_url)
    try:
        version = await store.server_update_entity(room_id, "banner", {"text": "hi"})
        await store.server_update_player(room_id, mirrors[1].player_id, {"score": 3})
        await store.kick(room_id, mirrors[0].player_id)
    finally:
        await store.stop()
    for mirror in mirrors:
        await mirror.until(lambda f, v=version: f["type"] == "DELTA_UPDATE" and f["version"] >= v)
    kicked = await mirrors[1].until(lambda f: f["type"] == "PLAYER_LEFT")
    assert kicked["payload"]["reason"] == "kicked"
    assert mirrors[1].state["entities"]["banner"] == {"text": "hi"}
    assert mirrors[1].state["players"][mirrors[1].player_id]["score"] == 3
    await mirrors[0].conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 1}})
    error = await mirrors[0].until(lambda f: f["type"] == "ERROR")
    assert error["payload"]["code"] == "NOT_IN_ROOM"
    await close_all(mirrors)


async def test_idle_sockets_on_redis_stay_healthy(cluster, redis_url, room_id):
    servers = cluster(2, REDIS_URL=redis_url)
    mirrors = await open_mirrors(servers, room_id, 2)
    await asyncio.sleep(12)  # longer than redis-py 8's 5 s default socket timeout, twice
    await mirrors[0].conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 1}})
    await mirrors[1].until(lambda f: f["type"] == "DELTA_UPDATE")
    await mirrors[1].conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 2}})
    await mirrors[0].until(lambda f: f["type"] == "DELTA_UPDATE" and "x" in str(f["payload"])
                           and f["version"] == mirrors[1].version + 1)
    for server in servers:
        log = server.log()
        assert "Traceback" not in log, log
        assert "redis unavailable" not in log, log
    await close_all(mirrors)


async def test_redis_outage_then_full_state(cluster, private_redis, room_id):
    servers = cluster(2, REDIS_URL=private_redis.url)
    mirrors = await open_mirrors(servers, room_id, 4)
    await mirrors[0].conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 1}})
    for mirror in mirrors:
        await mirror.until(lambda f: f["type"] == "DELTA_UPDATE")
    before = [m.full_states for m in mirrors]

    private_redis.stop()
    await asyncio.sleep(0.5)
    await mirrors[1].conn.send({"type": "STATE_UPDATE", "roomId": room_id,
                                "payload": {"x": 2}, "requestId": "during"})
    error = await mirrors[1].until(lambda f: f["type"] == "ERROR", timeout=10)
    assert error["payload"]["code"] == "INTERNAL"
    assert error["requestId"] == "during"

    private_redis.start()  # empty: this Redis keeps nothing on disk
    for mirror, count in zip(mirrors, before, strict=True):
        await mirror.until(lambda f: f["type"] == "FULL_STATE", timeout=20)
        assert mirror.full_states == count + 1
    for index, mirror in enumerate(mirrors):
        await mirror.conn.send({"type": "STATE_UPDATE", "roomId": room_id,
                                "payload": {"after": index}})
    await asyncio.gather(*(m.pump(until_quiet=1.0) for m in mirrors))
    view = await fresh_view(servers[0], room_id)
    for index, mirror in enumerate(mirrors):
        assert mirror.state == view.state, mirror.name
        assert mirror.version == view.version
        assert view.state["players"][mirror.player_id]["after"] == index
    for server in servers:
        assert server.proc.poll() is None  # no process died
    await close_all([*mirrors, view])


async def test_changed_configuration_reaches_every_process(
    cluster, redis_url, room_id, live_database_url
):
    import subprocess
    import sys

    from sync.core.limits import Limits
    from sync.directory import MemoryDirectory
    from sync.hub import Hub
    from sync.store.redis import RedisRoomStore
    from tests.live import ROOT, server_env

    servers = cluster(2, REDIS_URL=redis_url)
    mirrors = await open_mirrors(servers, room_id, 2)  # the room is loaded on both
    for server in servers:
        joined = await Conn.open(server.ws_url)
        await joined.send({"type": "JOIN_ROOM", "roomId": room_id,
                           "payload": {"spectate": True}})
        assert (await joined.recv())["type"] == "FULL_STATE"
        await joined.close()
    # What the admin does: change the row (no signal here), then tell the engine.
    subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n"
         "from rooms.models import Room\n"
         f"Room.objects.filter(room_id={room_id!r}).update(visibility='private')"],
        cwd=ROOT, env=server_env(live_database_url), check=True, capture_output=True,
    )
    store = RedisRoomStore(Hub(0.05), MemoryDirectory(), limits=Limits(), grace_seconds=5,
                           redis_url=redis_url)
    try:
        await store.reconfigure(room_id)
    finally:
        await store.stop()
    for server in servers:
        for _ in range(50):
            conn = await Conn.open(server.ws_url)
            await conn.send({"type": "JOIN_ROOM", "roomId": room_id,
                             "payload": {"spectate": True}})
            frame = await conn.recv()
            await conn.close()
            if frame["type"] == "ERROR":
                break
            await asyncio.sleep(0.1)
        assert frame["payload"]["code"] == "FORBIDDEN", frame
    for mirror in mirrors:  # players already in stay
        await mirror.conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"y": 2}})
        await mirror.until(lambda f: f["type"] == "DELTA_UPDATE")
    await close_all(mirrors)


async def test_reset_then_close_from_any_process_reach_every_member(cluster, redis_url, room_id):
    from sync.core.limits import Limits
    from sync.directory import MemoryDirectory, RoomConfig
    from sync.hub import Hub
    from sync.store.redis import RedisRoomStore

    servers = cluster(2, REDIS_URL=redis_url)
    mirrors = await open_mirrors(servers, room_id, 4, x=0)
    for i, mirror in enumerate(mirrors):
        await mirror.conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": i + 1}})
        await mirror.conn.send({"type": "STATE_UPDATE", "roomId": room_id,
                                "entityId": f"flag-{i}", "payload": {"by": i}})
    directory = MemoryDirectory()
    directory.configs[room_id] = RoomConfig(room_id)
    store = RedisRoomStore(Hub(0.05), directory, limits=Limits(), grace_seconds=5,
                           redis_url=redis_url)
    try:
        for mirror in mirrors:  # every write is in before the reset
            while len(mirror.state.get("entities", {})) < 4:
                await mirror.until(lambda f: True)
        version = await store.reset(room_id, {"entities": {"banner": {"text": "round 2"}}})
        for mirror in mirrors:
            await mirror.until(lambda f, v=version: f["type"] == "DELTA_UPDATE"
                               and f["version"] >= v)
            assert mirror.state["entities"] == {"banner": {"text": "round 2"}}
            assert all(p["x"] == 0 for p in mirror.state["players"].values())
        await store.close(room_id)
    finally:
        await store.stop()
    for mirror in mirrors:
        closed = await mirror.until(lambda f: f["type"] == "ERROR")
        assert closed["payload"]["code"] == "ROOM_CLOSED"
        assert mirror.state["players"] == {}  # a PLAYER_LEFT "closed" for every player first
    for server in servers:  # no process lets anyone back in
        conn = await Conn.open(server.ws_url)
        await conn.send({"type": "JOIN_ROOM", "roomId": room_id, "payload": {}})
        refused = await conn.expect("ERROR")
        assert refused["payload"]["code"] == "ROOM_CLOSED"
        await conn.close()
    await close_all(mirrors)


async def test_clean_stop_on_redis_writes_the_last_snapshot(start_server, redis_url, room_id,
                                                            live_database_url):
    """With Redis the state of record survives a process anyway; the database snapshot
    is what a Redis that restarts empty comes back from, so a clean stop writes it."""
    import signal

    from tests.persistence.livedb import LiveDB

    server = start_server(REDIS_URL=redis_url, KASAGI_SNAPSHOT_INTERVAL="300")
    mirrors = await open_mirrors([server], room_id, 2)
    await asyncio.sleep(1.5)  # the janitor takes the room's snapshot lease within a second
    for x in range(5):
        await mirrors[0].conn.send({"type": "STATE_UPDATE", "roomId": room_id,
                                    "payload": {"x": x}})
    me = mirrors[0].player_id
    await mirrors[1].until(lambda f: f["type"] == "DELTA_UPDATE"
                           and f["payload"].get("players", {}).get(me, {}).get("x") == 4)
    final = mirrors[1].version
    assert server.stop(signal.SIGTERM) == 0, server.log()
    snapshot = LiveDB(live_database_url).snapshots(room_id)[0]
    assert snapshot["version"] == final  # an interval of 300 s: only the stop wrote it
    assert snapshot["state"]["players"][me]["x"] == 4
    await close_all(mirrors)
