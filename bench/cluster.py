"""Kasagi on Redis: N daphne processes, one workload split over them, rate by rate.

For each process count in ``--servers`` and each rate in ``--rates`` this
flushes the chosen Redis database, starts that many Kasagi processes with
``REDIS_URL`` (fresh, so no room carries players from the previous step), and
runs one ``bench.load`` per process at the same time, each with its share of
the clients and rooms under its own room prefix — sticky by room, as nginx's
``hash $arg_room consistent`` balances. A step passes when every process
delivered ≥ 99 % of the expected changes, with p99 under ``--p99-ms``, no
chain gap and every room converged; the report gives, per process count, the
highest passing rate (its capacity on this machine).

Prints a table per step and, as the last line, ``BENCH_CLUSTER {...}``.
Only ever starts servers on 127.0.0.1 and flushes only the Redis database
given (DB 12 by default, never 0), or a Redis Cluster on this machine (its
primaries). Every row also gives Redis's CPU (``INFO cpu`` of every primary) and
its CPU seconds per 1,000 script calls (the writes, ``INFO commandstats``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import redis

from bench.compare import (
    DAPHNE_OPTIONS,
    REPO,
    free_port,
    migrate,
    server_env,
    servers,
    stop,
    wait_for_port,
)
from bench.load import parse_result, raise_open_files_limit

RESULT_PREFIX = "BENCH_CLUSTER "


def is_cluster(redis_url: str) -> bool:
    with redis.Redis.from_url(redis_url, socket_timeout=2) as probe:
        info: Any = probe.info("cluster")
    return bool(info.get("cluster_enabled"))


def primaries(redis_url: str) -> list[redis.Redis]:
    """A client per primary: the one server, or every primary of a Redis Cluster."""
    if not is_cluster(redis_url):
        return [redis.Redis.from_url(redis_url, socket_timeout=5)]
    with redis.RedisCluster.from_url(redis_url, socket_timeout=5) as cluster:
        nodes = [(n.host, int(n.port)) for n in cluster.get_primaries()]
    return [redis.Redis(host=host, port=port, socket_timeout=5) for host, port in nodes]


def flush(redis_url: str) -> None:
    """Empty the bench's Redis: its database, or every primary of a cluster whose nodes
    are all on this machine (a cluster has database 0 only)."""
    cluster = is_cluster(redis_url)
    if not cluster and (urlsplit(redis_url).path or "/0").strip("/") in ("", "0"):
        raise SystemExit("refusing to flush Redis database 0: pass --redis-url …/<n>")
    nodes = primaries(redis_url)
    try:
        for node in nodes:
            if not cluster:
                node.flushdb()
                continue
            host = node.connection_pool.connection_kwargs.get("host")
            if host not in ("127.0.0.1", "localhost", "::1"):
                raise SystemExit(f"refusing to flush a cluster node on {host}")
            node.flushall()
    finally:
        for node in nodes:
            node.close()


def redis_usage(redis_url: str) -> tuple[float, int, int]:
    """(CPU seconds, script calls, commands) Redis has used so far, over every primary
    (``INFO cpu`` user + sys, ``INFO commandstats``: EVALSHA calls are the writes)."""
    cpu, scripts, commands = 0.0, 0, 0
    nodes = primaries(redis_url)
    try:
        for node in nodes:
            used: Any = node.info("cpu")
            stats: Any = node.info("commandstats")
            cpu += float(used["used_cpu_user"]) + float(used["used_cpu_sys"])
            scripts += int(stats.get("cmdstat_evalsha", {}).get("calls", 0))
            commands += sum(int(v.get("calls", 0)) for v in stats.values())
    finally:
        for node in nodes:
            node.close()
    return cpu, scripts, commands


def start(
    count: int, args: argparse.Namespace, workdir: Path
) -> list[tuple[subprocess.Popen, int]]:
    kasagi = servers(args, workdir)["kasagi"]
    kasagi.env["KASAGI_PERSISTENCE"] = "true" if args.persistence else "false"
    env = server_env(kasagi)
    migrate(env)
    started = []
    for n in range(count):
        port = free_port()
        log = open(workdir / f"kasagi-{n}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             *DAPHNE_OPTIONS, kasagi.asgi],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        started.append((proc, port))
    for proc, port in started:
        wait_for_port(port, proc)
    return started


def load(port: int, pid: int, prefix: str, clients: int, rooms: int, rate: float,
         args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "bench.load", "--json-only",
        "--url", f"ws://127.0.0.1:{port}/sync", "--pids", str(pid), "--room-prefix", prefix,
        "--clients", str(clients), "--rooms", str(rooms), "--rate", f"{rate:g}",
        "--duration", str(args.duration), "--warmup", str(args.warmup),
        "--procs", str(args.tool_procs),
    ]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bench.load failed on port {port}:\n{done.stderr[-3000:]}")
    return parse_result(done.stdout)


def step(count: int, rate: float, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    flush(args.redis_url)
    started = start(count, args, workdir)
    try:
        before = redis_usage(args.redis_url), time.monotonic()
        stamp = int(time.time()) % 1_000_000
        with ThreadPoolExecutor(count) as pool:
            futures = [
                pool.submit(load, port, proc.pid, f"cl{stamp}-{n}", args.clients // count,
                            args.rooms // count, rate, args)
                for n, (proc, port) in enumerate(started)
            ]
            results = [f.result() for f in futures]
        after = redis_usage(args.redis_url), time.monotonic()
    finally:
        for proc, _ in started:
            stop(proc)
    row = summarize(count, rate, results, args)
    (cpu0, scripts0, commands0), t0 = before
    (cpu1, scripts1, commands1), t1 = after
    writes = scripts1 - scripts0
    row["redis"] = {
        "primaries": len(primaries(args.redis_url)),
        "cpu_pct": round((cpu1 - cpu0) / (t1 - t0) * 100, 1),
        "script_calls": writes,
        "commands": commands1 - commands0,
        "cpu_s_per_1000_writes": round((cpu1 - cpu0) / writes * 1000, 4) if writes else None,
    }
    return row


def summarize(count: int, rate: float, results: list[dict[str, Any]],
              args: argparse.Namespace) -> dict[str, Any]:
    p99 = max(r["latency_ms"]["p99"] or 0 for r in results)
    ratio = min(r["delivery_ratio"] or 0 for r in results)
    gaps = sum(r["gaps"] for r in results)
    converged = sum(r["rooms_converged"] for r in results)
    rooms = sum(r["rooms_total"] for r in results)
    errors = sum(sum(r["errors"].values()) for r in results)
    return {
        "processes": count,
        "rate": rate,
        "updates_per_s": args.clients * rate,
        "deliveries_per_s": round(sum(r["deliveries_per_s"] for r in results)),
        "delivery_ratio": ratio,
        "p50_ms": [r["latency_ms"]["p50"] for r in results],
        "p99_ms": [r["latency_ms"]["p99"] for r in results],
        "gaps": gaps,
        "errors": errors,
        "rooms_converged": f"{converged}/{rooms}",
        "server_cpu_pct": [r["server"]["cpu_pct"] for r in results],
        "tool_cpu_pct": sum(r["tool"]["cpu_pct"] for r in results),
        "machine_busy_pct": max(r["machine"]["busy_pct"] or 0 for r in results),
        "passed": ratio >= 0.99 and p99 < args.p99_ms and gaps == 0 and converged == rooms,
    }


def line(row: dict[str, Any]) -> str:
    def ms(values: list[Any]) -> str:
        return " / ".join(f"{v:,.0f}" for v in values)

    return (
        f"{row['processes']} proc  {row['rate']:>5g} Hz  {row['updates_per_s']:>7,.0f} upd/s  "
        f"{row['deliveries_per_s']:>8,} deliv/s  ratio {row['delivery_ratio']:.3f}  "
        f"p50 {ms(row['p50_ms'])} ms  p99 {ms(row['p99_ms'])} ms  gaps {row['gaps']}  "
        f"conv {row['rooms_converged']}  cpu {ms(row['server_cpu_pct'])} %  "
        f"tool {row['tool_cpu_pct']:.0f} %  busy {row['machine_busy_pct']:.0f} %  "
        f"redis {row['redis']['primaries']}× {row['redis']['cpu_pct']:.0f} % "
        f"({row['redis']['cpu_s_per_1000_writes']} s/1000 writes)  "
        f"{'PASS' if row['passed'] else 'fail'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default="1,2", help="process counts to try, e.g. 1,2")
    parser.add_argument("--rates", default="4,8,12,16,20",
                        help="updates/s per client, tried in order")
    parser.add_argument("--clients", type=int, default=400)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--tool-procs", type=int, default=1,
                        help="bench.load worker processes per server process")
    parser.add_argument("--p99-ms", type=float, default=100.0)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12",
                        help="flushed before every step; a node of a Redis Cluster (all on "
                             "this machine) works too: its primaries are flushed and measured")
    parser.add_argument("--rate-limit", type=int, default=1000)
    parser.add_argument("--persistence", action="store_true",
                        help="keep database persistence on (SQLite in a temp dir)")
    parser.add_argument("--stop-on-fail", action="store_true",
                        help="stop a process count's sweep at its first failing rate")
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args(argv)

    raise_open_files_limit()
    workdir = Path(tempfile.mkdtemp(prefix="kasagi-cluster-"))
    rows: list[dict[str, Any]] = []
    try:
        for count in (int(x) for x in args.servers.split(",")):
            for rate in (float(x) for x in args.rates.split(",")):
                row = step(count, rate, args, workdir)
                rows.append(row)
                if not args.json_only:
                    print(line(row), flush=True)
                if args.stop_on_fail and not row["passed"]:
                    break
                time.sleep(1.0)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    capacity = {}
    for row in rows:
        if row["passed"]:
            key = str(row["processes"])
            capacity[key] = max(capacity.get(key, 0), row["updates_per_s"])
    summary = {"clients": args.clients, "rooms": args.rooms, "p99_target_ms": args.p99_ms,
               "capacity_updates_per_s": capacity, "rows": rows}
    if not args.json_only:
        for count, best in capacity.items():
            print(f"capacity with {count} process(es): {best:,.0f} updates/s within target")
    print(("" if args.json_only else RESULT_PREFIX) + orjson.dumps(summary).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
