"""The hub's flush cost for a room without views, this tree against another revision.

``python -m bench.views_cost --before <git revision>`` imports that revision's
``sync/hub.py`` as a second module (``git show``) and drives both hubs, in this
process, with the same changes: a workload-C room (20 members, 20 changes per
tick composed into one, no private fields), members with a null socket. It
prints each round's CPU seconds and the minimum of each. A check that the
view machinery costs rooms without views nothing (docs/performance.md).

``--room-type world`` measures the views' own work instead: a 1,000-member
``world`` room spread evenly (as ``bench.load --room-type world`` spreads it),
each tick's one-player moves published, then flushed to null sockets. It prints
CPU ms per tick of the publishes and of the flush, and encodings against members
per flush. Views by place live in ``sync/core`` as well as in the hub, so the
other revision runs in a subprocess, on a ``git archive`` of its tree.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.hot_path import NullMember
from sync import hub as current_hub
from sync.core.limits import Limits
from sync.core.room import Room
from sync.core.room_types import get_room_type

REPO = Path(__file__).resolve().parents[1]


def hub_of(revision: str) -> ModuleType:
    """``sync/hub.py`` at ``revision``, imported as ``sync._hub_<revision>``."""
    source = subprocess.run(["git", "show", f"{revision}:sync/hub.py"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "hub.py"
    path.write_text(source)
    name = f"sync._hub_{revision.replace('^', '_').replace('~', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def flush_seconds(module: Any, ticks: int, players: int) -> float:
    """CPU seconds of ``ticks`` publish+flush rounds of one room."""
    loop = asyncio.new_event_loop()
    hub = module.Hub(0.05)
    hub._loop = loop
    room_type = get_room_type("freeform")
    room = Room("r", room_type, Limits())
    for i in range(players):
        room.join(f"p{i}", {"x": i, "y": i, "playerName": f"bench-{i}"}, now=0)
    fanout = hub.room("r", lambda: (room.version, room.snapshot()), room_type=room_type)
    for i in range(players):
        member = NullMember(f"p{i}")
        fanout.attach(member)
        fanout.send_full_state(member, resumed=False)
    changes = [
        room.update_player(f"p{i}", {"x": t * 100 + i, "t": 1_700_000_000_000_000 + t, "s": t},
                           now=0, server=True)
        for t in range(ticks) for i in range(players)
    ]
    started = time.process_time()
    k = 0
    for _ in range(ticks):
        for _ in range(players):
            fanout.publish(changes[k])
            k += 1
        if fanout.handle is not None:
            fanout.handle.cancel()
            fanout.handle = None
        fanout.flush()
    spent = time.process_time() - started
    loop.close()
    return spent


def world_ticks(players: int, ticks: int, per_tick: int) -> dict[str, float]:
    """CPU ms per tick of publishing ``per_tick`` one-player moves and of the flush,
    in a ``world`` room of ``players`` members spread evenly; the view counters."""
    from bench import world
    from sync.metrics import METRICS

    loop = asyncio.new_event_loop()
    hub: Any = current_hub.Hub(0.05)  # driven with the bench's duck-typed members
    hub._loop = loop
    room_type = get_room_type("world")
    room = Room("r", room_type, Limits(max_players=players))
    side = world.world_side(players)
    spots: list[list[float]] = [list(world.world_spot(i, players, side)) for i in range(players)]
    for i, (x, y) in enumerate(spots):
        room.join(f"p{i}", {"x": x, "y": y, "playerName": f"bench-{i}"}, now=0)
    fanout = hub.room("r", lambda: (room.version, room.snapshot()), room_type=room_type)
    for i in range(players):
        member = NullMember(f"p{i}")
        fanout.attach(member)
        fanout.send_full_state(member, resumed=False)
    changes: list[list[Any]] = []
    k = 0
    for _ in range(ticks):  # bench.load's moves: 1 to 3 units per axis per update
        batch = []
        for _ in range(per_tick):
            i = k % players
            k += 1
            spot = spots[i]
            spot[0] = min(side, spot[0] + 1 + i % 3)
            spot[1] = min(side, spot[1] + 1 + (i // 3) % 3)
            batch.append(room.update_player(
                f"p{i}", {"x": spot[0], "y": spot[1], "t": 1_700_000_000_000_000 + k, "s": k},
                now=0, server=True))
        changes.append(batch)
    encodings, members = METRICS.flush_encodings, METRICS.flush_members
    publish = flush = 0.0
    for batch in changes:
        started = time.process_time()
        for change in batch:
            fanout.publish(change)
        published = time.process_time()
        if fanout.handle is not None:
            fanout.handle.cancel()
            fanout.handle = None
        fanout.flush()
        flush += time.process_time() - published
        publish += published - started
    loop.close()
    return {"publish_ms": publish * 1000 / ticks, "flush_ms": flush * 1000 / ticks,
            "encodings": (METRICS.flush_encodings - encodings) / ticks,
            "members": (METRICS.flush_members - members) / ticks}


def world_ticks_at(revision: str, players: int, ticks: int, per_tick: int) -> dict[str, float]:
    """:func:`world_ticks` on ``revision``'s tree (this file copied in), in a subprocess."""
    tree = Path(tempfile.mkdtemp())
    archive = subprocess.run(["git", "archive", revision, "sync", "bench"], cwd=REPO,
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    shutil.copy(Path(__file__), tree / "bench" / "views_cost.py")
    out = subprocess.run(
        [sys.executable, "-m", "bench.views_cost", "--room-type", "world", "--json",
         "--players", str(players), "--ticks", str(ticks), "--per-tick", str(per_tick)],
        cwd=tree, check=True, capture_output=True, text=True)
    shutil.rmtree(tree, ignore_errors=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def world_main(args: argparse.Namespace) -> int:
    if args.json:  # one measurement of this tree (the subprocess of world_ticks_at)
        print(json.dumps(world_ticks(args.players, args.ticks, args.per_tick)))
        return 0
    olds: list[dict[str, float]] = []
    news: list[dict[str, float]] = []
    for _ in range(args.rounds):
        for name, runs in (("before", olds), ("now", news)):
            if name == "before":
                runs.append(world_ticks_at(args.before, args.players, args.ticks, args.per_tick))
            else:
                runs.append(world_ticks(args.players, args.ticks, args.per_tick))
            r = runs[-1]
            print(f"{name:6} publish {r['publish_ms']:.2f} ms/tick  flush {r['flush_ms']:.2f} "
                  f"ms/tick  {r['encodings']:.1f} encodings for {r['members']:.0f} members",
                  flush=True)
    for name, runs in (("before", olds), ("now", news)):
        print(f"minimum {name}: publish {min(r['publish_ms'] for r in runs):.2f} ms/tick, "
              f"flush {min(r['flush_ms'] for r in runs):.2f} ms/tick")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.views_cost", description=__doc__)
    parser.add_argument("--before", help="git revision to compare with (required)")
    parser.add_argument("--rounds", type=int, help="default 12 (world: 3)")
    parser.add_argument("--ticks", type=int, help="default 3000 (world: 40)")
    parser.add_argument("--players", type=int, help="default 20 (world: 1000)")
    parser.add_argument("--room-type", choices=("freeform", "world"), default="freeform",
                        help="world: the views' own work in a 1,000-member world room")
    parser.add_argument("--per-tick", type=int, default=500,
                        help="--room-type world: changes per tick (10 Hz moves, 20 ticks/s)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    world = args.room_type == "world"
    for name, default, world_default in (
            ("rounds", 12, 3), ("ticks", 3000, 40), ("players", 20, 1000)):
        if getattr(args, name) is None:
            setattr(args, name, world_default if world else default)
    if args.before is None and not args.json:
        parser.error("--before is required")
    if world:
        return world_main(args)
    before = hub_of(args.before)
    olds, news = [], []
    for _ in range(args.rounds):
        olds.append(flush_seconds(before, args.ticks, args.players))
        news.append(flush_seconds(current_hub, args.ticks, args.players))
        print(f"before {olds[-1]:.4f} s  now {news[-1]:.4f} s", flush=True)
    print(f"minimum: before {min(olds):.4f} s, now {min(news):.4f} s "
          f"({(min(news) / min(olds) - 1) * 100:+.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
