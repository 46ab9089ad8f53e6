"""Documents (§16) on two processes sharing one Redis: concurrent editors on both
converge, each update reaches each member exactly once, and the documents survive a
restart of both processes, from the compacted state and the log (sync/store/redis_docs.py)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
import redis
from pycrdt import Doc, Text

from sync.store import redis_keys as keys
from tests.interop.test_yjs import PycrdtPeer
from tests.persistence.livedb import LiveDB, eventually
from tests.persistence.test_documents import stored, text_in
from tests.redis.local_cluster import is_cluster
from tests.wsclient import Conn

pytestmark = [pytest.mark.redis, pytest.mark.asyncio, pytest.mark.timeout(120)]

FAST = {"KASAGI_RATE_LIMIT": "10000", "KASAGI_RATE_BURST": "10000"}


async def peer_on(server: Any, room_id: str, name: str) -> PycrdtPeer:
    conn = await Conn.open(server.ws_url)
    await conn.join(room_id, playerName=name)
    peer = PycrdtPeer(conn, room_id)
    await peer.sync()
    return peer


async def until(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.05)


async def edit_concurrently(peers: list[PycrdtPeer], edits: int) -> None:
    async def drive(index: int, peer: PycrdtPeer) -> None:
        rng = random.Random(index)
        for n in range(edits):
            await peer.edit(rng)
            if n % 5 == 0:
                await asyncio.sleep(0.002)
        await peer.request("PING", {})

    await asyncio.gather(*(drive(i, p) for i, p in enumerate(peers)))


def text_of_state(state: bytes) -> str:
    doc: Doc = Doc()
    doc.apply_update(state)
    return str(doc.get("note", type=Text))


async def test_editors_on_two_processes_converge_and_survive_a_restart_of_both(
    cluster, redis_url, room_id, live_database_url,
):
    servers = cluster(2, REDIS_URL=redis_url, **FAST)
    peers = [await peer_on(servers[i % 2], room_id, f"p{i}") for i in range(4)]
    await edit_concurrently(peers, 60)
    total = sum(p.sent for p in peers)
    # every update reaches every other member once, whichever process it is on
    await until(lambda: all(p.received == total - p.sent for p in peers), "every relay")
    await asyncio.sleep(0.5)
    assert [p.received for p in peers] == [total - p.sent for p in peers]  # and only once
    texts = {str(p.text) for p in peers}
    assert len(texts) == 1 and len(texts.pop()) > 20
    text = str(peers[0].text)
    # the snapshot-lease holder writes the merged document to the database too
    live_db = LiveDB(live_database_url)

    def row_has_text() -> bool:
        state = stored(live_db, room_id).get("note")
        return state is not None and text_in(state) == text

    await eventually(row_has_text, what="the document's row")
    for peer in peers:
        peer.reader.cancel()
        await peer.conn.close()

    for server in servers:
        assert server.stop() == 0, server.log()
    for server in servers:
        server.start()
    for server in servers:  # a late joiner on each restarted process gets all of it
        late = await peer_on(server, room_id, "late")
        assert str(late.text) == text
        assert late.conn.seen[0]["payload"]["docs"] == ["note"]
        late.reader.cancel()
    for server in servers:  # (SQLite's "database is locked" between two writers is retried)
        assert "handler failed" not in server.log() and "ERROR sync" not in server.log()


async def test_the_compacted_state_holds_every_update(cluster, redis_url, room_id):
    servers = cluster(2, REDIS_URL=redis_url, KASAGI_SNAPSHOT_INTERVAL="0.2", **FAST)
    peers = [await peer_on(servers[i % 2], room_id, f"p{i}") for i in range(4)]
    await edit_concurrently(peers, 40)
    total = sum(p.sent for p in peers)
    await until(lambda: all(p.received == total - p.sent for p in peers), "every relay")
    text = str(peers[0].text)
    client: Any = (redis.RedisCluster.from_url(redis_url) if is_cluster(redis_url)
                   else redis.Redis.from_url(redis_url))
    try:
        def compacted() -> bool:
            state = client.hget(keys.docs_key(room_id), "note")
            return state is not None and text_of_state(state) == text

        await until(compacted, "the merged document in Redis")
        for server in servers:
            assert server.stop() == 0, server.log()
        # with the log emptied, only the compacted state can bring the document back
        client.xtrim(keys.log_key(room_id), maxlen=0)
        for server in servers:
            server.start()
        late = await peer_on(servers[1], room_id, "late")
        assert str(late.text) == text
        late.reader.cancel()
    finally:
        client.close()
