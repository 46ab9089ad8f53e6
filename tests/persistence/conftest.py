"""Fixtures for the persistence tests: direct access to the live servers' database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.live import migrate
from tests.persistence.livedb import LiveDB


@pytest.fixture
def live_db(live_database_url: str) -> LiveDB:
    return LiveDB(live_database_url)


@pytest.fixture
def throwaway_database_url(live_database_url: str, tmp_path: Path) -> Iterator[str]:
    """A migrated database of the same kind as the live one, for tests that break it."""
    if not live_database_url.startswith(("postgres://", "postgresql://")):
        url = f"sqlite:///{tmp_path / 'throwaway.sqlite3'}"
        migrate(url)
        yield url
        return

    import psycopg

    name = f"kasagi_throwaway_{os.getpid()}"
    with psycopg.connect(live_database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlparse(live_database_url)._replace(path=f"/{name}").geturl()
    migrate(url)
    yield url
    with psycopg.connect(live_database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
