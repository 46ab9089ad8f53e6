"""The one module allowed to touch daphne, Twisted, autobahn, Channels and asgiref internals.

Two things need what these libraries do not promise to keep:

- the daphne fast path (:class:`DaphneFrameWriter`): frames are written
  straight into daphne's Twisted protocol, sent on the socket at once when
  Twisted's buffer is empty (Twisted's private ``_tempDataLen``,
  ``dataBuffer``, ``offset``, ``_writeDisconnected``), built by hand
  (RSV1 set on a connection that negotiated permessage-deflate: see below),
  with autobahn's payload caps
  raised and the upgraded ``HTTPChannel`` unregistered as the transport's
  producer; daphne is recognised by the ``functools.partial`` of
  ``Server.handle_reply`` it hands the app as ``send`` (Channels' session
  wrapper, ``real_send``, is looked through). docs/performance.md measured
  p99 52 ms at workload C with it and 84–101 ms without the direct send.
- permessage-deflate for JSON clients that offer it (:func:`offer_deflate`):
  daphne's factory accepts no extension, but autobahn negotiates them when
  daphne fires the handshake, after the app's ``websocket.accept``, from the
  protocol's own copy of ``perMessageCompressionAccept``; we set that copy
  before accepting. The server takes no context (``server_no_context_takeover``),
  so a frame compresses to the same bytes for every member of a view and the
  hub compresses it once (``sync.core.codec.JSON_DEFLATE``).
- ``sync.api`` asks asgiref's ``SyncToAsync.threadlocal`` whether the calling
  thread runs sync code for the server's event loop.

No other module reads or writes a private attribute of these libraries, so an
upgrade breaks this one file, and loudly: each path is taken only when the
installed versions are in :data:`KNOWN_GOOD` and the shapes it relies on are
there. Otherwise one warning names the library and its version, and the
generic path is used (``sync.writer.FrameWriter``, the outbox; for asgiref:
the sync form runs on the engine's loop as from any other thread).
tests/e2e/test_fast_path.py fails when a real daphne does not take the fast
path.

Known-good means the exact versions requirements.txt pins, the ones the
suite ran against: these attributes are private, and a patch release may
rename them. Upgrading a pin means running tests/e2e/test_fast_path.py and
adding the new version here (tests/consumer/test_compat.py checks that the pins
and this table agree).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

logger = logging.getLogger(__name__)

#: Distribution name -> versions whose internals this module was tested against.
KNOWN_GOOD: dict[str, frozenset[str]] = {
    "daphne": frozenset({"4.2.3"}),
    "Twisted": frozenset({"26.10.0"}),
    "autobahn": frozenset({"26.10.2"}),
    "asgiref": frozenset({"3.13.0"}),
}

#: What the daphne fast path relies on; asgiref's threadlocal is checked on its own.
FAST_PATH_LIBRARIES = ("daphne", "Twisted", "autobahn")

#: Frames up to this size reach the app (which answers PAYLOAD_TOO_LARGE above
#: KASAGI_MAX_FRAME_BYTES); daphne's own 1 MiB cap would cut the connection instead.
RECEIVE_CAP_BYTES = 4 * 1024 * 1024

_TRANSPORT_SHAPE = ("socket", "dataBuffer", "offset", "_tempDataLen", "_writeDisconnected")
_PROTOCOL_SHAPE = ("sendMessage", "sendCloseFrame", "state", "STATE_OPEN", "transport")


# -- version check --------------------------------------------------------


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def unknown_versions(distributions: Iterable[str]) -> list[tuple[str, str | None]]:
    """``(name, installed version)`` of each distribution not in :data:`KNOWN_GOOD`."""
    found = ((name, installed_version(name)) for name in distributions)
    return [(name, version) for name, version in found if version not in KNOWN_GOOD[name]]


def _refusal(distributions: Iterable[str], path: str, fallback: str) -> bool:
    """True when every version is known-good; else log one warning and return False."""
    unknown = unknown_versions(distributions)
    if unknown:
        names = ", ".join(f"{name} {version or '(not installed)'}" for name, version in unknown)
        logger.warning(
            "%s disabled: %s not in sync.compat.KNOWN_GOOD; using %s", path, names, fallback)
    return not unknown


@functools.cache
def fast_path_allowed() -> bool:
    """Whether daphne, Twisted and autobahn are versions the fast path was tested with.

    Checked once per process (the warning, if any, is logged once).
    """
    return _refusal(FAST_PATH_LIBRARIES, "daphne fast path", "the generic ASGI writer")


@functools.cache
def _threadlocal_allowed() -> bool:
    return _refusal(("asgiref",), "asgiref thread check", "the engine's loop for sync calls")


_shape_warned: set[str] = set()


def _warn_shape_once(what: str) -> None:
    if what not in _shape_warned:
        _shape_warned.add(what)
        logger.warning("%s: shape not found; using the generic path", what)


def forget_checks() -> None:
    """Run the checks again on next use (tests that change what they see)."""
    fast_path_allowed.cache_clear()
    _threadlocal_allowed.cache_clear()
    _shape_warned.clear()


# -- asgiref --------------------------------------------------------------


def in_sync_to_async_thread() -> bool:
    """Whether this thread runs sync code for a running event loop of this process
    (asgiref's SyncToAsync: Django's sync views under daphne, ``sync_to_async``
    functions). False on an unknown asgiref, whose threadlocal is not read."""
    if not _threadlocal_allowed():
        return False
    from asgiref.sync import SyncToAsync

    local = getattr(SyncToAsync, "threadlocal", None)
    if local is None:
        _warn_shape_once(f"asgiref {installed_version('asgiref')} SyncToAsync.threadlocal")
        return False
    loop = getattr(local, "main_event_loop", None)
    return (
        loop is not None and loop.is_running()
        and getattr(local, "main_event_loop_pid", None) == os.getpid()
    )


# -- daphne: recognising it -----------------------------------------------


def _unwrap(send: Callable[..., Any]) -> Callable[..., Any]:
    """``send`` without Channels' session wrapper (it only matters for the accept)."""
    while hasattr(getattr(send, "__self__", None), "real_send"):
        send = send.__self__.real_send  # type: ignore[attr-defined]
    return send


