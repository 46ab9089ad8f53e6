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
- the daphne fast reader (:class:`DaphneFrameReader`): the common client
  frame (whole, masked, text or binary, no extension bits) is parsed and
  unmasked here, in the protocol's data callback, and handed to the
  connection's handler at once, which may run the message there and then
  (no ``asyncio.Queue`` hop, no task wake-up); everything else goes through
  autobahn's parser and daphne's queue as before. It replaces two methods on
  the protocol *instance* (autobahn's ``dataReceived``, daphne's
  ``onMessage``) and reads autobahn's parser state (``data``,
  ``current_frame``, ``inside_message``) and daphne's ``muted``,
  ``last_ping`` and ``application_queue``; on plain TCP it also takes the
  socket's read callback from Twisted's asyncio reactor (its
  ``_asyncioEventloop``, ``_readers``, ``_disconnectSelectable``).
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
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

from .metrics import METRICS

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
_REACTOR_SHAPE = ("_asyncioEventloop", "_readers", "_disconnectSelectable")
_READER_SHAPE = (
    "dataReceived", "onMessage", "data", "current_frame", "inside_message", "muted",
    "last_ping", "application_queue", "_perMessageCompress", "maxMessagePayloadSize",
    "_max_message_size_exceeded", "_invalid_payload",
)


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
        transport = getattr(protocol, "transport", None)
        self.direct = _plain_tcp(transport)
        #: plain TCP's transport, whose buffer fields ``backlog`` reads directly (the hub
        #: asks every member on every tick)
        self._tcp = transport if self.direct else None

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
        tcp = self._tcp
        if tcp is not None:
            return len(tcp.dataBuffer) - tcp.offset + tcp._tempDataLen
        transport = getattr(self._protocol, "transport", None)
        if transport is None:
            return 0
        buffered = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
        return buffered + getattr(transport, "_tempDataLen", 0)


#: id(payload) → (payload, opcode, frame): the frames of the latest payloads, so a tick
#: that interleaves members of different views (a ``world`` room: ~100 frames for 1,000
#: members) frames each payload once. An entry holds its payload, so its id is not reused
#: while it is here; the whole cache is dropped once it holds FRAMED_CACHE_BYTES.
_framed: dict[int, tuple[bytes, int, bytes]] = {}
_framed_bytes = 0
FRAMED_CACHE_BYTES = 4 << 20


