"""What server-side ticks cost: ``--tick-rooms`` rooms of the bench type ``ticker`` (20 Hz).

Starts one Kasagi process itself (daphne on a free loopback port, in memory,
SQLite in a throwaway directory, as ``bench.compare`` does), creates the
ticker rooms (``games/room_types.py``: each tick moves a ball entity, one
server change), and runs three phases on that one process:

1. **C alone**: ``bench.load`` with workload C (400 clients, 20 rooms, 20 Hz;
   options below) and no ticker room loaded: the reference p99.
2. **ticks alone**: one spectator per ticker room (the first join loads the
   room and starts its tick), ``--duration`` seconds, nothing else.
3. **ticks + C**: the same ticking rooms while workload C runs again.

For the ticks it reads the server's own histograms on ``/metrics`` before and
after each phase: ``kasagi_room_code_seconds{room_type="ticker",hook="on_tick"}``
(the time inside ``on_tick``, per room per call: mean from sum/count, quantiles
from the buckets) and ``kasagi_room_tick_lateness_seconds`` (how late each tick
ran against its fixed grid: its spread is the drift; an interval between two
ticks is the period plus the difference of their lateness). The spectators
count the ball's tick number ``n`` they receive, so ticks skipped by a stalled
loop would show as fewer than 20 a second. Prints a table and, as the last
line, one JSON object (``BENCH_RESULT {...}``, or bare with ``--json-only``).

Only ever starts a server on 127.0.0.1 and points the tools at it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from bench.compare import (
    DAPHNE_OPTIONS,
    REPO,
    Server,
    free_port,
    migrate,
    server_env,
    stop,
    wait_for_port,
)
from bench.load import (
    RESULT_PREFIX,
    fmt,
    open_socket,
    parse_result,
    proc_cpu_seconds,
    raise_open_files_limit,
)

TICK_METRIC = "kasagi_room_code_seconds"
LATENESS_METRIC = "kasagi_room_tick_lateness_seconds"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

#: one histogram as read from /metrics: {"buckets": [(le, cumulative)], "sum", "count"}
Histogram = dict[str, Any]


# --------------------------------------------------------------------------
# /metrics
# --------------------------------------------------------------------------


def scrape(http_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics``: (name, labels) → value."""
    with urllib.request.urlopen(f"{http_url}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match is None or line.startswith("#"):
            continue
        name, labels, value = match.groups()
        samples[(name, frozenset(LABEL.findall(labels or "")))] = float(value)
    return samples


def histogram(samples: dict[Any, float], name: str, **labels: str) -> Histogram:
    """One histogram's buckets, sum and count, selected by ``labels``."""
    want = set(labels.items())
    buckets = []
    total = count = 0.0
    for (metric, found), value in samples.items():
        if not want <= set(found):
            continue
        if metric == f"{name}_bucket":
            le = dict(found)["le"]
            buckets.append((float("inf") if le == "+Inf" else float(le), value))
        elif metric == f"{name}_sum":
            total = value
        elif metric == f"{name}_count":
            count = value
    return {"buckets": sorted(buckets), "sum": total, "count": count}


def difference(after: Histogram, before: Histogram) -> Histogram:
    old = dict(before["buckets"])
    return {
        "buckets": [(le, n - old.get(le, 0.0)) for le, n in after["buckets"]],
        "sum": after["sum"] - before["sum"],
        "count": after["count"] - before["count"],
    }


def quantile(h: Histogram, q: float) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` (None when empty)."""
    if h["count"] <= 0:
        return None
    for le, cumulative in h["buckets"]:
        if cumulative >= q * h["count"]:
            return le
    return None


def summarise(h: Histogram, scale: float, unit: str) -> dict[str, Any]:
    """Count, mean and bucket quantiles of a histogram difference, in ``unit``."""
    def scaled(value: float | None) -> float | None:
        if value is None:
            return None
        return None if value == float("inf") else round(value * scale, 4)

    count = int(h["count"])
    return {
        "unit": unit,
        "count": count,
        "mean": round(h["sum"] / count * scale, 4) if count else None,
        "p50_le": scaled(quantile(h, 0.5)),
        "p90_le": scaled(quantile(h, 0.9)),
        "p99_le": scaled(quantile(h, 0.99)),
        "max_le": scaled(_max_bucket(h)),
        "top_bucket": scaled(_top_finite(h)),
        "over_top_bucket": int(h["count"] - _cumulative_at(h, _top_finite(h))),
        "buckets": [(None if le == float("inf") else le, int(n)) for le, n in h["buckets"]],
    }


def _top_finite(h: Histogram) -> float | None:
    finite = [le for le, _ in h["buckets"] if le != float("inf")]
    return finite[-1] if finite else None


def _cumulative_at(h: Histogram, le: float | None) -> float:
    return dict(h["buckets"]).get(le, 0.0) if le is not None else 0.0


def _max_bucket(h: Histogram) -> float | None:
    """Upper bound of the highest non-empty bucket (the largest value lies below it)."""
    previous = 0.0
    top = None
    for le, cumulative in h["buckets"]:
        if cumulative > previous:
            top = le
        previous = cumulative
    return top


# --------------------------------------------------------------------------
# The spectators that keep the ticker rooms loaded and count their ticks
# --------------------------------------------------------------------------


class Holders:
    """One spectator per ticker room; records the ball's tick number ``n`` it receives."""

    def __init__(self, ws_url: str, rooms: list[str]) -> None:
        self.ws_url = ws_url
        self.rooms = rooms
        self.ticks: dict[str, int] = {}
        self.frames = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.sockets: list[Any] = []

    async def start(self) -> None:
        joined = [asyncio.get_running_loop().create_future() for _ in self.rooms]
        for room, ready in zip(self.rooms, joined, strict=True):
            ws = await open_socket(self.ws_url, 30)
            self.sockets.append(ws)
            self.tasks.append(asyncio.create_task(self.read(ws, room, ready)))
            await ws.send(orjson.dumps(
                {"type": "JOIN_ROOM", "roomId": room, "payload": {"spectate": True}}), text=True)
        await asyncio.wait_for(asyncio.gather(*joined), 60)

    async def read(self, ws: Any, room: str, ready: asyncio.Future[None]) -> None:
        loads = orjson.loads
        try:
            async for data in ws:
                self.frames += 1
                msg = loads(data)
                kind = msg.get("type")
                if kind == "FULL_STATE":
                    ball = (msg["payload"]["state"].get("entities") or {}).get("ball") or {}
                    self.ticks[room] = int(ball.get("n", 0))
                    if not ready.done():
                        ready.set_result(None)
                elif kind == "DELTA_UPDATE":
                    ball = (msg["payload"].get("entities") or {}).get("ball")
                    if type(ball) is dict and "n" in ball:
                        self.ticks[room] = ball["n"]
                elif kind == "ERROR" and not ready.done():
                    ready.set_exception(RuntimeError(f"{room}: {msg['payload']}"))
        except Exception:
            return

    def snapshot(self) -> dict[str, int]:
        return dict(self.ticks)

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self.tasks:
            task.cancel()


def tick_progress(before: dict[str, int], after: dict[str, int], seconds: float,
                  rate: float) -> dict[str, Any]:
    """Ticks each room made between two snapshots, against ``rate`` per second."""
    per_room = sorted((after[r] - before.get(r, after[r])) / seconds for r in after)
    if not per_room:
        return {"rooms": 0}
    return {
        "rooms": len(per_room),
        "expected_per_room_per_s": rate,
        "min_per_room_per_s": round(per_room[0], 2),
        "median_per_room_per_s": round(per_room[len(per_room) // 2], 2),
        "max_per_room_per_s": round(per_room[-1], 2),
    }


# --------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------


def load_command(args: argparse.Namespace, ws_url: str, pid: int, prefix: str) -> list[str]:
    return [
        sys.executable, "-m", "bench.load", "--json-only", "--url", ws_url, "--pids", str(pid),
        "--room-prefix", prefix, "--clients", str(args.clients), "--rooms", str(args.rooms),
        "--rate", str(args.rate), "--duration", str(args.duration), "--warmup", str(args.warmup),
        "--procs", str(args.procs),
    ]


async def run_load(args: argparse.Namespace, ws_url: str, pid: int, prefix: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        *load_command(args, ws_url, pid, prefix), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench.load failed:\n{err.decode()[-3000:]}")
    return parse_result(out.decode())


def tick_metrics(before: dict[Any, float], after: dict[Any, float]) -> dict[str, Any]:
    cost = difference(histogram(after, TICK_METRIC, room_type="ticker", hook="on_tick"),
                      histogram(before, TICK_METRIC, room_type="ticker", hook="on_tick"))
    late = difference(histogram(after, LATENESS_METRIC), histogram(before, LATENESS_METRIC))
    return {"on_tick_ms": summarise(cost, 1000, "ms"), "lateness_ms": summarise(late, 1000, "ms")}


def load_summary(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "clients": result["clients"],
        "deliveries_per_s": result["deliveries_per_s"],
        "delivery_ratio": result["delivery_ratio"],
        "latency_ms": result["latency_ms"],
        "gaps": result["gaps"],
        "rooms_converged": f"{result['rooms_converged']}/{result['rooms_total']}",
        "server_cpu_pct": result["server"]["cpu_pct"],
        "tool_max_proc_cpu_pct": result["tool"]["max_proc_cpu_pct"],
        "machine_busy_pct": result["machine"]["busy_pct"],
    }


async def phases(args: argparse.Namespace, http_url: str, ws_url: str, pid: int,
                 tick_rooms: list[str]) -> dict[str, Any]:
    stamp = int(time.time()) % 1000000
    out: dict[str, Any] = {}
    if not args.skip_alone:
        out["c_alone"] = load_summary(await run_load(args, ws_url, pid, f"ticks-c0-{stamp}"))
        await asyncio.sleep(1.0)

    holders = Holders(ws_url, tick_rooms)
    await holders.start()
    await asyncio.sleep(args.warmup)  # every room ticking

    before, ticks_before, cpu_before, t0 = scrape(http_url), holders.snapshot(), \
        proc_cpu_seconds((pid,)), time.monotonic()
    await asyncio.sleep(args.duration)
    after, ticks_after, cpu_after, t1 = scrape(http_url), holders.snapshot(), \
        proc_cpu_seconds((pid,)), time.monotonic()
    out["ticks_alone"] = {
        **tick_metrics(before, after),
        "ticks_seen": tick_progress(ticks_before, ticks_after, t1 - t0, args.tick_rate),
        "server_cpu_pct": round((cpu_after - cpu_before) / (t1 - t0) * 100, 1)
        if cpu_after is not None and cpu_before is not None else None,
    }

    before, ticks_before, t0 = scrape(http_url), holders.snapshot(), time.monotonic()
    loaded = await run_load(args, ws_url, pid, f"ticks-c1-{stamp}")
    after, ticks_after, t1 = scrape(http_url), holders.snapshot(), time.monotonic()
    out["ticks_with_c"] = {
        **tick_metrics(before, after),
        "ticks_seen": tick_progress(ticks_before, ticks_after, t1 - t0, args.tick_rate),
        "load": load_summary(loaded),
    }
    out["holder_frames"] = holders.frames
    await holders.close()
    return out


def create_rooms(env: dict[str, str], prefix: str, count: int) -> list[str]:
    """The ticker rooms, through the same service the REST API uses (no owner)."""
    script = (
        "from rooms.services import room_create\n"
        f"for i in range({count}):\n"
        f"    room_create(by=None, room_id=f'{prefix}-{{i}}', room_type='ticker')\n"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=REPO, env=env,
                   check=True, capture_output=True)
    return [f"{prefix}-{i}" for i in range(count)]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    raise_open_files_limit()
    workdir = Path(tempfile.mkdtemp(prefix="kasagi-ticks-"))
    server = Server(
        name="kasagi", asgi="kasagi_project.asgi:application", settings="kasagi_project.settings",
        env={"DATABASE_URL": f"sqlite:///{workdir / 'kasagi.sqlite3'}",
             "KASAGI_RATE_LIMIT": "1000", "KASAGI_RATE_BURST": "2000", "DJANGO_DEBUG": "false"},
    )
    env = server_env(server)
    env.pop("REDIS_URL", None)
    migrate(env)
    tick_rooms = create_rooms(env, "ticker", args.tick_rooms)
    port = free_port()
    with open(workdir / "daphne.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             *DAPHNE_OPTIONS, server.asgi],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc)
        if not args.json_only:
            print(f"== daphne pid {proc.pid} on port {port}", file=sys.stderr)
        measured = asyncio.run(phases(args, f"http://127.0.0.1:{port}",
                                      f"ws://127.0.0.1:{port}/sync", proc.pid, tick_rooms))
    except Exception:
        print(f"server log kept at {workdir}", file=sys.stderr)
        raise
    finally:
        stop(proc)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "bench": "kasagi-bench-ticks",
        "config": {k: v for k, v in vars(args).items() if k != "json_only"},
        "cores": os.cpu_count(),
        **measured,
    }


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def tick_lines(label: str, phase: dict[str, Any]) -> list[str]:
    cost, late, seen = phase["on_tick_ms"], phase["lateness_ms"], phase["ticks_seen"]
    return [
        f"  {label}",
        f"    on_tick per room per call   mean {fmt(cost['mean'], ' ms')}  "
        f"p50 <= {fmt(cost['p50_le'])}  p99 <= {fmt(cost['p99_le'])} ms  (n={fmt(cost['count'])})",
        f"    tick lateness (drift)       mean {fmt(late['mean'], ' ms')}  p50 <= "
        f"{fmt(late['p50_le'])}  p99 <= {fmt(late['p99_le'])}  max <= {fmt(late['max_le'])} ms"
        f"  ({fmt(late['over_top_bucket'])} over {fmt(late['top_bucket'])} ms)",
        f"    ticks seen per room per s   min {fmt(seen.get('min_per_room_per_s'))}  median "
        f"{fmt(seen.get('median_per_room_per_s'))}  (expected "
        f"{fmt(seen.get('expected_per_room_per_s'))}, {seen['rooms']} rooms)",
    ]


def load_line(label: str, load: dict[str, Any]) -> str:
    lat = load["latency_ms"]
    return (
        f"  {label:<28}p50 {fmt(lat['p50'])}  p99 {fmt(lat['p99'])} ms, delivered "
        f"{fmt(100 * (load['delivery_ratio'] or 0), ' %')}, gaps {load['gaps']}, converged "
        f"{load['rooms_converged']}, server cpu {fmt(load['server_cpu_pct'], ' %')}, machine "
        f"busy {fmt(load['machine_busy_pct'], ' %')}"
    )


def table(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lines = [
        f"Kasagi tick bench: {cfg['tick_rooms']} ticker rooms at {cfg['tick_rate']:g} Hz, "
        f"workload {cfg['clients']} clients / {cfg['rooms']} rooms / {cfg['rate']:g} Hz, "
        f"one process, {result['cores']} cores",
    ]
    if "c_alone" in result:
        lines.append(load_line("workload alone", result["c_alone"]))
    lines.append(load_line("workload + ticking rooms", result["ticks_with_c"]["load"]))
    alone = result["ticks_alone"]
    lines += tick_lines(f"ticks alone (server cpu {fmt(alone['server_cpu_pct'], ' %')})", alone)
    lines += tick_lines("ticks during the workload", result["ticks_with_c"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ticks",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--tick-rooms", type=int, default=200, help="ticker rooms (20 Hz each)")
    parser.add_argument("--clients", type=int, default=400, help="workload clients (C: 400)")
    parser.add_argument("--rooms", type=int, default=20, help="workload rooms (C: 20)")
    parser.add_argument("--rate", type=float, default=20.0, help="workload Hz (C: 20)")
    parser.add_argument("--procs", type=int, default=2, help="bench.load worker processes")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds")
    parser.add_argument("--skip-alone", action="store_true",
                        help="skip phase 1 (the workload without ticking rooms)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (log, database)")
    parser.add_argument("--json-only", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    args.tick_rate = 20.0  # TickerRoomType.tick_rate
    result = measure(args)
    line = orjson.dumps(result).decode()
    if not args.json_only:
        print(table(result))
    print(line if args.json_only else RESULT_PREFIX + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
