"""The room consumer a Django developer writes without Kasagi, after the Channels tutorial.

Rooms live in one module-level dict; every accepted change is fanned out with
one ``channel_layer.group_send`` to the room's group, and each member's
consumer serialises and sends it. No batching, no per-room ordering machinery,
no persistence, no reconnection grace, no rate limit. It speaks just enough of
the wire contract for ``bench.load`` (JOIN_ROOM, spectate, STATE_UPDATE,
LEAVE_ROOM, RESYNC, PING) and is only the yardstick of ``bench.compare``:
keep it as plain as a tutorial; never optimise it.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

ROOM_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")

#: room id -> {"version": int, "state": {"players": {...}, "entities": {...}}}
ROOMS: dict[str, dict[str, Any]] = {}


def now_ms() -> int:
    return int(time.time() * 1000)


def group_name(room_id: str) -> str:
    return f"room.{room_id}"


class SyncConsumer(AsyncJsonWebsocketConsumer):
    handlers = {
        "JOIN_ROOM": "join_room",
        "LEAVE_ROOM": "leave_room",
        "STATE_UPDATE": "state_update",
        "RESYNC": "resync",
        "PING": "ping",
    }

    async def connect(self) -> None:
        self.room_id: str | None = None
        self.player_id: str | None = None
        self.version = 0  # last room version this socket was sent
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.room_id is not None:
            await self.leave("timeout")

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            await self.send_error(content, "BAD_MESSAGE", "a message is a JSON object")
            return
        handler = self.handlers.get(content.get("type"))
        if handler is None:
            await self.send_error(content, "UNKNOWN_TYPE", "unknown message type")
            return
        await getattr(self, handler)(content)

    # -- client -> server -------------------------------------------------

    async def join_room(self, content: dict[str, Any]) -> None:
        room_id = content.get("roomId")
        payload = content.get("payload") or {}
        if self.room_id is not None:
            await self.send_error(content, "ALREADY_IN_ROOM", "leave your room first")
            return
        if not isinstance(room_id, str) or not ROOM_ID.fullmatch(room_id):
            await self.send_error(content, "BAD_MESSAGE", "bad roomId")
            return
        if not isinstance(payload, dict):
            await self.send_error(content, "BAD_MESSAGE", "payload must be an object")
            return
        await self.channel_layer.group_add(group_name(room_id), self.channel_name)
        room = ROOMS.setdefault(room_id, {"version": 0, "state": {"players": {}, "entities": {}}})
        self.room_id = room_id
        if payload.get("spectate") is True:
            await self.send_full_state(room, content)
            return
        self.player_id = f"p-{uuid.uuid4().hex[:12]}"
        player = {
            k: v
            for k, v in payload.items()
            if k not in ("sessionToken", "spectate") and v is not None
        }
        room["state"]["players"][self.player_id] = player
        room["version"] += 1
        await self.send_full_state(room, content)
        await self.broadcast(room, "PLAYER_JOINED", {"playerId": self.player_id, "state": player})

    async def leave_room(self, content: dict[str, Any]) -> None:
        if self.room_id is None:
            await self.send_error(content, "NOT_IN_ROOM", "not in a room")
            return
        await self.leave("left")

    async def state_update(self, content: dict[str, Any]) -> None:
        if self.room_id is None or content.get("roomId") != self.room_id:
            await self.send_error(content, "NOT_IN_ROOM", "not in this room")
            return
        if self.player_id is None:
            await self.send_error(content, "FORBIDDEN", "spectators cannot write")
            return
        patch = content.get("payload") or {}
        if not isinstance(patch, dict):
            await self.send_error(content, "BAD_MESSAGE", "payload must be an object")
            return
        room = ROOMS[self.room_id]
        entity_id = content.get("entityId")
        if entity_id is None:
            target = room["state"]["players"][self.player_id]
            delta = {"players": {self.player_id: patch}}
        else:
            target = room["state"]["entities"].setdefault(str(entity_id), {})
            delta = {"entities": {str(entity_id): patch}}
        for key, value in patch.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
        if entity_id is not None and not target:
            del room["state"]["entities"][str(entity_id)]
            delta = {"entities": {str(entity_id): None}}
        room["version"] += 1
        await self.broadcast(room, "DELTA_UPDATE", delta)

    async def resync(self, content: dict[str, Any]) -> None:
        if self.room_id is None:
            await self.send_error(content, "NOT_IN_ROOM", "not in a room")
            return
        await self.send_full_state(ROOMS[self.room_id], content)

    async def ping(self, content: dict[str, Any]) -> None:
        message = {"type": "PONG", "payload": {"serverTime": now_ms()}, "timestamp": now_ms()}
        if "requestId" in content:
            message["requestId"] = content["requestId"]
        await self.send_json(message)

    # -- channel layer -> client -----------------------------------------

    async def room_event(self, event: dict[str, Any]) -> None:
        message = event["message"]
        if message["version"] <= self.version:  # already in this socket's FULL_STATE
            return
        self.version = message["version"]
        await self.send_json(message)

    # -- helpers ----------------------------------------------------------

    async def leave(self, reason: str) -> None:
        room_id, player_id = self.room_id, self.player_id
        self.room_id = self.player_id = None
        await self.channel_layer.group_discard(group_name(room_id), self.channel_name)
        if player_id is not None:
            room = ROOMS[room_id]
            room["state"]["players"].pop(player_id, None)
            room["version"] += 1
            await self.broadcast(
                room, "PLAYER_LEFT", {"playerId": player_id, "reason": reason}, room_id=room_id
            )

    async def broadcast(
        self, room: dict[str, Any], kind: str, payload: dict[str, Any], room_id: str | None = None
    ) -> None:
        room_id = room_id or self.room_id
        message = {
            "type": kind,
            "roomId": room_id,
            "version": room["version"],
            "baseVersion": room["version"] - 1,
            "timestamp": now_ms(),
            "payload": payload,
        }
        await self.channel_layer.group_send(
            group_name(room_id), {"type": "room.event", "message": message}
        )

    async def send_full_state(self, room: dict[str, Any], content: dict[str, Any]) -> None:
        self.version = room["version"]
        message = {
            "type": "FULL_STATE",
            "roomId": self.room_id,
            "version": room["version"],
            "timestamp": now_ms(),
            "payload": {"playerId": self.player_id, "resumed": False, "state": room["state"]},
        }
        if "requestId" in content:
            message["requestId"] = content["requestId"]
        await self.send_json(message)

    async def send_error(self, content: Any, code: str, text: str) -> None:
        message: dict[str, Any] = {"type": "ERROR", "payload": {"code": code, "message": text}}
        if isinstance(content, dict):
            if isinstance(content.get("roomId"), str):
                message["roomId"] = content["roomId"]
            if "requestId" in content:
                message["requestId"] = content["requestId"]
        message["timestamp"] = now_ms()
        await self.send_json(message)