def _defined_in_daphne(send: Any) -> bool:
    func = send.func if isinstance(send, functools.partial) else send
    owner = getattr(func, "__self__", None)
    module = type(owner).__module__ if owner is not None else getattr(func, "__module__", "")
    return str(module).startswith("daphne")


def daphne_protocol(send: Callable[..., Any]) -> Any | None:
    """daphne's WebSocket protocol behind ``send`` when the fast path may use it, else None.

    None for any other server (silently), and for daphne when a version is
    unknown or ``send`` no longer has the shape we know (with one warning).
    """
    send = _unwrap(send)
    if not _defined_in_daphne(send):
        return None
    if not fast_path_allowed():
        return None
    protocol = send.args[0] if isinstance(send, functools.partial) and send.args else None
    if protocol is None or not all(hasattr(protocol, name) for name in _PROTOCOL_SHAPE):
        _warn_shape_once(
            f"daphne {installed_version('daphne')} send (partial of Server.handle_reply)")
        return None
    return protocol


# -- daphne: the fast writer ----------------------------------------------


class DaphneFrameWriter:
    """daphne fast path: synchronous writes into the Twisted protocol.

    On a plain TCP transport with nothing buffered (``direct``), the frame is
    sent on the socket at once; only what the kernel does not take goes
    through Twisted's buffer. Twisted's ``write`` always buffers and registers
    the socket for writability, so every frame cost two ``epoll_ctl`` calls
    and a reactor callback on top of the ``send`` (~10 % of a busy process,
    measured). Order is kept: the direct send only happens when Twisted holds
    nothing.
    """

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol
        self.closed = False
        #: data frames carry a permessage-deflate payload (RSV1 set): see offer_deflate
        self.compressed = False
        for limit in ("maxMessagePayloadSize", "maxFramePayloadSize"):  # autobahn's caps
            if 0 < getattr(protocol, limit, 0) < RECEIVE_CAP_BYTES:
                setattr(protocol, limit, RECEIVE_CAP_BYTES)
        _release_http_channel(protocol)
        #: True when frames go on the socket at once (plain TCP); False: Twisted's buffer (TLS).
        self.direct = _plain_tcp(getattr(protocol, "transport", None))

    def write(self, data: bytes, binary: bool = False) -> None:
        protocol = self._protocol
        if self.closed or protocol.state != protocol.STATE_OPEN:
            return
        frame = framed(data, binary, self.compressed)
        transport = protocol.transport
        if (
            self.direct
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
        """Bytes written that Twisted has not handed to the kernel yet."""
        transport = getattr(self._protocol, "transport", None)
        if transport is None:
            return 0
        buffered = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
        return buffered + getattr(transport, "_tempDataLen", 0)


_last_framed: list[Any] = [None, False, False, b""]


def framed(data: bytes, binary: bool, compressed: bool = False) -> bytes:
    """``data`` as one unmasked server WebSocket frame (RFC 6455 §5.2).

    The hub hands the same bytes object to every member of a room, so the
    frame is built once and reused while it is the latest one: the per-member
    cost is one ``transport.write``, not autobahn's framing per socket.
    ``compressed``: ``data`` is a permessage-deflate payload (RSV1, RFC 7692).
    """
    last = _last_framed
    if last[0] is data and last[1] is binary and last[2] is compressed:
        return last[3]
    length = len(data)
    opcode = (0x82 if binary else 0x81) | (0x40 if compressed else 0)
    if length < 126:
        header = bytes((opcode, length))
    elif length < 65536:
        header = bytes((opcode, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((opcode, 127)) + length.to_bytes(8, "big")
    frame = header + data
    last[0], last[1], last[2], last[3] = data, binary, compressed, frame
    return frame


# -- daphne: permessage-deflate -------------------------------------------


def offer_deflate(send: Callable[..., Any]) -> bool:
    """Let this connection accept a client's permessage-deflate offer (RFC 7692),
    server side without context takeover. Call it before ``websocket.accept``;
    :func:`compress_frames` then says whether the client offered it.
    False (nothing changed) off the daphne fast path: the generic path sends
    through autobahn's ``sendMessage``, which would compress per connection."""
    protocol = daphne_protocol(send)
    if protocol is None or not hasattr(protocol, "perMessageCompressionAccept"):
        return False
    protocol.perMessageCompressionAccept = _accept_deflate
    return True


def _accept_deflate(offers: list[Any]) -> Any | None:
    """autobahn's accept hook: the first permessage-deflate offer the hub's compressor
    can serve (a full 32 KiB window: the client did not ask for a smaller one)."""
    from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept

    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer) and offer.request_max_window_bits in (0, 15):
            # autobahn writes server_no_context_takeover into the answer only when the
            # client asked for it (RFC 7692 lets the server add it): mark it asked
            offer.request_no_context_takeover = True
            return PerMessageDeflateOfferAccept(offer, no_context_takeover=True)
    return None


def compress_frames(writer: Any, send: Callable[..., Any]) -> bool:
    """After the accept: if this connection negotiated permessage-deflate, mark its
    fast writer's frames compressed (the caller then sends ``JSON_DEFLATE`` payloads)."""
    protocol = daphne_protocol(send)
    if (protocol is None or getattr(protocol, "_perMessageCompress", None) is None
            or not isinstance(writer, DaphneFrameWriter)):
        return False
    writer.compressed = True
    return True


def _plain_tcp(transport: Any) -> bool:
    """True for Twisted's own non-TLS TCP transport, whose buffer we know."""
    try:
        from twisted.internet.tcp import Connection
    except ImportError:  # pragma: no cover - daphne always has Twisted
        return False
    plain = isinstance(transport, Connection) and not getattr(transport, "TLS", True)
    if plain and not all(hasattr(transport, name) for name in _TRANSPORT_SHAPE):
        _warn_shape_once(f"Twisted {installed_version('Twisted')} tcp.Connection buffer")
        return False
    return plain


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
        transport.unregisterProducer()  # type: ignore[union-attr]
