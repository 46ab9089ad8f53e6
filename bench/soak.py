"""A long run at workload B against one Kasagi process, sampling its RSS (not in CI).

    python -m bench.soak                      # 10 minutes, 200 clients, 20 rooms, 10 Hz
    python -m bench.soak --duration 120 --interval 5

Starts Kasagi exactly as ``bench.compare`` does (throwaway SQLite, daphne on a
free loopback port), runs ``bench.load`` for ``--duration`` seconds and
samples the server's RSS every ``--interval`` seconds. Prints the RSS series,
the growth after warm-up (the first 20 % of the run), and the load tool's
gaps, delivery ratio and convergence; the last line is ``BENCH_SOAK {...}``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from bench.compare import REPO, free_port, server_env, servers, stop, wait_for_port
from bench.load import parse_result, proc_rss_bytes, raise_open_files_limit


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
    args = parser.parse_args(argv)
    raise_open_files_limit()

    workdir = Path(tempfile.mkdtemp(prefix="kasagi-soak-"))
    server = servers(argparse.Namespace(redis_url=args.redis_url, rate_limit=args.rate_limit),
                     workdir)["kasagi"]
    env = server_env(server)
    assert server.prepare is not None
    server.prepare(env)
    port = free_port()
    with open(workdir / "kasagi.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "--ping-interval", "10", "--ping-timeout", "30", server.asgi],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        start = time.monotonic()
        while not done.wait(args.interval):
            rss = proc_rss_bytes((proc.pid,))
            if rss is not None:
                samples.append((round(time.monotonic() - start, 1), round(rss / 2**20, 1)))

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
        "gaps": result["gaps"],
        "delivery_ratio": result["delivery_ratio"],
        "latency_ms": result["latency_ms"],
        "cpu_s_per_1000_deliveries": result["server"]["cpu_s_per_1000_deliveries"],
        "rooms_converged": f"{result['rooms_converged']}/{result['rooms_total']}",
        "all_converged": result["all_converged"],
    }
    print("rss (s, MB):", " ".join(f"{t:g}:{mb:g}" for t, mb in samples))
    print(f"rss growth after warm-up: {growth} MB; gaps {result['gaps']}; delivery ratio "
          f"{result['delivery_ratio']}; p99 {result['latency_ms']['p99']} ms; rooms converged "
          f"{summary['rooms_converged']}")
    print("BENCH_SOAK " + orjson.dumps(summary).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
