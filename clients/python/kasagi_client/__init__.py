"""Kasagi Sync client for asyncio: join a room, mirror its state, send updates, resume.

Quick start::

    async with kasagi_client.connect("ws://127.0.0.1:8080/sync") as client:
        await client.join("lobby", playerName="Bot")
        await client.update(x=10, y=20)
        await client.send_message("emote", {"emoji": "🎉"})
        async for event in client:
            ...

The pure parts (``merge_patch``, ``mirror``, ``events``, ``errors``, ``backoff``,
``wire``) do no I/O; ``client`` is the only module that touches the network.
"""

from .backoff import Backoff
from .client import ClientStats, KasagiClient, UpdateResult, connect
from .errors import (
    AlreadyInRoom,
    BadJson,
    BadMessage,
    ClientClosed,
    ConnectFailed,
    ConnectionLost,
    Forbidden,
    InternalError,
    InvalidUpdate,
    KasagiClientError,
    KasagiError,
    NotConnected,
    NotInRoom,
    NotJoined,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    RoomClosed,
    RoomFull,
    RoomNotFound,
    UnknownMessage,
    UnknownType,
    VersionConflict,
    error_from_payload,
)
from .events import (
    Closed,
    Delta,
    Disconnected,
    Error,
    Event,
    FullState,
    GapDetected,
    PlayerJoined,
    PlayerLeft,
    Pong,
    Reconnected,
    Reconnecting,
    Resumed,
    RoomEvent,
    ServerEvent,
    StateChange,
    StatusEvent,
)
from .merge_patch import apply_merge_patch
from .mirror import ChainOutcome, StateMirror

__version__ = "0.1.0"

__all__ = [
    "AlreadyInRoom",
    "Backoff",
    "BadJson",
    "BadMessage",
    "ChainOutcome",
    "ClientClosed",
    "ClientStats",
    "Closed",
    "ConnectFailed",
    "ConnectionLost",
    "Delta",
    "Disconnected",
    "Error",
    "Event",
    "Forbidden",
    "FullState",
    "GapDetected",
    "InternalError",
    "InvalidUpdate",
    "KasagiClient",
    "KasagiClientError",
    "KasagiError",
    "NotConnected",
    "NotInRoom",
    "NotJoined",
    "PayloadTooLarge",
    "PlayerJoined",
    "PlayerLeft",
    "Pong",
    "RateLimited",
    "Reconnected",
    "Reconnecting",
    "RequestTimeout",
    "Resumed",
    "RoomClosed",
    "RoomEvent",
    "RoomFull",
    "RoomNotFound",
    "ServerEvent",
    "StateChange",
    "StateMirror",
    "StatusEvent",
    "UnknownMessage",
    "UnknownType",
    "UpdateResult",
    "VersionConflict",
    "__version__",
    "apply_merge_patch",
    "connect",
    "error_from_payload",
]
