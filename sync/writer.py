"""Choosing how frames reach one WebSocket, and the generic way to write them.

The hub sends the same bytes to every member of a room inside one
synchronous loop, so a frame write must not await. Under daphne (known-good
versions, see ``sync.compat``) frames go straight into its Twisted protocol
(``sync.compat.DaphneFrameWriter``), which skips a str decode/encode and a
coroutine per frame, and lets the hub read how many bytes the socket still
owes the client (``backlog``) so a slow reader is detected instead of
buffered without bound. Under any other ASGI server, or a daphne whose
internals we do not know, frames go through an outbox drained by one task per
busy connection (:class:`FrameWriter`). Which path each connection took is
counted in ``kasagi_writer_connections_total{path=...}``.

This module touches no library internals; ``sync.compat`` does.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from .compat import DaphneFrameWriter, daphne_protocol
from .metrics import METRICS

logger = logging.getLogger(__name__)

AsgiSend = Callable[[dict[str, Any]], Awaitable[None]]


class FrameWriter:
    """Generic ASGI path: an outbox, drained in order by a short-lived task."""

    def __init__(self, send: AsgiSend) -> None:
        self._send = send
        self._outbox: deque[dict[str, Any]] = deque()
        self._outbox_bytes = 0
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    def write(self, data: bytes, binary: bool = False) -> None:
        if self.closed:
            return
        message = (
            {"type": "websocket.send", "bytes": data}
            if binary
            else {"type": "websocket.send", "text": data.decode()}
        )
        self._outbox.append(message)
        self._outbox_bytes += len(data)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def close(self, code: int, reason: str) -> None:
        self.closed = True
        self._outbox.clear()
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    def backlog(self) -> int:
        """Bytes accepted by ``write`` that the client has not been sent yet."""
        return self._outbox_bytes

    async def _drain(self) -> None:
        try:
            while self._outbox:
                message = self._outbox.popleft()
                self._outbox_bytes -= len(message.get("text") or message.get("bytes") or b"")
                await self._send(message)
        except Exception:  # the socket went away; the disconnect event follows
            logger.debug("frame write failed", exc_info=True)
            self.closed = True
            self._outbox.clear()
        finally:
            self._task = None


def writer_for(send: AsgiSend) -> FrameWriter | DaphneFrameWriter:
    """The fastest writer that is safe for the server behind ``send``, counted by path."""
    protocol = daphne_protocol(send)
    if protocol is None:
        METRICS.writer_connections["generic"] += 1
        return FrameWriter(send)
    writer = DaphneFrameWriter(protocol)
    METRICS.writer_connections["daphne" if writer.direct else "daphne_buffered"] += 1
    return writer
