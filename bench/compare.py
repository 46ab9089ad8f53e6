"""Run one workload against Kasagi, the tutorial-style baseline and Colyseus, and compare.

Each server is started in turn on a free loopback port (Kasagi after
``migrate`` into a throwaway SQLite file, or into a fresh PostgreSQL database
with ``--database-url``, with a rate limit high enough for the workload),
``bench.load`` runs against it with ``--pids`` of that server, and the server
is stopped before the next one starts, so they never compete for the two cores.
Prints a side-by-side table with ratios and, as the last line, one JSON object
(``BENCH_COMPARE {...}``, or bare with ``--json-only``).

Colyseus 0.16 (bench/colyseus) is a Node peer: its own server and its own load
tool (``load.mjs``: the same workload options, a result in bench.load's shape),
``--payload xyt`` only. Ratios are kasagi/<other> for every other server.

Only ever starts servers on 127.0.0.1 and points the load tool at them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from bench.load import add_workload_arguments, parse_result, raise_open_files_limit

REPO = Path(__file__).resolve().parent.parent
COLYSEUS = REPO / "bench" / "colyseus"
RESULT_PREFIX = "BENCH_COMPARE "
DAPHNE_OPTIONS = ["--ping-interval", "10", "--ping-timeout", "30"]

PRESETS: dict[str, dict[str, Any]] = {
    "A": {"clients": 50, "rooms": 5, "rate": 10},
    "B": {"clients": 200, "rooms": 20, "rate": 10},
    "C": {"clients": 400, "rooms": 20, "rate": 20},
    "light": {"clients": 50, "rooms": 5, "rate": 2},
    "idle": {"idle": 2000, "duration": 20},  # long enough to include server pings
}
WORKLOAD_OPTIONS = (
    "clients",
    "rooms",
    "rate",
    "payload",
    "room_type",
    "duration",
    "warmup",
    "drain",
    "idle",
    "procs",
    "connect_concurrency",
    "encoding",
    "messages_per_second",
    "world_spread",
    "observe",
)


@dataclass
class Server:
    """One server under test: how to prepare it and how to start daphne for it."""

    name: str
    asgi: str
    settings: str
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[dict[str, str]], None] | None = None


@dataclass(frozen=True)
class NodePeer:
    """A server under test that is not daphne: a Node server and its own load tool,
    which takes bench.load's workload options and prints a result in its shape."""

    name: str
    directory: Path
    server_script: str
    load_script: str


PEERS = {"colyseus": NodePeer("colyseus", COLYSEUS, "server.mjs", "load.mjs")}
#: ``--node-tool``: a Node load generator for Kasagi (it uses the Colyseus peer's ``ws``)
NODE_TOOL = COLYSEUS / "kasagi-load.mjs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not listen on port {port} within {timeout:g} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_env(server: Server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update({"DJANGO_SETTINGS_MODULE": server.settings, "PYTHONUNBUFFERED": "1"})
    env.update(server.env)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )


