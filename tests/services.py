"""Where the real PostgreSQL and Redis for tests are, and whether they answer.

Tests that need a service skip with a clear reason when it is down; CI sets
``KASAGI_REQUIRE_SERVICES=1`` and fails on such skips instead.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

TEST_REDIS_URL = os.environ.get("KASAGI_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
TEST_POSTGRES_URL = os.environ.get(
    "KASAGI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_SERVICES = os.environ.get("KASAGI_REQUIRE_SERVICES") == "1"


def reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=0.5):
            return True
    except OSError:
        return False


def need(url: str, what: str) -> None:
    if reachable(url):
        return
    reason = f"{what} not reachable at {url} (start it, or set the KASAGI_TEST_* URL)"
    if REQUIRE_SERVICES:
        pytest.fail(reason)
    pytest.skip(reason)


def need_redis() -> str:
    need(TEST_REDIS_URL, "Redis")
    return TEST_REDIS_URL


def need_postgres() -> str:
    need(TEST_POSTGRES_URL, "PostgreSQL")
    return TEST_POSTGRES_URL
