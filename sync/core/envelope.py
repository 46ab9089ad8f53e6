"""Client → server envelopes: parse and validate into immutable messages.

``parse_message`` never raises anything but :class:`ProtocolError`, whatever
the input (a hypothesis property in the tests holds it to that). The requestId
is validated first so that every later refusal can echo it (§8).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .codec import decode_json
from .documents import binary_field
from .errors import ErrorCode, ProtocolError
from .frozen import fast_init
from .limits import Limits
from .merge_patch import shape_violation

ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
KIND_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_REQUEST_ID_LENGTH = 64

RequestId = str | int | None


@dataclass(frozen=True, slots=True)
class JoinRoom:
    TYPE: ClassVar[str] = "JOIN_ROOM"
    room_id: str
    fields: dict[str, Any]
    session_token: str | None = None
    spectate: bool = False
    request_id: RequestId = None
    #: (1.1, §14) the version and epoch of the state the client still holds
    since_version: int | None = None
    epoch: str | None = None


@dataclass(frozen=True, slots=True)
class LeaveRoom:
    TYPE: ClassVar[str] = "LEAVE_ROOM"
    room_id: str
    request_id: RequestId = None


@fast_init
@dataclass(frozen=True, slots=True)
class StateUpdate:
    TYPE: ClassVar[str] = "STATE_UPDATE"
    room_id: str
    patch: dict[str, Any]
    entity_id: str | None = None
    expected_version: int | None = None
    request_id: RequestId = None


@dataclass(frozen=True, slots=True)
class Resync:
    TYPE: ClassVar[str] = "RESYNC"
    room_id: str
    request_id: RequestId = None


@dataclass(frozen=True, slots=True)
class Ping:
    TYPE: ClassVar[str] = "PING"
    room_id: str | None = None
    request_id: RequestId = None
    payload: dict[str, Any] = field(default_factory=dict)


@fast_init
@dataclass(frozen=True, slots=True)
class Message:
    """MESSAGE (§11): something for the room's code; ``data`` is any JSON value."""

    TYPE: ClassVar[str] = "MESSAGE"
    room_id: str
    kind: str
    data: Any = None
    request_id: RequestId = None


@dataclass(frozen=True, slots=True)
class DocSync:
    """DOC_SYNC (§16): the client's Yjs state vector of document ``doc_id``."""

    TYPE: ClassVar[str] = "DOC_SYNC"
    room_id: str
    doc_id: str
    state_vector: bytes
    request_id: RequestId = None


@dataclass(frozen=True, slots=True)
class DocUpdate:
    """DOC_UPDATE (§16): a Yjs v1 update of document ``doc_id``."""

    TYPE: ClassVar[str] = "DOC_UPDATE"
    room_id: str
    doc_id: str
    update: bytes
    request_id: RequestId = None


ClientMessage = JoinRoom | LeaveRoom | StateUpdate | Resync | Ping | Message | DocSync | DocUpdate


def parse_message(raw: str | bytes, limits: Limits) -> ClientMessage:
    """Decode one JSON text frame into a message, or raise ProtocolError."""
    return parse_envelope(decode_json(raw), limits)


def parse_envelope(data: Any, limits: Limits) -> ClientMessage:
    """Validate an already decoded frame (JSON or MessagePack)."""
    if type(data) is not dict:
        raise ProtocolError(ErrorCode.BAD_JSON, "frame must be a JSON object")
    request_id = data.get("requestId")
    if request_id is not None:
        request_id = _request_id(data)
    room_id = data.get("roomId")
    try:
        if room_id is not None and (
            type(room_id) is not str or room_id not in _IDS_SEEN  # _is_id's fast path
        ) and not _is_id(room_id):
            raise _bad("roomId must match [A-Za-z0-9_.-]{1,64}")
        kind = data.get("type")
        if type(kind) is not str:  # (one test on the way of a valid frame, as below)
            if kind is None:
                raise _bad("type is required")
            raise _bad("type must be a string")
        parser = _PARSERS.get(kind)
        if parser is None:
            raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:64]!r}")
        payload = data.get("payload")
        if type(payload) is not dict:
            if "payload" in data:
                raise _bad("payload must be an object")
            payload = {}
        if kind != "PING" and room_id is None:
            raise _bad(f"roomId is required on {kind}")
        return parser(data, room_id, payload, request_id, limits)
    except ProtocolError as exc:
        exc.request_id = request_id
        if room_id is not None and _is_id(room_id):
            exc.room_id = room_id
        raise


def request_id_of(data: Any) -> RequestId:
    """The requestId of a decoded frame if it is valid, else None (for ERROR echo)."""
    if type(data) is not dict:
        return None
    try:
        return _request_id(data)
    except ProtocolError:
        return None


def _request_id(data: dict[str, Any]) -> RequestId:
    value = data.get("requestId")
    if value is None:
        return None
    if type(value) is str and len(value) <= MAX_REQUEST_ID_LENGTH:
        return value
    if type(value) is int and len(str(value)) <= MAX_REQUEST_ID_LENGTH:
        return value
    raise _bad("requestId must be a string or an integer of at most 64 characters")


