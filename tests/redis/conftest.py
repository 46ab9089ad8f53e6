"""Fixtures for the cluster tests: a clean Redis database and N daphnes sharing it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.live import LiveServer, free_port
from tests.redis.local_cluster import flush
from tests.services import need_redis


@pytest.fixture
def redis_url() -> str:
    """The test Redis database (DB 9 by default), flushed (every primary of a cluster)."""
    url = need_redis()
    flush(url)
    return url


@pytest.fixture
def cluster(start_server: Callable[..., LiveServer]) -> Callable[..., list[LiveServer]]:
    """``cluster(n, REDIS_URL=..., **env)`` → n daphne processes sharing one Redis."""

    def start(count: int, **env: str) -> list[LiveServer]:
        return [start_server(**env) for _ in range(count)]

    return start


class PrivateRedis:
    """A redis-server of this test's own (no disk), which it may kill and restart."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_timeout=0.5).ping()
                return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    need_redis()
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server binary not installed")
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


def env_flag(name: str) -> bool:
    return os.environ.get(name) == "1"
