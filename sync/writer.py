"""Writing pre-encoded text frames to one WebSocket without awaiting.

The hub sends the same bytes to every member of a room inside one
synchronous loop, so a frame write must not await. Under daphne we write
straight to its protocol object (the ASGI ``send`` daphne hands us is a
``functools.partial`` of ``Server.handle_reply`` bound to the protocol), which
skips a str decode/encode and a coroutine per frame, and lets us read how
many bytes the socket still owes the client (``backlog``) so a slow reader is
detected instead of buffered without bound. Under any other ASGI server
frames go through an outbox drained by one task per busy connection.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

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


#: Frames up to this size reach the app (which answers PAYLOAD_TOO_LARGE above
#: KASAGI_MAX_FRAME_BYTES); daphne's own 1 MiB cap would cut the connection instead.
RECEIVE_CAP_BYTES = 4 * 1024 * 1024


class DaphneFrameWriter:
    """daphne fast path: synchronous writes into the Twisted protocol.

    On a plain TCP transport with nothing buffered, the frame is sent on the
    socket at once; only what the kernel does not take goes through Twisted's
    buffer. Twisted's ``write`` always buffers and registers the socket for
    writability, so every frame cost two ``epoll_ctl`` calls and a reactor
    callback on top of the ``send`` (~10 % of a busy process, measured).
    Order is kept: the direct send only happens when Twisted holds nothing.
    """

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol
        self.closed = False
        for limit in ("maxMessagePayloadSize", "maxFramePayloadSize"):
            if 0 < getattr(protocol, limit, 0) < RECEIVE_CAP_BYTES:
                setattr(protocol, limit, RECEIVE_CAP_BYTES)
        _release_http_channel(protocol)
        self._direct = _plain_tcp(getattr(protocol, "transport", None))

    def write(self, data: bytes, binary: bool = False) -> None:
        protocol = self._protocol
        if self.closed or protocol.state != protocol.STATE_OPEN:
            return
        frame = framed(data, binary)
        transport = protocol.transport
        if (
            self._direct
            and not transport._tempDataLen
            and len(transport.dataBuffer) == transport.offset
            and transport.connected
            and not transport.disconnecting
            and not transport._writeDisconnected
        ):
            try:
                sent = transport.socket.send(frame)
            except OSError:  # EAGAIN, or a dead socket Twisted's own write path reports
                sent = 0
            if sent == len(frame):
                return
            frame = frame[sent:]
        transport.write(frame)

    async def close(self, code: int, reason: str) -> None:
        """Close with any code (daphne's own close path allows only 1000 and 3000–4999)."""
        protocol = self._protocol
        if protocol.state == protocol.STATE_OPEN:
            protocol.sendCloseFrame(code=code, reasonUtf8=reason.encode()[:120], isReply=False)
        self.closed = True

    def backlog(self) -> int:
        transport = getattr(self._protocol, "transport", None)
        if transport is None:
            return 0
        buffered = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
        return buffered + getattr(transport, "_tempDataLen", 0)


_last_framed: list[Any] = [None, False, b""]


def framed(data: bytes, binary: bool) -> bytes:
    """``data`` as one unmasked server WebSocket frame (RFC 6455 §5.2).

    The hub hands the same bytes object to every member of a room, so the
    frame is built once and reused while it is the latest one: the per-member
    cost is one ``transport.write``, not autobahn's framing per socket. (No
    extension is negotiated by daphne, so frames are plain.)
    """
    last = _last_framed
    if last[0] is data and last[1] is binary:
        return last[2]
    length = len(data)
    opcode = 0x82 if binary else 0x81
    if length < 126:
        header = bytes((opcode, length))
    elif length < 65536:
        header = bytes((opcode, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((opcode, 127)) + length.to_bytes(8, "big")
    frame = header + data
    last[0], last[1], last[2] = data, binary, frame
    return frame


def _plain_tcp(transport: Any) -> bool:
    """True for Twisted's own non-TLS TCP transport, whose buffer we know."""
    try:
        from twisted.internet.tcp import Connection
    except ImportError:  # pragma: no cover - daphne always has Twisted
        return False
    return (
        isinstance(transport, Connection)
        and not getattr(transport, "TLS", True)
        and all(hasattr(transport, name) for name in (
            "socket", "dataBuffer", "offset", "_tempDataLen", "_writeDisconnected"))
    )


def _release_http_channel(protocol: Any) -> None:
    """Let the upgraded HTTP request go.

    daphne hands the socket from Twisted's ``HTTPChannel`` to the WebSocket
    protocol, but the channel stays registered as the transport's producer, so
    the channel, its request, both header maps and the request body buffer
    (about 3.5 KB) live as long as the WebSocket. Its only job left would be
    to pause reading from a client that does not read; the hub handles slow
    readers itself (``Writer.backlog``).
    """
    transport = getattr(protocol, "transport", None)
    producer = getattr(transport, "producer", None)
    if producer is None or producer is protocol:
        return
    try:
        from twisted.web.http import HTTPChannel
    except ImportError:  # pragma: no cover - daphne always has Twisted
        return
    if isinstance(producer, HTTPChannel) and not getattr(transport, "producerPaused", False):
        transport.unregisterProducer()


def writer_for(send: AsgiSend) -> FrameWriter | DaphneFrameWriter:
    """The fastest writer that is safe for the server behind ``send``.

    Channels' session middleware wraps ``send`` to save sessions on
    ``websocket.accept``; frames after the accept need none of that, so the
    wrapper is looked through.
    """
    while hasattr(getattr(send, "__self__", None), "real_send"):
        send = send.__self__.real_send  # type: ignore[attr-defined]
    if isinstance(send, functools.partial) and send.args:
        protocol = send.args[0]
        owner = getattr(send.func, "__self__", None)
        if (
            type(owner).__module__.startswith("daphne")
            and hasattr(protocol, "sendMessage")
            and hasattr(protocol, "STATE_OPEN")
        ):
            return DaphneFrameWriter(protocol)
    return FrameWriter(send)
