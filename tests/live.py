"""Real servers for end-to-end tests: daphne processes on free ports.

Nothing here is mocked: each ``LiveServer`` is ``daphne`` running
``kasagi_project.asgi`` in its own process with its own environment, the same
command ``make run`` uses, so tests see exactly what clients see.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAPHNE = str(Path(sys.executable).with_name("daphne"))
#: Redis database of live servers in CI's Redis pass (tests of the Redis store use 9–12).
SERVER_REDIS_URL = "redis://127.0.0.1:6379/14"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"server on port {port} did not start in {timeout}s")


@dataclass
class LiveServer:
    """One daphne process; ``ws_url``/``http_url`` point at it."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    ping_interval: float = 10
    ping_timeout: float = 30
    proc: subprocess.Popen | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/sync"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> LiveServer:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                DAPHNE, "-b", "127.0.0.1", "-p", str(self.port),
                "--ping-interval", str(self.ping_interval),
                "--ping-timeout", str(self.ping_timeout),
                "kasagi_project.asgi:application",
            ],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            wait_for_port(self.port, self.proc)
        except Exception:
            self.kill()
            raise RuntimeError(f"daphne failed to start:\n{self.log()}") from None
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Stop the process (SIGTERM flushes persistence; SIGKILL is a crash)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> LiveServer:
        self.stop()
        return self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""


def server_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a live server: the test database plus overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KASAGI_", "REDIS_URL"))}
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="kasagi_project.settings",
        PYTHONUNBUFFERED="1",
        KASAGI_LOG_LEVEL="WARNING",
    )
    if os.environ.get("KASAGI_TEST_SERVER_REDIS") == "1":
        # CI's second pass: every live server keeps its rooms in Redis.
        env["REDIS_URL"] = os.environ.get("KASAGI_TEST_SERVER_REDIS_URL", SERVER_REDIS_URL)
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def migrate(database_url: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env=server_env(database_url), check=True,
    )
