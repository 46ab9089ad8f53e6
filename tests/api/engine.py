"""An engine of its own for in-process tests: memory directory, no persistence.

In-process tests (Django's test client, the public API) must not start the
database write-behind of the real runtime against the test database, nor
share rooms with each other: each test gets a fresh ``sync.runtime`` engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest

from sync import runtime
from sync.conf import kasagi_settings
from sync.core.codec import JSON
from sync.directory import MemoryDirectory
from sync.hub import Hub
from sync.store.base import NullPersistence
from sync.store.memory import MemoryRoomStore


def fresh_runtime(**overrides: Any) -> runtime.Runtime:
    conf = replace(kasagi_settings(), **overrides)
    limits = conf.limits()
    hub = Hub(conf.tick_ms / 1000.0)
    store = MemoryRoomStore(
        hub, MemoryDirectory(), limits=limits, grace_seconds=conf.grace_period,
        persistence=NullPersistence(),
    )
    return runtime.Runtime(conf, limits, hub, store, store.persistence)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[runtime.Runtime]:
    engine = fresh_runtime()
    monkeypatch.setattr(runtime, "_runtime", engine)
    yield engine


class FakeMember:
    """What the hub needs of a connection, recording the frames it is sent."""

    def __init__(self) -> None:
        self.player_id: str | None = None
        self.session_token: str | None = None
        self.writer = self
        self.codec = JSON
        self.synced_version = -1
        self.lag = None
        self.needs_full_state = False
        self.frames: list[dict[str, Any]] = []
        self.detached: list[str] = []

    def write(self, data: bytes, binary: bool = False) -> None:
        self.frames.append(orjson.loads(data))

    def backlog(self) -> int:
        return 0

    def on_detached(self, room_id: str, reason: str) -> None:
        self.detached.append(reason)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame["type"] == kind]
