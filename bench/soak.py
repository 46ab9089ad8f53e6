"""A long run at workload B against one Kasagi process, sampling its RSS and the
history table (not in CI).

    python -m bench.soak                      # 10 minutes, 200 clients, 20 rooms, 10 Hz
    python -m bench.soak --duration 120 --interval 5
    KASAGI_HISTORY_KEPT=2000 python -m bench.soak   # retention reached within minutes
    python -m bench.soak --database-url postgresql://postgres@127.0.0.1:5432/kasagi_soak

Starts Kasagi exactly as ``bench.compare`` does (throwaway SQLite or a fresh
PostgreSQL database, daphne on a free loopback port), runs ``bench.load`` for
``--duration`` seconds and samples every ``--interval`` seconds the server's RSS
and the history (§15): records in ``HistoryChunk``, the most any room holds, and the
bytes of the table (SQLite: the database file and its WAL). Prints both series,
the growth after warm-up (the first 20 % of the run), and the load tool's gaps,
delivery ratio and convergence; the last line is ``BENCH_SOAK {...}``. The
server's settings come from the environment (``KASAGI_HISTORY``,
``KASAGI_HISTORY_KEPT``...).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path

import orjson

from bench.compare import (
    REPO,
    free_port,
    fresh_database,
    server_env,
    servers,
    stop,
    wait_for_port,
)
from bench.load import parse_result, proc_rss_bytes, raise_open_files_limit

HISTORY_TABLE = "rooms_historychunk"


def history_sample(database_url: str) -> tuple[int, int, int] | None:
    """(records, most records of one room, bytes) of the history table, read beside
    the server (SQLite in WAL mode lets a reader in); None when it cannot be read yet."""
    count = (f"SELECT count(*), coalesce(max(n), 0) FROM (SELECT sum(count) AS n "
             f"FROM {HISTORY_TABLE} GROUP BY room_id) AS per_room")
    total = f"SELECT coalesce(sum(count), 0) FROM {HISTORY_TABLE}"
    try:
        if database_url.startswith("sqlite:///"):
            path = database_url.removeprefix("sqlite:///")
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
                _, most = conn.execute(count).fetchone()
                rows = conn.execute(total).fetchone()[0]
            size = sum(os.path.getsize(path + tail) for tail in ("", "-wal")
                       if os.path.exists(path + tail))
            return rows, most, size
        import psycopg

        with psycopg.connect(database_url) as conn:
            _, most = conn.execute(count).fetchone()
            rows = conn.execute(total).fetchone()[0]
            size = conn.execute(f"SELECT pg_total_relation_size('{HISTORY_TABLE}')").fetchone()[0]
            return rows, most, size
    except Exception:  # the table is not there yet, or locked for a moment: skip a sample
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--rate-limit", type=int, default=1000)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument(
        "--database-url", default=None,
        help="PostgreSQL database to create for the run and drop after (as bench.compare)",
    )
    args = parser.parse_args(argv)
    raise_open_files_limit()

    workdir = Path(tempfile.mkdtemp(prefix="kasagi-soak-"))
    server = servers(argparse.Namespace(redis_url=args.redis_url, rate_limit=args.rate_limit,
                                        database_url=args.database_url), workdir)["kasagi"]
    env = server_env(server)
    database_url = env["DATABASE_URL"]
    drop_database = fresh_database(args.database_url) if args.database_url else None
    try:
        assert server.prepare is not None
        server.prepare(env)
        return soak(args, server.asgi, env, workdir, database_url)
    finally:
        if drop_database is not None:
            drop_database()


def soak(
    args: argparse.Namespace, asgi: str, env: dict[str, str], workdir: Path, database_url: str,
) -> int:
    port = free_port()
    with open(workdir / "kasagi.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "--ping-interval", "10", "--ping-timeout", "30", asgi],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    samples: list[tuple[float, float]] = []
    #: (seconds, history rows, most rows of one room, table MB)
    history: list[tuple[float, int, int, float]] = []
    done = threading.Event()

    def sample() -> None:
        start = time.monotonic()
        while not done.wait(args.interval):
            at = round(time.monotonic() - start, 1)
            rss = proc_rss_bytes((proc.pid,))
            if rss is not None:
                samples.append((at, round(rss / 2**20, 1)))
            table = history_sample(database_url)
            if table is not None:
                history.append((at, table[0], table[1], round(table[2] / 2**20, 2)))

    try:
        wait_for_port(port, proc)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        load = subprocess.run(
            [sys.executable, "-m", "bench.load", "--json-only", "--url",
             f"ws://127.0.0.1:{port}/sync", "--pids", str(proc.pid),
             "--clients", str(args.clients), "--rooms", str(args.rooms),
             "--rate", str(args.rate), "--duration", str(args.duration), "--warmup", "5"],
            cwd=REPO, capture_output=True, text=True,
        )
        done.set()
        if load.returncode != 0:
            print(load.stderr[-3000:], file=sys.stderr)
            return 1
        result = parse_result(load.stdout)
    finally:
        done.set()
        stop(proc)

    after_warmup = [mb for t, mb in samples if t >= 0.2 * args.duration]
    growth = round(after_warmup[-1] - after_warmup[0], 1) if len(after_warmup) > 1 else None
    summary = {
        "duration_s": args.duration,
        "rss_mb": samples,
        "rss_growth_after_warmup_mb": growth,
        "history": {"samples": history, "columns": ["s", "rows", "max_rows_per_room", "mb"],
                    "max_rows": max((h[1] for h in history), default=None),
                    "max_rows_per_room": max((h[2] for h in history), default=None)},
        "gaps": result["gaps"],
        "delivery_ratio": result["delivery_ratio"],
        "latency_ms": result["latency_ms"],
        "cpu_s_per_1000_deliveries": result["server"]["cpu_s_per_1000_deliveries"],
        "rooms_converged": f"{result['rooms_converged']}/{result['rooms_total']}",
        "all_converged": result["all_converged"],
    }
    print("rss (s, MB):", " ".join(f"{t:g}:{mb:g}" for t, mb in samples))
    print("history (s, rows, most in a room, MB):",
          " ".join(f"{t:g}:{rows}/{most}/{mb:g}" for t, rows, most, mb in history))
    print(f"rss growth after warm-up: {growth} MB; gaps {result['gaps']}; delivery ratio "
          f"{result['delivery_ratio']}; p99 {result['latency_ms']['p99']} ms; rooms converged "
          f"{summary['rooms_converged']}")
    print("BENCH_SOAK " + orjson.dumps(summary).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
