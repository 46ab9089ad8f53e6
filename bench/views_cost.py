"""The hub's flush cost for a room without views, this tree against another revision.

``python -m bench.views_cost --before <git revision>`` imports that revision's
``sync/hub.py`` as a second module (``git show``) and drives both hubs, in this
process, with the same changes: a workload-C room (20 members, 20 changes per
tick composed into one, no private fields), members with a null socket. It
prints each round's CPU seconds and the minimum of each. A check that the
view machinery costs rooms without views nothing (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from sync import hub as current_hub
from sync.core.codec import JSON
from sync.core.limits import Limits
from sync.core.room import Room
from sync.core.room_types import get_room_type

REPO = Path(__file__).resolve().parents[1]


class _Writer:
    def write(self, data: bytes, binary: bool = False) -> None:
        pass

    def backlog(self) -> int:
        return 0

    async def close(self, code: int, reason: str) -> None:
        pass


class _Member:
    def __init__(self, player_id: str) -> None:
        self.player_id: str | None = player_id
        self.session_token = None
        self.writer = _Writer()
        self.codec = JSON
        self.synced_version = -1
        self.lag = None
        self.needs_full_state = False

    def on_detached(self, room_id: str, reason: str) -> None:
        pass


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
        member = _Member(f"p{i}")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.views_cost", description=__doc__)
    parser.add_argument("--before", required=True, help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--ticks", type=int, default=3000)
    parser.add_argument("--players", type=int, default=20)
    args = parser.parse_args(argv)
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
