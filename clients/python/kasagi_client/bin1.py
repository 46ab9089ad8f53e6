"""The compact binary codec ``kasagi.bin1`` on the client side (docs/protocol.md,
"The compact binary codec"): a :class:`Decoder` of server frames and a
:class:`Encoder` of this client's frames, one of each per connection.

Written from the specification alone (the SDK does not import the server), so
it also checks that the page is enough to implement the codec. Pure: no I/O.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

__all__ = ["SUBPROTOCOL", "Decoder", "Encoder"]

SUBPROTOCOL = "kasagi.bin1"

TYPES = (
    "", "JOIN_ROOM", "LEAVE_ROOM", "STATE_UPDATE", "RESYNC", "PING", "FULL_STATE",
    "DELTA_UPDATE", "PLAYER_JOINED", "PLAYER_LEFT", "PONG", "ERROR", "MESSAGE", "EVENT",
    "RESUMED", "DOC_SYNC", "DOC_UPDATE",
)
_CODES = {name: code for code, name in enumerate(TYPES) if name}
_RESETS = (6, 14)  # FULL_STATE, RESUMED
STATIC = (
    "players", "entities", "playerId", "sessionToken", "resumed", "state", "epoch", "docs",
    "kind", "data", "from", "reason", "serverTime", "code", "message", "docId", "update",
    "stateVector", "entityId", "expectedVersion", "spectate", "sinceVersion", "playerName",
    "name", "color", "x", "y", "z", "t", "score", "text", "owner", "left", "timeout",
    "kicked", "closed", "vx", "vy", "angle", "ready",
)
_STATIC_INDEX = {name: i + 1 for i, name in enumerate(STATIC)}
FIRST_DYNAMIC = 41
MAX_NAMES = 1024  # what the server accepts from a client
_DOUBLE = struct.Struct("<d")
_SHORT_DELTA, _PLAYERS_DELTA = 17, 18  # DELTA_UPDATE's short forms (head codes)
_CHAIN_MASK = 0x5E  # what they imply: current room, baseVersion, version, timestamp, payload


class Bin1Error(ValueError):
    """A frame that is not valid bin1, or names an index never announced."""


def _varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _zigzag(n: int) -> int:
    return n << 1 if n >= 0 else (-n << 1) - 1


def _text(out: bytearray, text: str) -> None:
    data = text.encode("utf-8")
    _varint(out, len(data))
    out += data


class Encoder:
    """This client's frames: a name (room id, entity id, payload keys down to three
    levels) is announced in the first frame that uses it, then sent as its index."""

    def __init__(self) -> None:
        self.names: dict[str, int] = {}

    def encode(self, msg: Mapping[str, Any]) -> bytes:
        new: list[tuple[int, str]] = []
        kind = msg.get("type")
        code = _CODES.get(kind, 0) if isinstance(kind, str) else 0

        def learn(name: str) -> None:
            if code not in _RESETS and (name not in self.names and name not in _STATIC_INDEX
                    and len(self.names) < MAX_NAMES):
                index = self.names[name] = FIRST_DYNAMIC + len(self.names)
                new.append((index, name))

        for key in ("roomId", "entityId"):
            if isinstance(msg.get(key), str):
                learn(msg[key])
        payload = msg.get("payload")
        if isinstance(payload, dict):
            for key, value in payload.items():
                learn(key)
                if isinstance(value, dict):
                    for inner, deeper in value.items():
                        learn(inner)
                        if isinstance(deeper, dict):
                            for name in deeper:
                                learn(name)

        mask, extra = 0, {}
        for key, value in msg.items():
            if key == "type" and code:
                continue
            if key == "roomId" and isinstance(value, str):
                mask |= 0x01
            elif key == "version" and type(value) is int and value >= 0:
                mask |= 0x08
            elif key == "timestamp" and type(value) is int and abs(value) < 2**62:
                mask |= 0x10
            elif key == "requestId":
                mask |= 0x20
            elif key == "payload":
                mask |= 0x40
            else:
                extra[key] = value
        if extra:
            mask |= 0x80
        head = code | (0x20 if new else 0) | (0x40 if mask & 0x10 else 0)
        out = bytearray((head, mask))
        if new:  # one run: the new names have consecutive indices
            _varint(out, 1)
            _varint(out, new[0][0])
            _varint(out, len(new))
            for _, name in new:
                _text(out, name)
        if mask & 0x01:
            self._value(out, msg["roomId"])
        if mask & 0x08:
            _varint(out, msg["version"])
        if mask & 0x10:
            _varint(out, _zigzag(msg["timestamp"]))
        if mask & 0x20:
            self._value(out, msg["requestId"])
        if mask & 0x40:
            self._value(out, msg["payload"])
        if extra:
            self._value(out, extra)
        return bytes(out)

    def _index(self, name: str) -> int | None:
        found = _STATIC_INDEX.get(name)
        return found if found is not None else self.names.get(name)

    def _value(self, out: bytearray, value: Any) -> None:
        if value is None:
            out.append(0 << 3 | 6)
        elif value is True or value is False:
            out.append((2 if value else 1) << 3 | 6)
        elif isinstance(value, int):
            if -(2**63) <= value < 2**63:
                _varint(out, _zigzag(value) << 3)
            else:
                out.append(3 << 3 | 6)
                _text(out, str(value))
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("NaN and Infinity are not JSON values")
            out.append(1)
            out += _DOUBLE.pack(value)
        elif isinstance(value, str):
            index = self._index(value)
            if index is None:
                data = value.encode("utf-8")
                _varint(out, len(data) << 3 | 2)
                out += data
            else:
                _varint(out, index << 3 | 3)
        elif isinstance(value, Mapping):
            _varint(out, len(value) << 3 | 4)
            for key, item in value.items():
                index = self._index(key)
                if index is None:
                    out.append(0)
                    _text(out, key)
                else:
                    _varint(out, index)
                self._value(out, item)
        elif isinstance(value, (list, tuple)):
            _varint(out, len(value) << 3 | 5)
            for item in value:
                self._value(out, item)
        elif isinstance(value, (bytes, bytearray)):
            _varint(out, len(value) << 3 | 7)
            out += value
        else:
            raise TypeError(f"{type(value).__name__} is not a JSON value")


class Decoder:
    """Server frames of one connection: the dynamic table, the time base, the
    current room and the version register (reset by FULL_STATE and RESUMED)."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.time_base = 0
        self.room: str | None = None
        self.version = 0
        self._data = b""
        self._pos = 0
        self._anchor: float | None = None  # the frame's timestamp, once read

    def decode(self, frame: bytes) -> dict[str, Any]:
        try:
            return self._frame(frame)
        except (IndexError, UnicodeDecodeError, struct.error) as exc:
            raise Bin1Error(f"malformed bin1 frame: {exc}") from exc

    def _frame(self, frame: bytes) -> dict[str, Any]:
        self._data, self._pos, self._anchor = frame, 2, None
        head = frame[0]
        code = head & 0x1F
        if head & 0x80 or code > _PLAYERS_DELTA:
            raise Bin1Error(f"bad head byte {head:#x}")
        players_only = code == _PLAYERS_DELTA
        if code >= _SHORT_DELTA:  # a chain DELTA_UPDATE: no mask byte
            code, mask, self._pos = 7, _CHAIN_MASK, 1
        else:
            mask = frame[1]
        if code in _RESETS:
            self.names, self.time_base = {}, 0
        if head & 0x20:
            if code in _RESETS:
                self.time_base = self._signed()
            for _ in range(self._uint()):
                first, count = self._uint(), self._uint()
                if first < FIRST_DYNAMIC:
                    raise Bin1Error(f"announcement of static index {first}")
                for index in range(first, first + count):
                    self.names[index] = self._string(self._uint())
        msg: dict[str, Any] = {"type": TYPES[code]} if code else {}
        if mask & 0x01:
            msg["roomId"] = self._value()
        elif mask & 0x02:
            if self.room is None:
                raise Bin1Error("current room before any FULL_STATE")
            msg["roomId"] = self.room
        base = None
        if mask & 0x04:
            d = (self._data[self._pos] - self.version) & 0xFF
            self._pos += 1
            base = self.version + (d - 256 if d >= 128 else d)
        if mask & 0x08:
            n = self._uint()
            msg["version"] = n if base is None else base + n
        if base is not None:
            msg["baseVersion"] = base
        if mask & 0x10:
            msg["timestamp"] = self._signed() + (0 if head & 0x40 else self.time_base)
            if abs(msg["timestamp"]) <= 2**53:
                self._anchor = float(msg["timestamp"])
        if mask & 0x20:
            msg["requestId"] = self._value()
        if mask & 0x40:
            msg["payload"] = {"players": self._value()} if players_only else self._value()
        if mask & 0x80:
            extra = self._value()
            if not isinstance(extra, dict):
                raise Bin1Error("extras are not an object")
            msg.update(extra)
        if self._pos != len(self._data):
            raise Bin1Error("bytes after the frame's end")
        if type(msg.get("version")) is int:
            self.version = msg["version"]
        if code in _RESETS:
            self.room = msg.get("roomId") if isinstance(msg.get("roomId"), str) else None
        return msg

    def _uint(self) -> int:
        data, pos = self._data, self._pos
        n = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            n |= (byte & 0x7F) << shift
            if byte < 0x80:
                self._pos = pos
                return n
            shift += 7
            if shift > 63:
                raise Bin1Error("varint too long")

    def _signed(self) -> int:
        z = self._uint()
        return z >> 1 if not z & 1 else -((z + 1) >> 1)

    def _string(self, length: int) -> str:
        end = self._pos + length
        if end > len(self._data):
            raise Bin1Error("string past the frame's end")
        text = self._data[self._pos:end].decode("utf-8")
        self._pos = end
        return text

    def _name(self, index: int) -> str:
        if 0 < index < FIRST_DYNAMIC:
            return STATIC[index - 1]
        try:
            return self.names[index]
        except KeyError:
            raise Bin1Error(f"name {index} was never announced") from None

    def _value(self) -> Any:
        h = self._uint()
        kind, x = h & 7, h >> 3
        if kind == 0:
            return x >> 1 if not x & 1 else -((x + 1) >> 1)
        if kind == 1:
            if x == 0:
                value = _DOUBLE.unpack_from(self._data, self._pos)[0]
                self._pos += 8
                return value
            k = self._signed()
            if x >= 128 or abs(k) >= 2**52:
                raise Bin1Error(f"bad short float (width {x})")
            if x >= 64:  # a short binary fraction
                return k * 2.0 ** (64 - x)
            if self._anchor is None:
                raise Bin1Error("a float near the frame's time in a frame without one")
            return self._anchor + k * 2.0 ** (1 - x)  # near the frame's timestamp
        if kind == 2:
            return self._string(x)
        if kind == 3:
            return self._name(x)
        if kind == 4:
            obj = {}
            for _ in range(x):
                k = self._uint()
                key = self._string(self._uint()) if k == 0 else self._name(k)
                obj[key] = self._value()
            return obj
        if kind == 5:
            return [self._value() for _ in range(x)]
        if kind == 6:
            if x < 3:
                return (None, False, True)[x]
            if x == 3:
                return int(self._string(self._uint()))
            raise Bin1Error(f"unknown constant {x}")
        end = self._pos + x
        if end > len(self._data):
            raise Bin1Error("bytes past the frame's end")
        chunk = bytes(self._data[self._pos:end])
        self._pos = end
        return chunk
