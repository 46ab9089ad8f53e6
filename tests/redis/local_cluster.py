"""A Redis Cluster on loopback ports for tests and CI: three primaries, three replicas.

CI starts one for its cluster pass (``python -m tests.redis.local_cluster start``);
the fail-over tests start a private one they may kill nodes of. Nodes keep nothing
on disk but their ``nodes.conf`` in a work directory of their own.

    python -m tests.redis.local_cluster start [--port 7100] [--dir DIR]   # prints the URL
    python -m tests.redis.local_cluster stop  [--port 7100] [--dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

#: milliseconds a primary may be unreachable before its replica takes over
NODE_TIMEOUT_MS = 2000


class LocalCluster:
    """``size`` nodes on ``port`` … ``port + size - 1``; ``start`` creates the cluster."""

    def __init__(self, port: int, workdir: Path, *, size: int = 6,
                 node_timeout_ms: int = NODE_TIMEOUT_MS) -> None:
        self.ports = list(range(port, port + size))
        self.workdir = workdir
        self.node_timeout_ms = node_timeout_ms
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start_node(self, port: int, *, wait: bool = True) -> None:
        node_dir = self.workdir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(port),
             "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(self.node_timeout_ms),
             "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0",
             "--dir", str(node_dir),
             "--logfile", str(node_dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        if wait:
            self.wait_up(port)

    def wait_up(self, port: int) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5) as client:
                    client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {port} did not start") from None
                time.sleep(0.05)

    def start(self) -> LocalCluster:
        for port in self.ports:
            shutil.rmtree(self.workdir / str(port), ignore_errors=True)  # a new cluster
            self.start_node(port, wait=False)
        for port in self.ports:
            self.wait_up(port)
        subprocess.run(
            [shutil.which("redis-cli") or "redis-cli", "--cluster", "create",
             *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-replicas", "1",
             "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
        )
        self.wait_healthy()
        return self

    def wait_healthy(self, limit: float = 30.0) -> None:
        """Until every running node says ``cluster_state:ok`` and agrees on 3 primaries."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if all(self._ok(port) for port in self.procs if self.alive(port)):
                return
            time.sleep(0.1)
        raise RuntimeError("the local cluster did not become healthy")

    def _ok(self, port: int) -> bool:
        try:
            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5) as client:
                info = client.cluster("info")
                slots: Any = client.execute_command("CLUSTER SLOTS")
        except redis.RedisError:
            return False
        return info.get("cluster_state") == "ok" and len(slots) >= 3 and all(
            len(shard) >= 4 for shard in slots)  # start, end, a primary and a replica

    def alive(self, port: int) -> bool:
        proc = self.procs.get(port)
        return proc is not None and proc.poll() is None

    def primaries(self) -> dict[int, list[tuple[int, int]]]:
        """port → slot ranges, as a running node sees it."""
        for port in self.procs:
            if not self.alive(port):
                continue
            try:
                with redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5) as client:
                    slots: Any = client.execute_command("CLUSTER SLOTS")
            except redis.RedisError:
                continue
            owners: dict[int, list[tuple[int, int]]] = {}
            for start, end, primary, *_ in slots:
                owners.setdefault(int(primary[1]), []).append((int(start), int(end)))
            return owners
        raise RuntimeError("no node of the local cluster answers")

    def primary_of(self, key: str) -> int:
        slot = key_slot(key.encode())
        for port, ranges in self.primaries().items():
            if any(start <= slot <= end for start, end in ranges):
                return port
        raise RuntimeError(f"slot {slot} has no primary")

    def replica_of(self, primary: int) -> int:
        with redis.Redis(host="127.0.0.1", port=primary, socket_timeout=1) as client:
            slots: Any = client.execute_command("CLUSTER SLOTS")
        for _, _, owner, *replicas in slots:
            if int(owner[1]) == primary and replicas:
                return int(replicas[0][1])
        raise RuntimeError(f"{primary} has no replica")

    def failover(self, replica: int, limit: float = 15.0) -> None:
        """``CLUSTER FAILOVER`` on a replica: it takes over from its primary in step
        (no write lost); returns once it is a primary."""
        with redis.Redis(host="127.0.0.1", port=replica, socket_timeout=2) as client:
            client.execute_command("CLUSTER FAILOVER")
            deadline = time.monotonic() + limit
            while client.info("replication")["role"] != "master":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{replica} did not take over")
                time.sleep(0.05)

    def restart_dead(self) -> None:
        """Start the killed nodes again (they rejoin as replicas), until all is healthy."""
        for port in self.ports:
            if not self.alive(port):
                self.start_node(port)
        self.wait_healthy()

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)

    def flush(self) -> None:
        flush(self.url)

    def stop(self) -> None:
        for port in list(self.procs):
            if self.alive(port):
                self.kill(port)
        self.procs.clear()


def is_cluster(url: str) -> bool:
    with redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1) as client:
        return bool(client.info("cluster").get("cluster_enabled"))


def client(url: str) -> Any:
    """A client of the test Redis: a cluster client when ``url`` names a cluster node."""
    return redis.RedisCluster.from_url(url) if is_cluster(url) else redis.Redis.from_url(url)


def async_client(url: str) -> Any:
    """``client`` for asyncio."""
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster

    return RedisCluster.from_url(url) if is_cluster(url) else aioredis.Redis.from_url(url)


def flush(url: str) -> None:
    """Empty the test Redis: its database on one server, every primary on a cluster
    (database 0 is the only one there)."""
    if not is_cluster(url):
        with redis.Redis.from_url(url) as client:
            client.flushdb()
        return
    with redis.RedisCluster.from_url(url, socket_timeout=5) as client:
        client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.redis.local_cluster")
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--port", type=int, default=7100)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.dir or Path(tempfile.gettempdir()) / f"kasagi-cluster-{args.port}"
    if args.action == "stop":
        for port in range(args.port, args.port + 6):
            try:
                with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as client:
                    client.shutdown(nosave=True)
            except redis.RedisError:
                pass
        return 0
    shutil.rmtree(workdir, ignore_errors=True)
    cluster = LocalCluster(args.port, workdir)
    for port in cluster.ports:
        try:
            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5) as client:
                client.ping()
            raise SystemExit(f"port {port} is taken by a running Redis")
        except redis.ConnectionError:
            pass
    cluster.start()  # the nodes outlive this command (CI stops them)
    print(cluster.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
