"""Envelope encoding (PROTOCOL.md §1–§2): one JSON object per text frame, via orjson,
or one MessagePack map per binary frame once the server accepted the subprotocol
``kasagi.msgpack`` (needs the ``msgpack`` package: ``pip install kasagi-client[msgpack]``).

Builds the client → server messages and decodes server frames. Pure: the
client passes the bytes to the socket itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from .errors import RequestId
from .events import MalformedMessage

__all__ = [
    "MESSAGE_KIND",
    "MSGPACK_SUBPROTOCOL",
    "check_kind",
    "decode",
    "encode",
    "encode_msgpack",
    "envelope",
    "message",
]

MSGPACK_SUBPROTOCOL = "kasagi.msgpack"
#: the shape of a MESSAGE kind (§11)
MESSAGE_KIND = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def envelope(
    type_: str,
    *,
    room_id: str | None = None,
    payload: Mapping[str, Any] | None = None,
    request_id: RequestId | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A client → server message; fields left as None are omitted, not sent as null.

    ``extra`` takes envelope fields in their wire spelling (``version``,
    ``expectedVersion``, ``entityId``).
    """
    msg: dict[str, Any] = {"type": type_}
    if room_id is not None:
        msg["roomId"] = room_id
    if payload:
        msg["payload"] = dict(payload)
    if request_id is not None:
        msg["requestId"] = request_id
    msg.update((key, value) for key, value in extra.items() if value is not None)
    return msg


def check_kind(kind: object) -> str:
    """``kind`` if it is a valid MESSAGE kind; ValueError otherwise (the server
    would refuse it with BAD_MESSAGE)."""
    if not isinstance(kind, str) or MESSAGE_KIND.fullmatch(kind) is None:
        raise ValueError(f"bad MESSAGE kind {kind!r}: must match [A-Za-z0-9_.:-]{{1,64}}")
    return kind


def message(room_id: str, kind: str, data: Any = None) -> dict[str, Any]:
    """A MESSAGE (§11); ``data`` None is left out (the server reads it as null).

    Raises ValueError for a bad kind (see :func:`check_kind`).
    """
    check_kind(kind)
    payload: dict[str, Any] = {"kind": kind}
    if data is not None:
        payload["data"] = data
    return envelope("MESSAGE", room_id=room_id, payload=payload)


def encode(msg: Mapping[str, Any]) -> str:
    """Serialise for a text frame (a str, so any websockets version sends a text frame)."""
    return orjson.dumps(msg).decode()


def encode_msgpack(msg: Mapping[str, Any]) -> bytes:
    """Serialise for a binary frame (a connection that negotiated ``kasagi.msgpack``)."""
    import msgpack

    return msgpack.packb(msg)


def decode(frame: str | bytes) -> dict[str, Any]:
    """Parse one server frame: text is JSON, binary is MessagePack; anything but an
    object is a protocol fault."""
    if isinstance(frame, bytes):
        try:
            import msgpack

            msg = msgpack.unpackb(frame)
        except Exception as exc:  # ImportError, or msgpack's several decode errors
            raise MalformedMessage(f"binary frame is not MessagePack: {exc}") from exc
    else:
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            raise MalformedMessage(f"frame is not JSON: {exc}") from exc
    if not isinstance(msg, dict):
        raise MalformedMessage("frame is not an object")
    return msg
