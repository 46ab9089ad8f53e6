"""Redis Cluster fail-over under load (issue #19), on a private six-node cluster.

Two daphne processes serve two rooms on different shards while a few clients update
both at 20 Hz. The primary of one room's shard is killed (its replica takes over after
the cluster's node timeout) or hands over with ``CLUSTER FAILOVER``: the other room
never pauses (changes keep arriving, no FULL_STATE), the failed shard's room resumes
within 10 s of the kill, every client's chain stays gapless (a FULL_STATE where it was
rebuilt) and both processes converge. A kill may lose the writes the replica had not
received, so that room gets a new epoch (§14) and a resume by version there is answered
with FULL_STATE; a graceful hand-over loses nothing and keeps the epoch.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync.store import redis_keys as keys
from tests.api.livehttp import HttpClient
from tests.e2e.test_recovery import drop, resume
from tests.redis.local_cluster import LocalCluster, flush
from tests.redis.mirror import Mirror
from tests.redis.test_history_cluster import check_contiguous, history
from tests.services import need_redis
from tests.wsclient import Conn

pytestmark = [pytest.mark.redis, pytest.mark.asyncio]

#: the issue's bound: the failed shard's rooms resume within this many seconds
RESUME_WITHIN = 10.0


def _free_block(size: int = 6) -> int:
    """A first port of ``size`` free ports whose cluster bus ports (+10000) are free too."""
    for _ in range(50):
        base = random.randrange(17000, 19000)
        try:
            for port in (*range(base, base + size), *range(base + 10000, base + 10000 + size)):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free block of ports")


@pytest.fixture(scope="module")
def private_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    need_redis()
    cluster = LocalCluster(_free_block(), Path(tmp_path_factory.mktemp("cluster")))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def rooms_on_two_shards(cluster: LocalCluster, stem: str) -> tuple[str, str, int]:
    """A room on some primary, a room on another one, and the first one's primary."""
    first = f"{stem}-a"
    victim = cluster.primary_of(keys.meta_key(first))
    for n in range(100):
        other = f"{stem}-b{n}"
        if cluster.primary_of(keys.meta_key(other)) != victim:
            return first, other, victim
    raise AssertionError("every room on one shard")


class Player:
    """A client that updates its player at 20 Hz and mirrors the room (chain checked)."""

    def __init__(self, mirror: Mirror, room_id: str) -> None:
        self.mirror = mirror
        self.room_id = room_id
        self.arrivals: list[float] = []  # loop time of every DELTA_UPDATE
        self.full_at: list[float] = []
        self.epochs: list[str] = []
        self.sent = 0
        self.running = True

    async def drive(self) -> None:
        while self.running:
            self.sent += 1
            await self.mirror.conn.send({"type": "STATE_UPDATE", "roomId": self.room_id,
                                         "payload": {"n": self.sent}})
            await asyncio.sleep(0.05)

    async def read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frame = await self.mirror.conn.recv(30)
            self.mirror.feed(frame)
            if frame["type"] == "DELTA_UPDATE":
                self.arrivals.append(loop.time())
            elif frame["type"] == "FULL_STATE":
                self.full_at.append(loop.time())
                self.epochs.append(frame["payload"]["epoch"])

    def deltas_after(self, moment: float) -> int:
        return sum(1 for t in self.arrivals if t > moment)


async def open_players(servers: list, room_id: str) -> list[Player]:
    players = []
    for i, server in enumerate(servers):
        mirror = Mirror(await Conn.open(server.ws_url + f"?room={room_id}"), f"{room_id}/{i}")
        full = await mirror.conn.join(room_id, name=f"P{i}")
        mirror.feed(full)
        player = Player(mirror, room_id)
        player.full_at.append(asyncio.get_running_loop().time())
        player.epochs.append(full["payload"]["epoch"])
        players.append(player)
    return players