def fresh_database(url: str) -> Callable[[], None]:
    """Create the PostgreSQL database ``url`` names (refused if it exists: a bench never
    drops a database it did not make); returns the function that drops it."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if parts.scheme not in ("postgres", "postgresql") or not name:
        raise SystemExit(f"--database-url: not a postgresql://…/<database> URL: {url}")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))

    return drop


def servers(args: argparse.Namespace, workdir: Path) -> dict[str, Server]:
    redis = {"REDIS_URL": args.redis_url} if args.redis_url else {}
    database = getattr(args, "database_url", None) or f"sqlite:///{workdir / 'kasagi.sqlite3'}"
    return {
        "kasagi": Server(
            name="kasagi",
            asgi="kasagi_project.asgi:application",
            settings="kasagi_project.settings",
            env={
                "DATABASE_URL": database,
                "KASAGI_RATE_LIMIT": str(args.rate_limit),
                "KASAGI_RATE_BURST": str(args.rate_limit * 2),
                "DJANGO_DEBUG": "false",
                **redis,
            },
            prepare=migrate,
        ),
        "baseline": Server(
            name="baseline",
            asgi="bench.baseline.asgi:application",
            settings="bench.baseline.settings",
            env=redis,
        ),
    }


def room_prefix(name: str) -> str:
    return f"cmp-{name}-{int(time.time()) % 1000000}"


def run_one(server: Server, load_args: list[str], workdir: Path, quiet: bool,
            node_tool: bool = False) -> dict[str, Any]:
    """A daphne server and bench.load against it (or, with ``node_tool``, the Node load
    generator ``bench/colyseus/kasagi-load.mjs``: the same workload for a fraction of the
    tool's CPU, so that on a small machine the tool does not take the server's cores)."""
    env = server_env(server)
    if server.prepare is not None:
        server.prepare(env)

    def load_argv(port: int, pid: int) -> list[str]:
        common = ["--json-only", "--url", f"ws://127.0.0.1:{port}/sync",
                  "--room-prefix", room_prefix(server.name), *load_args]
        if node_tool:
            node = shutil.which("node")
            if node is None:
                raise RuntimeError("--node-tool needs node on PATH")
            return [node, str(NODE_TOOL), "--pid", str(pid), *common]
        return [sys.executable, "-m", "bench.load", "--pids", str(pid), *common]

    return measure(
        server.name,
        lambda port: [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                      *DAPHNE_OPTIONS, server.asgi],
        load_argv, REPO, env, workdir, quiet,
    )


def run_peer(peer: NodePeer, load_args: list[str], workdir: Path, quiet: bool) -> dict[str, Any]:
    """A Node peer (Colyseus) and its own load tool, after ``npm ci`` if it never ran."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError(f"{peer.name} needs node on PATH")
    if not (peer.directory / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=peer.directory, check=True)
    return measure(
        peer.name,
        lambda port: [node, peer.server_script, str(port)],
        lambda port, pid: [node, peer.load_script, "--json-only",
                           "--url", f"ws://127.0.0.1:{port}", "--pid", str(pid),
                           "--room-prefix", room_prefix(peer.name), *load_args],
        peer.directory, dict(os.environ), workdir, quiet,
    )


