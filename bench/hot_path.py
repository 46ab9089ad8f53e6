"""CPU per inbound STATE_UPDATE on the in-memory path, in process, without sockets.

``python -m bench.hot_path [--rounds 7] [--ticks 200] [--members 20]`` drives the
real objects with workload C's traffic (each member sends ``{"x", "y", "t"}``
merge patches: ``x``, ``y`` integers random-walking ±5 inside 0..1000 from 500,
``t`` epoch milliseconds as a float; a room's 20 members each send one per 50 ms
tick) and prints µs per operation, the minimum of ``--rounds`` rounds (the
machine is shared: the minimum is the figure to compare):

- ``parse``: ``decode_json`` + ``parse_envelope`` of one JSON STATE_UPDATE frame;
- ``consumer._parse``: the same through ``SyncConsumer._parse`` (rate bucket,
  frame size, metrics), on a consumer without a socket;
- ``room.update_player``: ``Room.update_player`` alone on a 20-player room;
- ``store.update``: ``MemoryRoomStore.update`` (the room, ``ChangeLog.append``,
  ``Hub.publish`` → ``RoomFanout.publish``) with 20 members attached to the fan-out;
- ``consumer.on_frame``: the same updates as JSON frames through ``SyncConsumer.on_frame``
  (what the fast reader calls for each frame: ``_parse``, the dispatch, ``store.update``);
- ``flush / tick``: one ``RoomFanout.flush`` of a tick's 20 changes to the 20 members
  (null sockets), per tick, not per update;

for a ``freeform`` room and a ``world`` room (the plane's speed rule, grid interest
and its views). The store is rebuilt each round; its setup is not timed.

``--before <git revision>`` also measures that revision (a ``git archive`` of its
``sync`` in a temporary directory, this file copied in, in a subprocess), taking
turns with this tree round by round, and prints both minimums and the change.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

from sync.consumer import INLINE_WITH_STORE, SyncConsumer
from sync.core.changes import Author
from sync.core.codec import JSON, decode_json
from sync.core.envelope import StateUpdate, parse_envelope
from sync.core.limits import Limits
from sync.core.room import Room
from sync.core.room_types import get_room_type
from sync.directory import ANONYMOUS, MemoryDirectory, RoomConfig
from sync.hub import Hub
from sync.ratelimit import TokenBucket
from sync.store.base import NullPersistence
from sync.store.memory import MemoryRoomStore

FRAME = b'{"type":"STATE_UPDATE","roomId":"r1","payload":{"x":512,"y":488,"t":1764800000123.25}}'


class NullWriter:
    """A socket that takes every frame and never backs up (also bench.views_cost's)."""

    def write(self, data: bytes, binary: bool = False) -> None:
        pass

    def backlog(self) -> int:
        return 0

    async def close(self, code: int, reason: str) -> None:
        pass


class NullMember:
    """What the hub needs of a connection, with a null socket (also bench.views_cost's)."""

    def __init__(self, player_id: str | None = None) -> None:
        self.player_id: str | None = player_id
        self.session_token: str | None = None
        self.writer = NullWriter()
        self.codec = JSON
        self.synced_version = -1
        self.lag = None
        self.needs_full_state = False

    def on_detached(self, room_id: str, reason: str) -> None:
        pass


def moves(members: int, ticks: int, seed: int = 17) -> list[list[dict[str, Any]]]:
    """Per tick, one ``{"x", "y", "t"}`` patch per member (bench.load's ``xyt``)."""
    rng = random.Random(seed)
    spots = [[500, 500] for _ in range(members)]
    t = 1_764_800_000_000.0
    out = []
    for _ in range(ticks):
        tick = []
        for spot in spots:
            spot[0] = min(1000, max(0, spot[0] + rng.randint(-5, 5)))
            spot[1] = min(1000, max(0, spot[1] + rng.randint(-5, 5)))
            t += 2.5
            tick.append({"x": spot[0], "y": spot[1], "t": t})
        out.append(tick)
    return out


def run(step: Any) -> Any:
    """A coroutine that never suspends, run to its end (as the consumer's inline path)."""
    try:
        step.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the step suspended")


def timed(fn: Callable[[], None], rounds: int, ops: int) -> float:
    """Minimum over ``rounds`` of µs per op of ``fn`` (which does ``ops`` ops)."""
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best * 1e6 / ops


def bench_parse(rounds: int, n: int) -> dict[str, float]:
    limits = Limits()
    frames = [FRAME] * n

    def parse() -> None:
        for raw in frames:
            parse_envelope(decode_json(raw), limits)

    consumer = SyncConsumer()
    consumer.bucket = TokenBucket(1e12, 10**12)
    consumer.inbound = JSON.inbound()
    consumer.runtime = SimpleNamespace(limits=limits)  # type: ignore[assignment]

    def consumer_parse() -> None:
        p = consumer._parse
        for raw in frames:
            p(raw)

    return {"parse": timed(parse, rounds, n),
            "consumer._parse": timed(consumer_parse, rounds, n)}


def limits_for(members: int) -> Limits:
    """The default limits, with room for ``members`` players (``--members 1000``)."""
    return Limits(max_players=max(Limits().max_players, members))


def fields_of(i: int) -> dict[str, Any]:
    return {"x": 500, "y": 500, "playerName": f"bench-{i}"}


def bench_room(room_type: str, members: int, ticks: int, rounds: int) -> float:
    """µs per ``Room.update_player`` of the workload's patches."""
    best = float("inf")
    for _ in range(rounds):
        room = Room("r1", get_room_type(room_type), limits_for(members), now=time.monotonic())
        players = [f"p{i}" for i in range(members)]
        for i, pid in enumerate(players):
            room.join(pid, fields_of(i), now=time.monotonic())
        work = moves(members, ticks)
        gc.collect()
        update = room.update_player
        started = time.perf_counter()
        for tick in work:
            now = time.monotonic()
            for pid, patch in zip(players, tick, strict=True):
                update(pid, patch, now=now)
        best = min(best, time.perf_counter() - started)
    return best * 1e6 / (members * ticks)


def consumers_for(store: MemoryRoomStore, conns: list[NullMember]) -> list[SyncConsumer]:
    """A ``SyncConsumer`` per member, in its room, without a socket (its inline path)."""
    runtime = SimpleNamespace(limits=store.limits, store=store)
    out = []
    for conn in conns:
        consumer = SyncConsumer()
        consumer.bucket = TokenBucket(1e12, 10**12)
        consumer.codec = JSON
        consumer.inbound = JSON.inbound()  # as the consumer's connect sets it
        consumer.runtime = runtime  # type: ignore[assignment]
        consumer.writer = conn.writer
        consumer.busy = False
        consumer.inline_types = INLINE_WITH_STORE
        consumer.room_id, consumer.closed_room = "r1", None
        consumer.player_id, consumer.session_token = conn.player_id, conn.session_token
        consumer.author = Author.player(player_id=conn.player_id)
        consumer.reader = None
        out.append(consumer)
    return out


def store_round(
    room_type: str, members: int, ticks: int, *, frames: bool = False,
) -> tuple[float, float]:
    """One round: seconds in ``store.update`` (``frames``: in ``SyncConsumer.on_frame``
    of the JSON frames, parse and dispatch included) and in the flushes."""
    loop = asyncio.new_event_loop()
    hub = Hub(0.05)
    hub._loop = loop
    directory = MemoryDirectory()
    directory.configs["r1"] = RoomConfig("r1", name="r1", room_type=room_type)
    store = MemoryRoomStore(hub, directory, limits=limits_for(members), grace_seconds=30.0,
                            persistence=NullPersistence())
    conns = [NullMember() for _ in range(members)]

    async def setup() -> None:
        await store.activate("r1", who=ANONYMOUS, create=True)
        for i, conn in enumerate(conns):
            joined = await store.join("r1", fields_of(i), who=ANONYMOUS, session_token=None,
                                      connection=conn)
            conn.player_id, conn.session_token = joined.player_id, joined.session_token

    loop.run_until_complete(setup())
    fanout = store.fanout("r1")
    for conn in conns:
        fanout.attach(conn)
        fanout.send_full_state(conn, resumed=False)
    work = [[StateUpdate("r1", patch) for patch in tick] for tick in moves(members, ticks)]
    raws = [[orjson.dumps({"type": "STATE_UPDATE", "roomId": "r1", "payload": patch})
             for patch in tick] for tick in moves(members, ticks)]
    consumers = consumers_for(store, conns)
    players = [conn.player_id for conn in conns]
    update = store.update
    spent_update = spent_flush = 0.0
    gc.collect()
    for k, tick in enumerate(work):
        started = time.perf_counter()
        if frames:
            for consumer, raw in zip(consumers, raws[k], strict=True):
                consumer.on_frame(raw)
        else:
            for pid, message in zip(players, tick, strict=True):
                run(update("r1", pid, message))  # type: ignore[arg-type]
        published = time.perf_counter()
        if fanout.handle is not None:
            fanout.handle.cancel()
            fanout.handle = None
        fanout.flush()
        spent_flush += time.perf_counter() - published
        spent_update += published - started
    loop.close()
    return spent_update, spent_flush


def bench_store(room_type: str, members: int, ticks: int, rounds: int) -> dict[str, float]:
    results = [store_round(room_type, members, ticks) for _ in range(rounds)]
    framed = [store_round(room_type, members, ticks, frames=True)[0] for _ in range(rounds)]
    return {"store.update": min(r[0] for r in results) * 1e6 / (members * ticks),
            "consumer.on_frame": min(framed) * 1e6 / (members * ticks),
            "flush / tick": min(r[1] for r in results) * 1e6 / ticks}


REPO = Path(__file__).resolve().parents[1]


def measure(rounds: int, ticks: int, members: int) -> dict[str, float]:
    """Every figure of this tree, each the minimum of ``rounds`` rounds."""
    n = members * ticks
    results = bench_parse(rounds, n)
    for room_type in ("freeform", "world"):
        results[f"{room_type} room.update_player"] = bench_room(
            room_type, members, ticks, rounds)
        for name, value in bench_store(room_type, members, ticks, rounds).items():
            results[f"{room_type} {name}"] = value
    return results


def tree_of(revision: str) -> Path:
    """``sync`` and ``bench`` at ``revision`` in a temporary directory, this file copied in."""
    tree = Path(tempfile.mkdtemp())
    archive = subprocess.run(["git", "archive", revision, "sync", "bench"], cwd=REPO,
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    shutil.copy(Path(__file__), tree / "bench" / "hot_path.py")
    return tree


def measure_at(tree: Path, rounds: int, ticks: int, members: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.hot_path", "--json", "--rounds", str(rounds),
         "--ticks", str(ticks), "--members", str(members)],
        cwd=tree, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hot_path", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ticks", type=int, default=200, help="ticks per round")
    parser.add_argument("--members", type=int, default=20, help="members of the room")
    parser.add_argument("--before", help="git revision to compare with, round by round")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)
    if args.before is not None:
        return compare(args)
    results = measure(args.rounds, args.ticks, args.members)
    if args.json:
        print(orjson.dumps(results).decode())
        return 0
    for name, value in results.items():
        print(f"{name:32} {value:8.2f} µs")
    return 0


def compare(args: argparse.Namespace) -> int:
    tree = tree_of(args.before)
    olds: list[dict[str, float]] = []
    news: list[dict[str, float]] = []
    try:
        for _ in range(args.rounds):  # taking turns: the machine is shared
            olds.append(measure_at(tree, 2, args.ticks, args.members))
            news.append(measure(2, args.ticks, args.members))
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    print(f"{'':32} {args.before[:12]:>9} {'now':>9}")
    for name in news[0]:
        old = min(r[name] for r in olds)
        new = min(r[name] for r in news)
        print(f"{name:32} {old:8.2f}  {new:8.2f} µs  ({(new / old - 1) * 100:+.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
