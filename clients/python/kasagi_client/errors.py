"""Exceptions: one class per ERROR code of the contract, plus local failures.

Server refusals (PROTOCOL.md §8) derive from :class:`KasagiError` and carry the
code, message and full payload, so callers can ``except RoomFull`` instead of
comparing strings. Conditions detected by the client itself (no connection, no
answer in time) derive from :class:`KasagiClientError`; they have no contract
code. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "AlreadyInRoom",
    "BadJson",
    "BadMessage",
    "ClientClosed",
    "ConnectFailed",
    "ConnectionLost",
    "Forbidden",
    "InternalError",
    "InvalidUpdate",
    "KasagiClientError",
    "KasagiError",
    "NotConnected",
    "NotInRoom",
    "NotJoined",
    "PayloadTooLarge",
    "RateLimited",
    "RequestTimeout",
    "RoomClosed",
    "RoomFull",
    "RoomNotFound",
    "UnknownMessage",
    "UnknownType",
    "VersionConflict",
    "error_from_payload",
]

RequestId = str | int


class KasagiError(Exception):
    """An ERROR message from the server, raised by the call it answers.

    ``code`` is the contract's code (``"ROOM_FULL"``...), ``message`` the
    server's human text and ``payload`` the ERROR payload as received.
    """

    code: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        payload: Mapping[str, Any] | None = None,
        request_id: RequestId | None = None,
        room_id: str | None = None,
    ) -> None:
        super().__init__(message)
        # An instance attribute, so an unknown code from a newer server survives.
        self.code = code or type(self).code  # type: ignore[misc]
        self.message = message
        self.payload: dict[str, Any] = dict(payload or {})
        self.request_id = request_id
        self.room_id = room_id

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.code else self.message


class BadJson(KasagiError):
    code = "BAD_JSON"


class BadMessage(KasagiError):
    code = "BAD_MESSAGE"


class UnknownType(KasagiError):
    code = "UNKNOWN_TYPE"


class NotInRoom(KasagiError):
    code = "NOT_IN_ROOM"


class AlreadyInRoom(KasagiError):
    code = "ALREADY_IN_ROOM"


class RoomNotFound(KasagiError):
    code = "ROOM_NOT_FOUND"


class RoomFull(KasagiError):
    code = "ROOM_FULL"


class RoomClosed(KasagiError):
    code = "ROOM_CLOSED"


class Forbidden(KasagiError):
    code = "FORBIDDEN"


class InvalidUpdate(KasagiError):
    code = "INVALID_UPDATE"


class VersionConflict(KasagiError):
    """``expectedVersion`` did not match; ``current_version`` is the room's."""

    code = "VERSION_CONFLICT"

    @property
    def current_version(self) -> int | None:
        value = self.payload.get("currentVersion")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class PayloadTooLarge(KasagiError):
    code = "PAYLOAD_TOO_LARGE"


class RateLimited(KasagiError):
    code = "RATE_LIMITED"


class InternalError(KasagiError):
    code = "INTERNAL"


class UnknownMessage(KasagiError):
    """(1.1) A MESSAGE kind the room's code neither handles nor relays (§11)."""

    code = "UNKNOWN_MESSAGE"


_BY_CODE: dict[str, type[KasagiError]] = {
    cls.code: cls
    for cls in (
        BadJson,
        BadMessage,
        UnknownType,
        NotInRoom,
        AlreadyInRoom,
        RoomNotFound,
        RoomFull,
        RoomClosed,
        Forbidden,
        InvalidUpdate,
        VersionConflict,
        PayloadTooLarge,
        RateLimited,
        InternalError,
        UnknownMessage,
    )
}


def error_from_payload(
    payload: Mapping[str, Any],
    *,
    request_id: RequestId | None = None,
    room_id: str | None = None,
) -> KasagiError:
    """Build the typed exception for an ERROR payload; unknown codes get the base class."""
    code = str(payload.get("code") or "")
    message = str(payload.get("message") or code or "error")
    cls = _BY_CODE.get(code, KasagiError)
    return cls(message, code=code, payload=payload, request_id=request_id, room_id=room_id)


class KasagiClientError(Exception):
    """A failure detected by the client itself, not an ERROR from the server."""


class NotConnected(KasagiClientError):
    """The socket is down (a reconnect may be under way); the message was not sent."""


class ConnectionLost(NotConnected):
    """The socket dropped while a request waited: its effect on the server is unknown."""


class ClientClosed(KasagiClientError):
    """The client was closed (by ``close()`` or after giving up reconnecting)."""


class ConnectFailed(KasagiClientError):
    """The first WebSocket handshake failed (refused, bad URL, HTTP error)."""


class NotJoined(KasagiClientError):
    """A room operation was called while the client is in no room."""


class RequestTimeout(KasagiClientError, TimeoutError):
    """No answer arrived within the timeout; the request may still take effect."""