def measure(
    name: str,
    server_argv: Callable[[int], list[str]],
    load_argv: Callable[[int, int], list[str]],
    cwd: Path,
    env: dict[str, str],
    workdir: Path,
    quiet: bool,
) -> dict[str, Any]:
    """Start one server on a free port, run its load tool against it, stop the server."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            server_argv(port), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, proc)
        if not quiet:
            print(f"== {name}: server pid {proc.pid} on port {port}", file=sys.stderr)
        done = subprocess.run(load_argv(port, proc.pid), cwd=cwd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the load tool failed against {name}:\n{done.stderr[-3000:]}")
        return parse_result(done.stdout)
    except Exception:
        print(f"server log kept at {log_path}", file=sys.stderr)
        raise
    finally:
        stop(proc)


# --------------------------------------------------------------------------
# The side-by-side table
# --------------------------------------------------------------------------

Row = tuple[str, Callable[[dict[str, Any]], Any], str]  # label, getter, better ("high"/"low"/"")

LOAD_ROWS: list[Row] = [
    ("deliveries/s", lambda r: r["deliveries_per_s"], "high"),
    ("delivery ratio", lambda r: r["delivery_ratio"], "high"),
    ("latency p50 (ms)", lambda r: r["latency_ms"]["p50"], "low"),
    ("latency p90 (ms)", lambda r: r["latency_ms"]["p90"], "low"),
    ("latency p99 (ms)", lambda r: r["latency_ms"]["p99"], "low"),
    ("latency max (ms)", lambda r: r["latency_ms"]["max"], "low"),
    ("server CPU s / 1000 deliveries", lambda r: r["server"]["cpu_s_per_1000_deliveries"], "low"),
    ("server CPU %", lambda r: r["server"]["cpu_pct"], ""),
    ("server RSS (MB)", lambda r: r["server"]["rss_mb"], "low"),
    ("frames received/s", lambda r: r["frames_rx_per_s"], ""),
    ("bytes rx / client / s", lambda r: r["bytes_rx_per_client_per_s"], "low"),
    ("wire bytes rx / client / s", lambda r: r.get("wire_bytes_rx_per_client_per_s"), "low"),
    # xyt: a server that falls behind merges more moves per patch and sends fewer bytes,
    # so read bytes next to how many of the others' changes each client got
    ("changes received/s (xyt)", lambda r: r.get("changes_rx_per_s"), "high"),
    ("wire bytes / change received", lambda r: wire_bytes_per_change(r), "low"),
    ("chain gaps", lambda r: r["gaps"], "low"),
    ("resynced deliveries", lambda r: r["resynced"], "low"),
    ("errors", lambda r: sum(r["errors"].values()), "low"),
    ("rooms converged", lambda r: f"{r['rooms_converged']}/{r['rooms_total']}", ""),
    ("caught up after drain", lambda r: "yes" if r["quiet_at_end"] else "no", ""),
    ("connect+join p99 (ms)", lambda r: r["connect_ms"]["p99"], "low"),
    ("tool CPU % (busiest proc)", lambda r: r["tool"]["max_proc_cpu_pct"], ""),
]
IDLE_ROWS: list[Row] = [
    ("connections", lambda r: r["idle"]["connections"], "high"),
    ("time to open all (s)", lambda r: r["idle"]["open_s"], "low"),
    ("connect+join p50 (ms)", lambda r: r["connect_ms"]["p50"], "low"),
    ("connect+join p99 (ms)", lambda r: r["connect_ms"]["p99"], "low"),
    ("server RSS before (MB)", lambda r: r["idle"]["rss_mb_before"], ""),
    ("server RSS joined (MB)", lambda r: r["idle"]["rss_mb_joined"], "low"),
    ("server RSS per connection (KiB)", lambda r: r["idle"]["rss_kb_per_connection"], "low"),
    ("server CPU % while idle", lambda r: r["server"]["cpu_pct"], "low"),
    ("chain gaps", lambda r: r["gaps"], "low"),
    ("rooms converged", lambda r: f"{r['rooms_converged']}/{r['rooms_total']}", ""),
]


def wire_bytes_per_change(result: dict[str, Any]) -> float | None:
    """xyt: wire bytes received over the other members' changes received (all clients)."""
    wire, changes = result.get("wire_bytes_rx_per_client_per_s"), result.get("changes_rx_per_s")
    if wire is None or not changes:
        return None
    return round(wire * result["clients"] / changes, 2)


def cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return round(a / b, 3)
    return None


def others(names: list[str]) -> list[str]:
    """The servers Kasagi is divided by (every other one, when Kasagi ran)."""
    return [n for n in names if n != "kasagi"] if "kasagi" in names else []


