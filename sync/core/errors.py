"""Error codes of the contract (PROTOCOL.md §8) as values.

A refused message raises :class:`ProtocolError` once, anywhere in the core; the
consumer turns it into one ERROR frame at one edge. Nothing here does I/O.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    BAD_JSON = "BAD_JSON"
    BAD_MESSAGE = "BAD_MESSAGE"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    NOT_IN_ROOM = "NOT_IN_ROOM"
    ALREADY_IN_ROOM = "ALREADY_IN_ROOM"
    ROOM_NOT_FOUND = "ROOM_NOT_FOUND"
    ROOM_FULL = "ROOM_FULL"
    ROOM_CLOSED = "ROOM_CLOSED"
    FORBIDDEN = "FORBIDDEN"
    INVALID_UPDATE = "INVALID_UPDATE"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL = "INTERNAL"
    UNKNOWN_MESSAGE = "UNKNOWN_MESSAGE"


class ProtocolError(Exception):
    """A refusal that becomes an ERROR frame; it never changes state.

    ``extra`` holds additional payload fields (``currentVersion`` for
    VERSION_CONFLICT). ``request_id`` and ``room_id`` are filled in by the
    parser or the consumer when they are known and valid.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        request_id: str | int | None = None,
        room_id: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.request_id = request_id
        self.room_id = room_id

    def payload(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message, **self.extra}