def _is_id(value: Any) -> bool:
    if type(value) is not str:
        return False
    if value in _IDS_SEEN:  # a room id comes with every message: the regex once per id
        return True
    if ID_PATTERN.fullmatch(value) is None:
        return False
    if len(_IDS_SEEN) >= _IDS_SEEN_MAX:
        _IDS_SEEN.clear()
    _IDS_SEEN.add(value)
    return True


#: ids that matched ``ID_PATTERN`` (``_is_id``), emptied when it reaches its bound
_IDS_SEEN: set[str] = set()
_IDS_SEEN_MAX = 10_000


def _bad(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_MESSAGE, message)


def check_document(value: dict[str, Any], limits: Limits, what: str) -> None:
    """Nesting depth and key length limits of §8 (PAYLOAD_TOO_LARGE)."""
    violation = shape_violation(value, limits.max_depth, limits.max_key_length)
    if violation == "depth":
        raise ProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"{what} nests deeper than {limits.max_depth} levels",
        )
    if violation == "key":
        raise ProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"{what} has a key longer than {limits.max_key_length} characters",
        )


def _parse_join(
    data: dict[str, Any], room_id: str, payload: dict[str, Any], request_id: RequestId,
    limits: Limits,
) -> JoinRoom:
    fields = dict(payload)
    token = fields.pop("sessionToken", None)
    if token is not None and (type(token) is not str or len(token) > 256):
        raise _bad("sessionToken must be a string")
    spectate = fields.pop("spectate", False)
    if spectate is None:
        spectate = False
    if type(spectate) is not bool:
        raise _bad("spectate must be a boolean")
    since = fields.pop("sinceVersion", None)
    if since is not None and (type(since) is not int or since < 0):
        raise _bad("sinceVersion must be a non-negative integer")
    epoch = fields.pop("epoch", None)
    if epoch is not None and (type(epoch) is not str or len(epoch) > 128):
        raise _bad("epoch must be a string of at most 128 characters")
    check_document(fields, limits, "payload")
    return JoinRoom(room_id, fields, token or None, spectate, request_id, since, epoch)


def _parse_leave(
    data: dict[str, Any], room_id: str, payload: dict[str, Any], request_id: RequestId,
    limits: Limits,
) -> LeaveRoom:
    return LeaveRoom(room_id, request_id)


def _parse_update(
    data: dict[str, Any], room_id: str, payload: dict[str, Any], request_id: RequestId,
    limits: Limits,
) -> StateUpdate:
    entity_id = data.get("entityId")
    if entity_id is not None and not _is_id(entity_id):
        raise _bad("entityId must match [A-Za-z0-9_.-]{1,64}")
    expected = data.get("expectedVersion")
    if expected is not None and (type(expected) is not int or expected < 0):
        raise _bad("expectedVersion must be a non-negative integer")
    version = data.get("version")
    if version is not None and type(version) is not int:
        raise _bad("version must be an integer")
    check_document(payload, limits, "payload")
    return StateUpdate(room_id, payload, entity_id, expected, request_id)


def _parse_message(
    data: dict[str, Any], room_id: str, payload: dict[str, Any], request_id: RequestId,
    limits: Limits,
) -> Message:
    kind = payload.get("kind")
    if type(kind) is not str or not KIND_PATTERN.fullmatch(kind):
        raise _bad("kind must be a string matching [A-Za-z0-9_.:-]{1,64}")
    check_document(payload, limits, "payload")
    return Message(room_id, kind, payload.get("data"), request_id)


def _parse_resync(
    data: dict[str, Any], room_id: str, payload: dict[str, Any], request_id: RequestId,
    limits: Limits,
) -> Resync:
    return Resync(room_id, request_id)


def _parse_ping(
    data: dict[str, Any], room_id: str | None, payload: dict[str, Any],
    request_id: RequestId, limits: Limits,
) -> Ping:
    return Ping(room_id, request_id, payload)


def _doc_id(payload: dict[str, Any]) -> str:
    doc_id = payload.get("docId")
    if type(doc_id) is not str or not ID_PATTERN.fullmatch(doc_id):
        raise _bad("docId must match [A-Za-z0-9_.-]{1,64}")
    return doc_id


def _parse_doc_sync(
    data: dict[str, Any], room_id: str, payload: dict[str, Any], request_id: RequestId,
    limits: Limits,
) -> DocSync:
    return DocSync(room_id, _doc_id(payload), binary_field(payload, "stateVector"), request_id)


def _parse_doc_update(
    data: dict[str, Any], room_id: str, payload: dict[str, Any], request_id: RequestId,
    limits: Limits,
) -> DocUpdate:
    return DocUpdate(room_id, _doc_id(payload), binary_field(payload, "update"), request_id)


_PARSERS: dict[str, Callable[..., ClientMessage]] = {
    "JOIN_ROOM": _parse_join,
    "LEAVE_ROOM": _parse_leave,
    "STATE_UPDATE": _parse_update,
    "RESYNC": _parse_resync,
    "PING": _parse_ping,
    "MESSAGE": _parse_message,
    "DOC_SYNC": _parse_doc_sync,
    "DOC_UPDATE": _parse_doc_update,
}
