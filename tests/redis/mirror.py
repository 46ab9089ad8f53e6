"""A test client that checks the per-connection contract of §6 while it mirrors a room."""

from __future__ import annotations

import asyncio
from typing import Any

from sync.core.merge_patch import apply_patch as merge
from tests.wsclient import Conn


class Mirror:
    """Applies FULL_STATE then every state-changing frame, asserting the chain."""

    def __init__(self, conn: Conn, name: str) -> None:
        self.conn = conn
        self.name = name
        self.version: int | None = None
        self.state: dict[str, Any] = {}
        self.player_id: str | None = None
        self.token: str | None = None
        self.errors: list[dict[str, Any]] = []
        self.full_states = 0
        self.steps: list[tuple[int, int]] = []

    def feed(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "FULL_STATE":
            self.version = frame["version"]
            self.state = frame["payload"]["state"]
            self.player_id = frame["payload"]["playerId"] or self.player_id
            self.token = frame["payload"]["sessionToken"] or self.token
            self.full_states += 1
        elif kind in ("DELTA_UPDATE", "PLAYER_JOINED", "PLAYER_LEFT"):
            assert self.version is not None, f"{self.name}: change before FULL_STATE"
            assert frame["baseVersion"] == self.version, (
                f"{self.name}: chain break {self.version} -> {frame['baseVersion']}")
            assert frame["version"] > frame["baseVersion"]
            self.steps.append((frame["baseVersion"], frame["version"]))
            if kind == "DELTA_UPDATE":
                self.state = merge(self.state, frame["payload"])
            elif kind == "PLAYER_JOINED":
                assert frame["version"] == frame["baseVersion"] + 1
                pid = frame["payload"]["playerId"]
                assert pid != self.player_id, "PLAYER_JOINED about oneself"
                self.state = merge(self.state, {"players": {pid: frame["payload"]["state"]}})
            else:
                assert frame["version"] == frame["baseVersion"] + 1
                self.state = merge(self.state, {"players": {frame["payload"]["playerId"]: None}})
            self.version = frame["version"]
        elif kind == "ERROR":
            self.errors.append(frame)

    async def pump(self, until_quiet: float = 0.5, limit: float = 20.0) -> None:
        """Read frames until none arrives for ``until_quiet`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            try:
                frame = await self.conn.recv(until_quiet)
            except TimeoutError:
                return
            self.feed(frame)

    async def until(self, predicate: Any, timeout: float = 15.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"{self.name}: condition not met; saw {self.conn.seen[-5:]}")
            frame = await self.conn.recv(left)
            self.feed(frame)
            if predicate(frame):
                return frame

    async def join(self, room_id: str, **payload: Any) -> None:
        self.feed(await self.conn.join(room_id, **payload))