async def until(predicate: Any, what: str, limit: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        assert loop.time() < deadline, f"not within {limit} s: {what}"
        await asyncio.sleep(0.05)


async def run_failover(cluster_fixture: LocalCluster, servers: list, stem: str, *,
                       kill: bool) -> dict[str, Any]:
    """Load both rooms, fail the first one's shard over, check the contract; what the
    test asserts on top."""
    hit, spared, victim = rooms_on_two_shards(cluster_fixture, stem)
    players = {room: await open_players(servers, room) for room in (hit, spared)}
    everyone = [p for group in players.values() for p in group]
    tasks = [asyncio.create_task(p.read()) for p in everyone]
    tasks += [asyncio.create_task(p.drive()) for p in everyone]
    loop = asyncio.get_running_loop()
    try:
        await asyncio.sleep(1.0)  # steady load
        assert all(p.arrivals for p in everyone), "no load before the fail-over"
        failed_at = loop.time()
        if kill:
            cluster_fixture.kill(victim)
        else:
            replica = cluster_fixture.replica_of(victim)
            await asyncio.to_thread(cluster_fixture.failover, replica)
        # The failed shard's room resumes: each of its clients gets changes again after
        # its state was rebuilt (FULL_STATE), within the bound.
        hit_players = players[hit]

        def resumed() -> bool:
            return all(p.deltas_after(max([failed_at, *p.full_at[1:]])) >= 5
                       and (not kill or len(p.full_at) >= 2) for p in hit_players)

        await until(resumed, f"room {hit} resumes after its primary failed", RESUME_WITHIN)
        resumed_at = loop.time()
        print(f"fail-over ({'kill' if kill else 'CLUSTER FAILOVER'}): room {hit} resumed "
              f"{resumed_at - failed_at:.2f} s after it; other room's deltas meanwhile: "
              f"{[p.deltas_after(failed_at) for p in players[spared]]}")
        # The other room never paused: changes kept arriving all along, no rebuild.
        for player in players[spared]:
            window = [t for t in player.arrivals if failed_at < t <= resumed_at]
            assert len(window) >= 5, (player.mirror.name, len(window))
            assert len(player.full_at) == 1, player.mirror.name
            assert not player.mirror.errors, player.mirror.errors[:3]
    finally:
        for player in everyone:
            player.running = False
        await asyncio.sleep(0.5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for player in everyone:
        await player.mirror.pump(until_quiet=1.0)
    # Every process converged on each room (a fresh view is what every client holds).
    for room, group in players.items():
        for server in servers:
            view = Mirror(await Conn.open(server.ws_url), "view")
            await view.join(room, spectate=True)
            for player in group:
                assert player.mirror.version == view.version, (room, player.mirror.name)
                assert player.mirror.state == view.state, (room, player.mirror.name)
            await view.conn.close()
    return {"hit": hit, "spared": spared, "players": players}


async def test_killed_primary_other_shards_go_on_and_its_rooms_resume(
    private_cluster, cluster, room_id
):
    flush(private_cluster.url)
    servers = cluster(2, REDIS_URL=private_cluster.url, KASAGI_GRACE_PERIOD="30",
                      KASAGI_RATE_LIMIT="1000")
    result = await run_failover(private_cluster, servers, room_id, kill=True)
    hit, spared = result["players"][result["hit"]], result["players"][result["spared"]]
    # State may have been lost on the killed shard: its room has a new epoch, the other
    # room keeps its own; a resume by version with the old epoch is a FULL_STATE.
    for player in hit:
        assert len(set(player.epochs)) >= 2, player.epochs
    for player in spared:
        assert len(set(player.epochs)) == 1, player.epochs
    # §15: the history is the new timeline's, whatever versions the old one lost (a
    # record the replica never had would sit under a version the new timeline reuses).
    held = hit[1].mirror
    records = await history(servers[0], result["hit"], held.version)
    check_contiguous(records, held.version)
    answer = await asyncio.to_thread(HttpClient(servers[0].http_url).get,
                                     f"/api/rooms/{result['hit']}/state/?version={held.version}")
    assert answer.status == 200 and answer.json()["state"] == held.state, answer.text
    old = hit[0]
    await drop(old.mirror.conn)
    back, answer = await resume(servers[1].ws_url, result["hit"], old.mirror.token,
                                sinceVersion=old.mirror.version, epoch=old.epochs[0])
    assert answer["type"] == "FULL_STATE", answer
    assert answer["payload"]["epoch"] == hit[1].epochs[-1]
    await back.close()
    for player in spared:
        await player.mirror.conn.close()


async def test_cluster_failover_hands_over_without_loss(private_cluster, cluster, room_id):
    private_cluster.restart_dead()
    flush(private_cluster.url)
    servers = cluster(2, REDIS_URL=private_cluster.url, KASAGI_GRACE_PERIOD="30",
                      KASAGI_RATE_LIMIT="1000")
    result = await run_failover(private_cluster, servers, room_id, kill=False)
    for group in result["players"].values():
        for player in group:
            assert len(set(player.epochs)) == 1, player.epochs  # nothing could be lost
            await player.mirror.conn.close()
