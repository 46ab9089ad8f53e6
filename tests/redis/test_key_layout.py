"""The key layout holds on a real Redis: every command the store sends, and every
command its Lua scripts run, stays in one hash slot (what Redis Cluster needs), and
every key has a documented shape (docs/scaling.md, ``sync/store/redis_keys.py``).

Redis's ``MONITOR`` shows the commands of this test's database as the server runs
them, script commands included (``[db lua]`` lines right after their EVALSHA), and
``COMMAND GETKEYS`` names their keys: nothing is inferred from our own code.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlparse

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from sync.core.changes import LeaveReason
from sync.core.envelope import StateUpdate
from sync.core.limits import Limits
from sync.directory import Identity, MemoryDirectory, RoomConfig
from sync.hub import Hub
from sync.store import redis_keys as keys
from sync.store.redis import RedisRoomStore
from sync.store.redis_docs import SCRIPTS as DOC_SCRIPTS
from sync.store.redis_scripts import ROOM_SCRIPTS
from tests.redis.local_cluster import is_cluster

pytestmark = pytest.mark.redis

#: every key shape (docs/scaling.md's table)
LAYOUT = [
    re.compile(rb"kasagi:room:\{[^{}]+\}:(meta|obj|ov|init|conn|tok|bytoken|log|grace|snap|runner|fence|code|handled|docs|docpos)"),
    re.compile(rb"kasagi:room:\{[^{}]+\}:turn:[pe]:.+"),
    re.compile(rb"kasagi:proc:\{[^{}]+\}(:players|:wake)?"),
    re.compile(rb"kasagi:(procs|graces)"),
]
#: the scripts ``drive`` must run (the test is not vacuous)
EXERCISED = {"commit", "join", "leave", "disconnect", "resume", "orphan", "seed", "load", "reset",
             "close", "lease", *DOC_SCRIPTS}
#: the one multi-slot command: the reader's XREAD over its rooms' logs (docs/scaling.md)
MULTI_SLOT = {b"XREAD"}
_ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b"}


def unrepr(quoted: bytes) -> bytes:
    """One MONITOR argument (sdscatrepr) back to its bytes."""
    out, i = bytearray(), 0
    while i < len(quoted):
        char = quoted[i:i + 1]
        if char != b"\\":
            out += char
            i += 1
            continue
        nxt = quoted[i + 1:i + 2]
        if nxt == b"x":
            out.append(int(quoted[i + 2:i + 4], 16))
            i += 4
        else:
            out += _ESCAPES.get(nxt, nxt)
            i += 2
    return bytes(out)


class Monitor:
    """The commands Redis runs in one database, as (source, args) pairs."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.db = int((parsed.path or "/0").lstrip("/") or 0)
        self.connection = aioredis.Connection(
            host=parsed.hostname or "127.0.0.1", port=parsed.port or 6379, db=self.db)
        self.commands: list[tuple[str, list[bytes]]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> Monitor:
        await self.connection.connect()
        await self.connection.send_command("MONITOR")
        assert await self.connection.read_response() == b"OK"
        self._task = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        mark = f" [{self.db} ".encode()
        while True:
            line = await self.connection.read_response()
            if mark not in line:
                continue  # another database on the same server
            source = "lua" if line.split(mark, 1)[1].startswith(b"lua]") else "client"
            self.commands.append((source, [unrepr(a) for a in _ARG.findall(line)]))

    async def stop(self) -> None:
        await asyncio.sleep(0.3)  # the last lines are on the wire
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.connection.disconnect()


class Socket:
    """Stands for a WebSocket consumer (the store only keeps it and calls back)."""

    def __init__(self) -> None:
        self.detached: list[str] = []

    def on_detached(self, room_id: str, reason: str) -> None:
        self.detached.append(reason)


def new_store(url: str, directory: MemoryDirectory, grace: float) -> RedisRoomStore:
    return RedisRoomStore(Hub(0.05), directory, limits=Limits(), grace_seconds=grace,
                          redis_url=url, snapshot_interval=0.2)


async def until(predicate: Any, what: str, limit: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        assert loop.time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


async def drive(url: str, room_id: str) -> None:
    """Every store path that talks to Redis, across three processes' stores."""
    directory = MemoryDirectory()
    directory.configs[room_id] = RoomConfig(room_id)
    a, b, dead = (new_store(url, directory, 0.2) for _ in range(3))
    nobody = Identity()
    try:
        await a.activate(room_id, who=nobody, create=False)
        one = await a.join(room_id, {"x": 1}, who=nobody, session_token=None,
                           connection=Socket())
        two = await a.join(room_id, {"x": 2}, who=nobody, session_token=None,
                           connection=Socket())
        await a.update(room_id, one.player_id, StateUpdate(room_id, {"x": 3}))
        await a.update(room_id, one.player_id, StateUpdate(room_id, {}, entity_id="flag"))
        # §16: a document update (a Y entry), its compaction, a clear
        hi = b"\x01\x01\x01\x00\x04\x01\x04note\x02hi\x00"  # "hi" typed into a Y.Text
        await a.doc_update(room_id, one.player_id, "note", hi)
        await a.documents.compact(every=True)
        await a.clear_document(room_id, "note")
        # A resume on another process takes the player over, then its socket closes.
        await b.activate(room_id, who=nobody, create=False)
        resumed = await b.join(room_id, {}, who=nobody, session_token=one.session_token,
                               connection=Socket())
        assert resumed.resumed and resumed.player_id == one.player_id
        await b.disconnect(room_id, one.player_id, b.local[room_id, one.player_id].connection)
        await until(lambda: one.player_id not in a.rooms[room_id].room.players,
                    "the grace period of a closed socket ends")
        # A process that dies with a player: reaped by another one's janitor.
        await dead.activate(room_id, who=nobody, create=False)
        three = await dead.join(room_id, {}, who=nobody, session_token=None,
                                connection=Socket())
        await dead.stop()
        await a.redis.delete(keys.heartbeat_key(dead.proc))
        await b.janitor.reap_dead()
        await until(lambda: three.player_id not in a.rooms[room_id].room.players,
                    "a dead process's player times out")
        # Server-side operations, a snapshot from Redis, a lease, the close.
        await b.server_update_entity(room_id, "banner", {"text": "hi"})
        await b.server_update_player(room_id, two.player_id, {"score": 1})
        await b.reset(room_id, {"entities": {"banner": {"text": "round 2"}}})
        await b.reconfigure(room_id)
        assert (await b.snapshot(room_id)) is not None
        await a.janitor.renew_leases()
        await a.kick(room_id, two.player_id)
        again = await a.join(room_id, {}, who=nobody, session_token=None, connection=Socket())
        await a.leave(room_id, again.player_id, LeaveReason.LEFT)
        await a.join(room_id, {}, who=nobody, session_token=None, connection=Socket())
        await b.close(room_id)
        await a.janitor.expire_graces()
    finally:
        await a.stop()
        await b.stop()


async def test_every_command_and_script_stays_in_one_slot(redis_url, room_id):
    if is_cluster(redis_url):  # MONITOR sees one node; the cluster refuses CROSSSLOT itself
        pytest.skip("watches one Redis server with MONITOR")
    monitor = await Monitor(redis_url).start()
    try:
        await drive(redis_url, room_id)
    finally:
        await monitor.stop()

    client = aioredis.Redis.from_url(redis_url)
    store = new_store(redis_url, MemoryDirectory(), 1)
    shas = {s.sha.encode(): name for name, s in store.scripts._room.items()}
    shas |= {s.sha.encode(): name for name, s in store.scripts._plain.items()}
    shas |= {s.sha.encode(): name for name, s in DOC_SCRIPTS.items()}
    await store.stop()

    ran: set[str] = set()
    script_slot: int | None = None
    script = ""
    seen_keys: set[bytes] = set()
    try:
        for source, args in monitor.commands:
            name = args[0].upper()
            if name in (b"SELECT", b"MONITOR", b"PING", b"SCRIPT", b"CLIENT", b"HELLO", b"INFO"):
                continue
            command_keys = [k.encode() if isinstance(k, str) else k
                            for k in await client.command_getkeys(*args)] if len(args) > 1 else []
            seen_keys.update(command_keys)
            slots = {key_slot(k) for k in command_keys}
            if source == "lua":
                assert slots <= {script_slot}, f"{script}.lua touched another slot: {args}"
                continue
            script_slot = None
            if name == b"EVALSHA":
                script = shas[args[1]]
                ran.add(script)
                assert len(slots) == 1, f"a script's KEYS span {len(slots)} slots: {args}"
                script_slot = slots.pop()
            elif name not in MULTI_SLOT:
                assert len(slots) <= 1, f"{name.decode()} spans {len(slots)} slots: {args}"
    finally:
        await client.aclose()

    # Scripts this scenario does not reach (room code's runner, recovery's ``since``) are
    # checked all the same whenever a test here makes them run.
    assert not EXERCISED - ran, f"not exercised: {EXERCISED - ran}"
    assert not EXERCISED - {*ROOM_SCRIPTS, "lease", *DOC_SCRIPTS}, "a script was renamed"
    undocumented = [k for k in seen_keys if not any(p.fullmatch(k) for p in LAYOUT)]
    assert not undocumented, f"keys outside the documented layout: {undocumented}"
