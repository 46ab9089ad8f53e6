"""Wire encodings (PROTOCOL.md §1): JSON text frames, or MessagePack binary frames
for a client that offers the WebSocket subprotocol ``kasagi.msgpack``, or the
compact binary codec ``kasagi.bin1`` (``sync.core.bin_codec``, docs/protocol.md).

A connection picks its codec once, at the handshake: the first of the
subprotocols it offers that the server knows; every frame it is sent
uses it (the hub encodes a tick's frame once per codec in use in the room).
bin1 is *tabled*: a room's frames go through the room's name table
(``RoomTable``, which the hub keeps), and a connection's incoming frames
through its own ``Decoder`` (:meth:`Codec.inbound`).
Both decode into the same Python values and are validated by the same
envelope parser. MessagePack can carry what JSON cannot (bytes, extension
types, NaN/Infinity, non-string map keys); such a frame is refused as
``BAD_JSON`` before it reaches a room, so a room's state always stays valid
JSON for every other client.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Protocol

import msgpack
import orjson

from . import bin_codec
from .errors import ErrorCode, ProtocolError

MSGPACK_SUBPROTOCOL = "kasagi.msgpack"
BIN1_SUBPROTOCOL = bin_codec.SUBPROTOCOL


class Inbound(Protocol):
    """What decodes one connection's frames (the codec itself, unless it keeps state)."""

    def decode(self, raw: str | bytes) -> Any: ...


@dataclass(frozen=True, slots=True, eq=False)  # singletons: identity is equality
class Codec:
    name: str
    #: frames are WebSocket binary (MessagePack, bin1) rather than text (JSON) frames
    binary: bool
    #: a room's frames are encoded through its name table (bin1)
    tabled: bool = False
    #: JSON compressed for permessage-deflate without context takeover (RFC 7692)
    deflate: bool = False

    def encode(self, message: dict[str, Any]) -> bytes:
        """One frame for one connection (a tabled codec: without the room's table)."""
        if self.deflate:
            return deflated(orjson.dumps(message))
        if self.tabled:
            return bin_codec.encode(message)
        if self.binary:
            return msgpack.packb(message, default=_as_json_value)
        return orjson.dumps(message)

    def inbound(self) -> Inbound:
        """The decoder of one new connection's frames (JSON's: ``decode_json`` itself)."""
        if self.tabled:
            return _Bin1Inbound()
        return self if self.binary else _JSON_INBOUND

    def decode(self, raw: str | bytes) -> Any:
        """One client frame as Python values; ProtocolError BAD_JSON if it is not one.

        A text frame is JSON whatever the codec (a MessagePack client may still
        send JSON text); a binary frame is MessagePack on a MessagePack connection.
        """
        if self.tabled:  # one frame on its own; a connection keeps an inbound()
            return _Bin1Inbound().decode(raw)
        if self.binary and isinstance(raw, bytes):
            return decode_msgpack(raw)
        return decode_json(raw)


class _Bin1Inbound:
    """One bin1 connection's incoming frames: its table of the names it announced."""

    __slots__ = ("decoder",)

    def __init__(self) -> None:
        self.decoder = bin_codec.Decoder(limit=bin_codec.ROOM_TABLE_MAX, resets=False)

    def decode(self, raw: str | bytes) -> Any:
        if not isinstance(raw, bytes):
            return decode_json(raw)
        try:
            data = self.decoder.decode(raw)
        except bin_codec.DecodeError as exc:
            raise ProtocolError(ErrorCode.BAD_JSON, f"frame is not valid bin1: {exc}") from exc
        # raw bytes are allowed where MessagePack carries them (§16), nowhere else; every
        # other value a bin1 frame can hold is JSON's (string keys, finite floats)
        if self.decoder.saw_bytes and not _binary_fields_only(data):
            raise ProtocolError(ErrorCode.BAD_JSON, "frame holds bytes outside a document field")
        return data


JSON = Codec("json", binary=False)
#: JSON on a connection that negotiated permessage-deflate (``sync.compat.offer_deflate``):
#: each frame compressed on its own, so the same bytes serve every member of a view
JSON_DEFLATE = Codec("json+deflate", binary=False, deflate=True)
MSGPACK = Codec(MSGPACK_SUBPROTOCOL, binary=True)
BIN1 = Codec(BIN1_SUBPROTOCOL, binary=True, tabled=True)
_OFFERED = {MSGPACK_SUBPROTOCOL: MSGPACK, BIN1_SUBPROTOCOL: BIN1}


def codec_for(subprotocols: list[str] | tuple[str, ...] | None) -> Codec:
    """The codec a handshake asked for: the first offered subprotocol the server
    knows (``kasagi.bin1``, ``kasagi.msgpack``), JSON when none is."""
    for name in subprotocols or ():
        codec = _OFFERED.get(name)
        if codec is not None:
            return codec
    return JSON


def deflated(data: bytes) -> bytes:
    """``data`` as a permessage-deflate message payload with a fresh window (RFC 7692
    §7.2.1: raw deflate, flushed, the final ``00 00 ff ff`` removed)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def decode_json(raw: str | bytes) -> Any:
    try:
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, "frame is not valid JSON") from exc


class _JsonInbound:
    """A JSON connection's incoming frames: what ``Codec.decode`` does for a text
    codec, without its tests per frame."""

    __slots__ = ()
    decode = staticmethod(decode_json)


_JSON_INBOUND = _JsonInbound()


def decode_msgpack(raw: bytes) -> Any:
    try:
        data = msgpack.unpackb(raw, raw=False, strict_map_key=True, ext_hook=_no_ext)
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise ProtocolError(ErrorCode.BAD_JSON, "frame is not valid MessagePack") from exc
    if not _json_like(data) and not _binary_fields_only(data):
        raise ProtocolError(
            ErrorCode.BAD_JSON,
            "frame holds values JSON cannot represent (bytes, NaN, Infinity or non-string keys)",
        )
    return data


def _as_json_value(value: Any) -> Any:
    """What orjson would write for a value MessagePack has no type for (UUID,
    datetime, dataclass...), so both codecs send the same thing."""
    return orjson.loads(orjson.dumps(value))


def _no_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(ErrorCode.BAD_JSON, f"MessagePack extension type {code} is not allowed")


_SCALARS = (str, int, bool, type(None))

#: (§16) the payload fields that carry raw bytes in a MessagePack frame, by type
BINARY_FIELDS: dict[str, tuple[str, ...]] = {
    "DOC_SYNC": ("stateVector", "update"),
    "DOC_UPDATE": ("update",),
}


def _binary_fields_only(data: Any) -> bool:
    """True if the only values JSON cannot carry are the bytes of §16's binary fields
    (a document's update or state vector, never stored in the JSON state)."""
    if type(data) is not dict:
        return False
    kind, payload = data.get("type"), data.get("payload")
    fields = BINARY_FIELDS.get(kind) if type(kind) is str else None
    if fields is None or type(payload) is not dict:
        return False
    rest = {k: v for k, v in payload.items() if not (k in fields and type(v) is bytes)}
    return _json_like({**data, "payload": rest})


def _json_like(value: Any) -> bool:
    """True if ``value`` is made only of what JSON can carry."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            if any(type(key) is not str for key in item):
                return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float:
            if not math.isfinite(item):
                return False
        elif kind not in _SCALARS:
            return False
    return True
