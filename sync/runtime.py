"""The process-wide engine: one hub and one store per server process.

Built lazily on first use inside the running event loop, from the settings.
Apps that persist rooms (``rooms``) register their directory and persistence
factories here, so ``sync`` never imports them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .conf import KasagiSettings, kasagi_settings
from .core.limits import Limits
from .directory import MemoryDirectory, RoomDirectory
from .hub import Hub
from .metrics import METRICS
from .store.base import NullPersistence, Persistence, RoomStore
from .store.memory import MemoryRoomStore


@dataclass
class Runtime:
    settings: KasagiSettings
    limits: Limits
    hub: Hub
    store: RoomStore
    persistence: Any
    #: The event loop the engine was built on (None: built outside one).
    loop: asyncio.AbstractEventLoop | None = None


DirectoryFactory = Callable[[KasagiSettings], RoomDirectory]
PersistenceFactory = Callable[[KasagiSettings, RoomStore], Persistence]

_directory_factory: DirectoryFactory = lambda conf: MemoryDirectory()  # noqa: E731
_persistence_factory: PersistenceFactory = lambda conf, store: NullPersistence()  # noqa: E731
_runtime: Runtime | None = None


def install(
    *, directory: DirectoryFactory | None = None, persistence: PersistenceFactory | None = None
) -> None:
    """Called from an AppConfig.ready(): swap in database-backed rooms."""
    global _directory_factory, _persistence_factory
    if directory is not None:
        _directory_factory = directory
    if persistence is not None:
        _persistence_factory = persistence


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        conf = kasagi_settings()
        limits = conf.limits()
        hub = Hub(conf.tick_ms / 1000.0)
        if conf.redis_url:
            from .store.redis import RedisRoomStore

            store: RoomStore = RedisRoomStore(
                hub, _directory_factory(conf), limits=limits, grace_seconds=conf.grace_period,
                redis_url=conf.redis_url, snapshot_interval=conf.snapshot_interval,
                room_idle_unload=conf.room_idle_unload,
                recovery_log=conf.recovery_log,
            )
        else:
            store = MemoryRoomStore(
                hub, _directory_factory(conf), limits=limits, grace_seconds=conf.grace_period,
                recovery_log=conf.recovery_log,
            )
        persistence = _persistence_factory(conf, store)
        store.persistence = persistence
        _runtime = Runtime(conf, limits, hub, store, persistence, _running_loop())
        METRICS.rooms = lambda: len(store.rooms)
        METRICS.players = lambda: sum(len(live.room.players) for live in store.rooms.values())
    return _runtime


def current() -> Runtime | None:
    """The engine if this process built one (never builds it)."""
    return _runtime


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def reset_runtime() -> None:
    """Forget the engine (tests that change settings between cases), closing its
    persistence and its directory (their threads' database connections)."""
    global _runtime
    engine, _runtime = _runtime, None
    if engine is None:
        return
    for part in (engine.persistence, engine.store.directory):
        close = getattr(part, "close", None)
        if close is not None:
            close()