def framed(data: bytes, binary: bool, compressed: bool = False) -> bytes:
    """``data`` as one unmasked server WebSocket frame (RFC 6455 §5.2).

    The hub hands the same bytes object to every member of a view, so the
    frame is built once per payload and reused (``_framed``): the per-member
    cost is one ``transport.write``, not autobahn's framing per socket.
    ``compressed``: ``data`` is a permessage-deflate payload (RSV1, RFC 7692).
    """
    global _framed_bytes
    opcode = (0x82 if binary else 0x81) | (0x40 if compressed else 0)
    entry = _framed.get(id(data))
    if entry is not None and entry[0] is data and entry[1] == opcode:
        return entry[2]
    length = len(data)
    if length < 126:
        header = bytes((opcode, length))
    elif length < 65536:
        header = bytes((opcode, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((opcode, 127)) + length.to_bytes(8, "big")
    frame = header + data
    if _framed_bytes + 2 * length > FRAMED_CACHE_BYTES:
        _framed.clear()
        _framed_bytes = 0
    _framed[id(data)] = (data, opcode, frame)
    _framed_bytes += 2 * length
    return frame


# -- daphne: the fast reader ----------------------------------------------

#: a complete client frame's payload (str for text, bytes for binary) -> True when the
#: connection took it; False: put it on daphne's queue (the connection's task is busy)
FrameHandler = Callable[[str | bytes], bool]


class DaphneFrameReader:
    """daphne fast path, inbound: one client frame from the socket to the handler.

    autobahn parses every frame in Python through a state machine, a masker
    object per frame and several callbacks, then daphne puts the message on
    an ``asyncio.Queue`` and the connection's task wakes up to take it: about
    40 % of a busy server at workload C (docs/performance.md). Here a chunk of
    bytes that starts on a frame boundary is cut into frames directly; each
    whole, final, masked text/binary frame goes to ``handle``, inflated first
    when it is compressed (RSV1 on a connection that negotiated
    permessage-deflate: autobahn's own inflater for the connection, so its
    window is the same whichever parser reads the next frame, with the same
    size limit and the same close codes). The first frame that is anything
    else (a control frame, a fragment, a frame not yet complete, invalid UTF-8)
    and all bytes after it go to autobahn, which then owns the parser state
    until its buffer is empty again; what it parses still reaches ``handle``
    (through ``onMessage``). Frames the handler declines go on daphne's queue
    in arrival order, and once the queue holds anything every later frame
    queues behind it, so messages are handled strictly in order.

    On Twisted's plain TCP transport under its asyncio reactor (``direct``)
    the socket's read callback is ours too (:meth:`read_ready`): ``recv`` and
    this parser, without the reactor's per-event logging contexts and
    dispatch (about a tenth of a busy server's event-loop time). Whatever
    Twisted does to the reader later (pause, resume, close) re-registers its
    own callback, which still ends in :meth:`data_received`.
    """

    __slots__ = (
        "_autobahn_data_received", "_handle", "_protocol", "_queue", "_reactor", "_transport",
        "direct",
    )

    def __init__(self, protocol: Any, handle: FrameHandler) -> None:
        self._protocol = protocol
        self._handle = handle
        self._queue = protocol.application_queue
        self._autobahn_data_received = protocol.dataReceived
        protocol.dataReceived = self.data_received
        protocol.onMessage = self.on_message
        transport: Any = protocol.transport
        reactor: Any = _asyncio_reactor_reading(transport)
        self._transport, self._reactor = transport, reactor
        self.direct = reactor is not None
        if reactor is not None:
            reactor._asyncioEventloop.add_reader(transport.fileno(), self.read_ready)

    def read_ready(self) -> None:
        """The socket is readable: what Twisted's ``doRead`` does, minus its wrappers."""
        transport = self._transport
        why: Any
        try:
            data = transport.socket.recv(transport.bufferSize)
        except BlockingIOError:
            return
        except OSError:
            why = _twisted_main().CONNECTION_LOST
        else:
            if data:
                try:
                    self.data_received(data)
                    return
                except Exception as exc:  # Twisted logs it and drops the connection
                    logger.exception("reading a WebSocket frame failed")
                    why = exc
            else:
                why = _twisted_main().CONNECTION_DONE
        self._reactor._disconnectSelectable(transport, why, True)

    def defer(self, message: dict[str, Any]) -> None:
        """Put an ASGI-style message on the connection's queue, after what is there."""
        self._queue.put_nowait(message)

    def data_received(self, data: bytes) -> None:
        protocol = self._protocol
        if (
            protocol.state != protocol.STATE_OPEN or protocol.data
            or protocol.current_frame is not None or protocol.inside_message
        ):
            self._autobahn_data_received(data)
            return
        protocol.last_ping = time.time()  # daphne's keepalive: the peer is alive
        deflate = protocol._perMessageCompress
        end = len(data)
        pos = 0
        while end - pos >= 6:
            b0, b1 = data[pos], data[pos + 1]
            if b1 < 0x80 or (  # unmasked, or not FIN+text/binary (+RSV1 when negotiated)
                b0 != 0x81 and b0 != 0x82
                and (deflate is None or (b0 != 0xC1 and b0 != 0xC2))
            ):
                break
            length = b1 & 0x7F
            start = pos + 6
            if length >= 126:
                if length == 127 or end - pos < 8:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                if length < 126:  # not the minimal encoding: autobahn refuses it
                    break
                start = pos + 8
            stop = start + length
            if stop > end:
                break
            payload = unmask(data[start:stop], data[start - 4:start])
            if b0 & 0x40:
                inflated = self._inflate(deflate, payload)
                if inflated is None:  # autobahn is failing the connection
                    return
                payload = inflated
                METRICS.reader_frames["fast_inflated"] += 1
            else:
                METRICS.reader_frames["fast"] += 1
            if b0 & 0x0F == 1:
                try:
                    message: str | bytes = payload.decode()
                except UnicodeDecodeError:  # autobahn fails the connection (1007)
                    if b0 & 0x40:  # inflated already: autobahn cannot read it again
                        protocol._invalid_payload(
                            "encountered invalid UTF-8 while processing text message")
                        return
                    break
            else:
                message = payload
            pos = stop
            if not protocol.muted:  # _deliver, inlined (a call fewer per frame)
                queue = self._queue
                if not (queue.empty() and self._handle(message)):
                    queue.put_nowait({"type": "websocket.receive", "text": message}
                                     if type(message) is str
                                     else {"type": "websocket.receive", "bytes": message})
            if protocol.state != protocol.STATE_OPEN:
                break
        if pos < end:
            self._autobahn_data_received(data[pos:] if pos else data)

    def _inflate(self, deflate: Any, payload: bytes) -> bytes | None:
        """A compressed message's payload, as autobahn's ``onFrameData`` inflates it
        (bounded by ``maxMessagePayloadSize``); None when it failed the connection
        (1009 too big, 1007 corrupt), as autobahn does."""
        from autobahn.exception import PayloadCorruptError, PayloadExceededError

        protocol = self._protocol
        cap = protocol.maxMessagePayloadSize
        try:
            deflate.start_decompress_message()
            inflated = deflate.decompress_message_data(
                payload, max_output_len=cap if cap > 0 else None)
            deflate.end_decompress_message()
        except PayloadExceededError:
            protocol._max_message_size_exceeded(
                cap, cap, f"received WebSocket message exceeds payload limit of {cap} "
                "octets after decompression")
            return None
        except PayloadCorruptError as exc:
            protocol._invalid_payload(f"received WebSocket message cannot be decompressed: {exc}")
            return None
        return bytes(inflated)

    def on_message(self, payload: bytes, is_binary: bool) -> None:
        """A message autobahn parsed (daphne's ``onMessage``, without its queue hop)."""
        self._protocol.last_ping = time.time()
        METRICS.reader_frames["autobahn"] += 1
        self._deliver(payload if is_binary else payload.decode())

    def _deliver(self, message: str | bytes) -> None:
        # (data_received has its own copy of this)
        if self._protocol.muted:
            return
        queue = self._queue
        if queue.empty() and self._handle(message):
            return
        if type(message) is str:
            queue.put_nowait({"type": "websocket.receive", "text": message})
        else:
            queue.put_nowait({"type": "websocket.receive", "bytes": message})


def _twisted_main() -> Any:
    from twisted.internet import main

    return main


def _asyncio_reactor_reading(transport: Any) -> Any | None:
    """Twisted's asyncio reactor when it reads ``transport`` (plain TCP) through
    the asyncio loop, the callback :class:`DaphneFrameReader` may take over."""
    if not _plain_tcp(transport):
        return None
    try:
        from twisted.internet.asyncioreactor import AsyncioSelectorReactor
    except ImportError:  # pragma: no cover - daphne always has Twisted
        return None
    reactor = getattr(transport, "reactor", None)
    if not isinstance(reactor, AsyncioSelectorReactor):
        return None
    if not all(hasattr(reactor, name) for name in _REACTOR_SHAPE) or not hasattr(
            transport, "bufferSize"):
        _warn_shape_once(f"Twisted {installed_version('Twisted')} asyncio reactor")
        return None
    if reactor._readers.get(transport) != transport.fileno():
        return None  # not reading it right now (paused): leave it to Twisted
    return reactor


def unmask(payload: bytes, mask: bytes) -> bytes:
    """A client frame's payload XOR its 4-byte masking key (RFC 6455 §5.3), as one
    big-integer XOR (two C-level conversions, whatever the length; big-endian, the
    default byte order, so no argument to parse)."""
    n = len(payload)
    if not n:
        return payload
    key = (mask * ((n + 3) >> 2))[:n]
    return (_from_bytes(payload) ^ _from_bytes(key)).to_bytes(n)


#: ``int.from_bytes`` bound once (a classmethod: each ``int.from_bytes`` binds it anew)
_from_bytes = int.from_bytes


def reader_for_daphne(send: Callable[..., Any], handle: FrameHandler) -> DaphneFrameReader | None:
    """Install the fast reader on the daphne connection behind ``send`` (call it after
    ``websocket.accept``); None when this is not a daphne whose internals we know."""
    protocol = daphne_protocol(send)
    if protocol is None:
        return None
    if not all(hasattr(protocol, name) for name in _READER_SHAPE):
        _warn_shape_once(f"autobahn {installed_version('autobahn')} parser state")
        return None
    return DaphneFrameReader(protocol, handle)


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
