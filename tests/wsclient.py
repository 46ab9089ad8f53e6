"""A bare protocol client for tests: raw JSON envelopes over a real WebSocket.

Deliberately not the SDK: conformance tests must see every frame exactly as
the server sent it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import orjson
import websockets

from sync.core import bin_codec


class Conn:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        self.raw: list[str | bytes] = []  # every frame as it came off the socket

    @classmethod
    async def open(cls, url: str, **options: Any) -> Conn:
        return cls(await websockets.connect(url, max_size=None, **options))

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        if isinstance(message, dict):
            message = orjson.dumps(message).decode()
        await self.ws.send(message)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        self.raw.append(raw)
        frame = self.decode(raw)
        self.seen.append(frame)
        return frame

    def decode(self, raw: str | bytes) -> dict[str, Any]:
        return orjson.loads(raw)

    async def expect(self, type_: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        """The next frame of ``type_`` (with payload fields equal to ``match``)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no {type_} {match} within {timeout}s; saw {self.seen[-5:]}")
            frame = await self.recv(left)
            if frame["type"] != type_:
                continue
            payload = frame.get("payload") or {}
            if all(payload.get(k) == v for k, v in match.items()):
                return frame

    async def nothing(self, within: float = 0.3) -> None:
        """Assert no frame arrives for ``within`` seconds."""
        try:
            frame = await self.recv(within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {frame}")

    async def join(self, room_id: str, **payload: Any) -> dict[str, Any]:
        await self.send({"type": "JOIN_ROOM", "roomId": room_id, "payload": payload})
        frame = await self.recv()
        assert frame["type"] == "FULL_STATE", frame
        return frame

    async def close(self) -> None:
        await self.ws.close()


class MsgpackConn(Conn):
    """A client that offered ``kasagi.msgpack``: binary MessagePack frames both ways.

    ``binary`` records, per received frame, whether it came as a binary frame.
    """

    def __init__(self, ws: websockets.ClientConnection) -> None:
        super().__init__(ws)
        self.binary: list[bool] = []

    @classmethod
    async def open(cls, url: str, **options: Any) -> MsgpackConn:
        return cls(await websockets.connect(
            url, max_size=None, subprotocols=["kasagi.msgpack"], **options))

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        if isinstance(message, dict):
            message = msgpack.packb(message)
        await self.ws.send(message)

    def decode(self, raw: str | bytes) -> dict[str, Any]:
        self.binary.append(isinstance(raw, bytes))
        return msgpack.unpackb(raw) if isinstance(raw, bytes) else orjson.loads(raw)


class BinConn(Conn):
    """A client that offered ``kasagi.bin1``: the compact codec both ways, decoded by
    the pure decoder (``sync.core.bin_codec``); ``sizes`` records each frame's bytes."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        super().__init__(ws)
        self.binary: list[bool] = []
        self.sizes: list[int] = []
        self.encoder = bin_codec.StreamEncoder()
        self.decoder = bin_codec.Decoder()
        self.names: set[str] = set()  # every name a table announced (tables reset)

    @classmethod
    async def open(cls, url: str, **options: Any) -> BinConn:
        return cls(await websockets.connect(
            url, max_size=None, subprotocols=[bin_codec.SUBPROTOCOL], **options))

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        if isinstance(message, dict):
            message = self.encoder.encode(message)
        await self.ws.send(message)

    def decode(self, raw: str | bytes) -> dict[str, Any]:
        self.binary.append(isinstance(raw, bytes))
        self.sizes.append(len(raw))
        if not isinstance(raw, bytes):
            return orjson.loads(raw)
        frame = self.decoder.decode(raw)
        self.names.update(self.decoder.table.values())
        return frame


#: a client of each codec, for tests parametrised over them
CODECS: dict[str, type[Conn]] = {"json": Conn, "msgpack": MsgpackConn, "bin1": BinConn}


async def connect(url: str, **options: Any) -> Conn:
    return await Conn.open(url, **options)
