"""Shared fixtures: real daphne servers on free ports, their database, clients."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.live import LiveServer, migrate, server_env

_room_numbers = itertools.count(1)


def _postgres_live_url(base: str) -> str:
    """A database of its own for live servers on the PostgreSQL of ``base``."""
    from urllib.parse import urlparse

    import psycopg

    name = f"kasagi_live_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlparse(base)._replace(path=f"/{name}").geturl()


@pytest.fixture(scope="session")
def live_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database the live servers share (PostgreSQL when DATABASE_URL says so)."""
    configured = os.environ.get("DATABASE_URL", "")
    if configured.startswith(("postgres://", "postgresql://")):
        url = _postgres_live_url(configured)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('live-db') / 'db.sqlite3'}"
    migrate(url)
    _flush_server_redis()
    return url


def _flush_server_redis() -> None:
    """CI's Redis pass: live servers start from an empty Redis database, like the DB."""
    if os.environ.get("KASAGI_TEST_SERVER_REDIS") != "1":
        return
    from tests.live import SERVER_REDIS_URL
    from tests.redis.local_cluster import flush

    flush(os.environ.get("KASAGI_TEST_SERVER_REDIS_URL", SERVER_REDIS_URL))  # or the cluster


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("KASAGI_TEST_ARTIFACTS", "test-artifacts")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


ServerFactory = Callable[..., LiveServer]


@pytest.fixture(scope="session")
def kasagi_server(
    live_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One daphne with the embedded defaults, shared by the session's tests."""
    log = tmp_path_factory.mktemp("daphne") / "kasagi.log"
    server = LiveServer(server_env(live_database_url), log).start()
    yield server
    server.stop()


@pytest.fixture
def start_server(
    live_database_url: str, tmp_path: Path
) -> Iterator[ServerFactory]:
    """Start servers with environment overrides (``KASAGI_GRACE_PERIOD="1"``...).

    ``ping=(interval, timeout)`` sets daphne's keepalive for dead-socket tests.
    """
    started: list[LiveServer] = []

    def start(*, ping: tuple[float, float] = (10, 30), **overrides: str) -> LiveServer:
        log = tmp_path / f"daphne-{len(started)}.log"
        server = LiveServer(
            server_env(live_database_url, **overrides), log,
            ping_interval=ping[0], ping_timeout=ping[1],
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def room_id(request: pytest.FixtureRequest) -> str:
    """A room name no other test uses."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    return f"t-{os.getpid()}-{next(_room_numbers)}-{stem}"