def compare_rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per metric: each server's value and ``ratios`` kasagi/<other> (``ratio``
    too when there is exactly one other)."""
    any_result = next(iter(results.values()))
    rows = IDLE_ROWS if any_result["mode"] == "idle" else LOAD_ROWS
    divisors = others(list(results))
    out = []
    for label, get, better in rows:
        values = {name: get(r) for name, r in results.items()}
        row: dict[str, Any] = {"metric": label, "better": better, **values}
        if divisors:
            row["ratios"] = {n: ratio(values["kasagi"], values[n]) for n in divisors}
            if len(divisors) == 1:
                row["ratio"] = row["ratios"][divisors[0]]
        out.append(row)
    return out


def render(rows: list[dict[str, Any]], names: list[str], title: str) -> str:
    divisors = others(names)
    header = ["metric", *names] + [f"kasagi/{n}" for n in divisors]
    body = []
    for row in rows:
        line = [row["metric"], *(cell(row[n]) for n in names)]
        for i, n in enumerate(divisors):
            r = row["ratios"][n]
            last = i == len(divisors) - 1
            line.append(
                ""
                if r is None
                else f"{r:,.3g}x"
                + (f" ({row['better']} is better)" if row["better"] and last else "")
            )
        body.append(line)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for line in body:
        lines.append(
            "  ".join(
                [line[0].ljust(widths[0])]
                + [x.rjust(w) for x, w in zip(line[1:], widths[1:], strict=True)]
            )
        )
    return "\n".join(lines)


def load_arguments(args: argparse.Namespace) -> list[str]:
    """The bench.load options: the preset, overridden by what was given explicitly."""
    chosen = dict(PRESETS.get(args.preset or "", {}))
    for name in WORKLOAD_OPTIONS:
        value = getattr(args, name)
        if value is not None:
            chosen[name] = value
    out: list[str] = []
    for name, value in chosen.items():
        out += [f"--{name.replace('_', '-')}", str(value)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="A: 50/5/10 Hz, B: 200/20/10 Hz, C: 400/20/20 Hz, "
        "light: 50/5/2 Hz, idle: 2000 idle connections",
    )
    add_workload_arguments(parser)
    parser.set_defaults(**{name: None for name in WORKLOAD_OPTIONS})
    parser.add_argument(
        "--servers",
        default="kasagi,baseline",
        help="comma-separated, in run order (kasagi, baseline, colyseus: --payload xyt only)",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=1000,
        help="KASAGI_RATE_LIMIT for the Kasagi server (burst is twice this)",
    )
    parser.add_argument(
        "--redis-url",
        default=None,
        help="run both servers with this REDIS_URL (Redis channel layer)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="run Kasagi on PostgreSQL: postgresql://user@host:port/NAME, a database "
        "that must not exist yet; it is created, migrated, and dropped after (unless --keep)",
    )
    parser.add_argument(
        "--node-tool", action="store_true",
        help="drive the daphne servers with the Node load generator (bench/colyseus/"
        "kasagi-load.mjs: JSON, --payload move) instead of bench.load",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, database)")
    parser.add_argument("--json-only", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)

    raise_open_files_limit()
    load_args = load_arguments(args)
    peers = [n for n in (n.strip() for n in args.servers.split(",")) if n in PEERS]
    workload = dict(zip(load_args[::2], load_args[1::2], strict=True))
    if peers and (workload.get("--payload") != "xyt" or "--idle" in workload):
        parser.error(f"{', '.join(peers)} runs only --payload xyt (not idle)")
    workdir = Path(tempfile.mkdtemp(prefix="kasagi-compare-"))
    available: dict[str, Server | NodePeer] = {**servers(args, workdir), **PEERS}
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        parser.error(f"unknown server(s): {', '.join(unknown)}")
    results: dict[str, dict[str, Any]] = {}
    drop_database = fresh_database(args.database_url) if args.database_url else None
    try:
        for name in names:
            target = available[name]
            if isinstance(target, NodePeer):
                results[name] = run_peer(target, load_args, workdir, args.json_only)
            else:
                results[name] = run_one(target, load_args, workdir, args.json_only,
                                        node_tool=args.node_tool)
            if len(names) > 1:
                time.sleep(1.0)  # let the machine settle between servers
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
            if drop_database is not None:
                drop_database()

    rows = compare_rows(results)
    summary = {"preset": args.preset, "load_args": load_args, "rows": rows, "results": results}
    if args.json_only:
        print(orjson.dumps(summary).decode())
        return 0
    print(render(rows, names, f"bench.compare  preset {args.preset or '-'}  {' '.join(load_args)}"))
    if peers:
        print(f"({', '.join(peers)}: its own encoding; --encoding applies to Kasagi and the"
              " baseline. xyt: deliveries = in-window moves x members)")
    if args.keep:
        print(f"logs and database in {workdir}")
    print(RESULT_PREFIX + orjson.dumps(summary).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
