"""Server → client messages (PROTOCOL.md §2–§5) as plain dicts.

One place decides the envelope's field names and order. Encoding is the
connection's codec's job (``sync.core.codec``): the hub encodes a room's
frames once per tick and codec and sends the same bytes to every member.
"""

from __future__ import annotations

from typing import Any

from .changes import Change
from .errors import ProtocolError

RequestId = str | int | None


def change_frame(room_id: str, change: Change, timestamp: int) -> dict[str, Any]:
    return {
        "type": change.kind.value,
        "roomId": room_id,
        "version": change.version,
        "baseVersion": change.base_version,
        "timestamp": timestamp,
        "payload": change.payload if change.payload is not None else change.patch,
    }


def delta_frame(
    room_id: str, base_version: int, version: int, patch: dict[str, Any], timestamp: int
) -> dict[str, Any]:
    return {
        "type": "DELTA_UPDATE",
        "roomId": room_id,
        "version": version,
        "baseVersion": base_version,
        "timestamp": timestamp,
        "payload": patch,
    }


def full_state_frame(
    room_id: str,
    version: int,
    state: dict[str, Any],
    *,
    player_id: str | None,
    session_token: str | None,
    resumed: bool,
    timestamp: int,
    request_id: RequestId = None,
    epoch: str | None = None,
    docs: list[str] | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "playerId": player_id,
        "sessionToken": session_token,
        "resumed": resumed,
    }
    if epoch is not None:
        payload["epoch"] = epoch
    payload["state"] = state
    if docs is not None:
        payload["docs"] = docs  # (§16) the room's documents, not their contents
    frame: dict[str, Any] = {
        "type": "FULL_STATE",
        "roomId": room_id,
        "version": version,
        "timestamp": timestamp,
        "payload": payload,
    }
    if request_id is not None:
        frame["requestId"] = request_id
    return frame


def resumed_frame(
    room_id: str,
    version: int,
    *,
    player_id: str,
    session_token: str,
    epoch: str,
    timestamp: int,
    request_id: RequestId = None,
) -> dict[str, Any]:
    """RESUMED (§14): the client keeps its state at ``version``; the frames that
    follow continue its chain from there."""
    frame: dict[str, Any] = {
        "type": "RESUMED",
        "roomId": room_id,
        "version": version,
        "timestamp": timestamp,
        "payload": {
            "playerId": player_id,
            "sessionToken": session_token,
            "resumed": True,
            "epoch": epoch,
        },
    }
    if request_id is not None:
        frame["requestId"] = request_id
    return frame


def event_frame(
    room_id: str, kind: str, data: Any, sender: str | None, timestamp: int
) -> dict[str, Any]:
    """EVENT (§11): ephemeral, so no version and no baseVersion."""
    return {
        "type": "EVENT",
        "roomId": room_id,
        "timestamp": timestamp,
        "payload": {"kind": kind, "data": data, "from": sender},
    }


def doc_sync_frame(
    room_id: str, doc_id: str, update: bytes | str, state_vector: bytes | str, *,
    timestamp: int, request_id: RequestId = None,
) -> dict[str, Any]:
    """DOC_SYNC (§16, S → C); binary values as the codec carries them
    (``sync.core.documents.wire_bytes``)."""
    frame: dict[str, Any] = {
        "type": "DOC_SYNC",
        "roomId": room_id,
        "timestamp": timestamp,
        "payload": {"docId": doc_id, "update": update, "stateVector": state_vector},
    }
    if request_id is not None:
        frame["requestId"] = request_id
    return frame


def doc_update_frame(
    room_id: str, doc_id: str, update: bytes | str, sender: str | None, timestamp: int,
) -> dict[str, Any]:
    """DOC_UPDATE (§16, S → C): another member's update, the same bytes it sent."""
    return {
        "type": "DOC_UPDATE",
        "roomId": room_id,
        "timestamp": timestamp,
        "payload": {"docId": doc_id, "update": update, "from": sender},
    }


def pong_frame(timestamp: int, request_id: RequestId, room_id: str | None) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "PONG",
        "timestamp": timestamp,
        "payload": {"serverTime": timestamp},
    }
    if room_id is not None:
        frame["roomId"] = room_id
    if request_id is not None:
        frame["requestId"] = request_id
    return frame


def error_frame(error: ProtocolError, timestamp: int) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "ERROR", "timestamp": timestamp, "payload": error.payload()}
    if error.room_id is not None:
        frame["roomId"] = error.room_id
    if error.request_id is not None:
        frame["requestId"] = error.request_id
    return frame
