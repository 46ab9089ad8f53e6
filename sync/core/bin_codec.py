"""The compact binary codec ``kasagi.bin1`` (docs/protocol.md, "The binary codec").

Why it exists: a JSON frame repeats the envelope's names, every player id and
field name, and writes numbers as decimal text. bin1 gives each name a small
integer the first time it appears in a room (announced in-band), writes
versions as one-byte checks plus varint deltas, integers as zigzag varints and
floats as exact float64. It is lossless: a decoder holds exactly the JSON
state and rebuilds exactly the JSON message.

Pure core: no I/O, no clock. Three objects, one per direction and side:

- :class:`RoomTable` (server → clients): one per room. Frames are encoded once
  and the same bytes go to every member of a view, so the table must never
  depend on what one member has seen. Rule: every entry has a *tag*, a room
  version greater than every version any frame had covered when it was added.
  A chain frame covering versions ``(B, V]`` announces every entry tagged in
  ``(B, V]`` and every entry it uses tagged above ``B``; a FULL_STATE or
  RESUMED announces the whole table. So a member holding version ``B`` knows
  every entry tagged ``<= B`` — whatever its view, however it joined, however
  its backlog was composed. Entries are only learned from what the
  "everyone else" view shows (never a private name).
- :class:`StreamEncoder` (client → server): one per connection; a name is
  announced in the first frame that uses it (one reader, frames in order).
- :class:`Decoder`: one per connection, either side.

:func:`encode` is the table-free form (any message, all names literal except
the static table, timestamp absolute): what per-connection frames (PONG,
ERROR) use.
"""

from __future__ import annotations

import math
import struct
from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from .views import ViewItem, ViewRule, view_patch

SUBPROTOCOL = "kasagi.bin1"

#: message type codes (low 5 bits of the head byte); 0: the type is in the extras
TYPES: tuple[str, ...] = (
    "", "JOIN_ROOM", "LEAVE_ROOM", "STATE_UPDATE", "RESYNC", "PING", "FULL_STATE",
    "DELTA_UPDATE", "PLAYER_JOINED", "PLAYER_LEFT", "PONG", "ERROR", "MESSAGE", "EVENT",
    "RESUMED", "DOC_SYNC", "DOC_UPDATE",
)
TYPE_CODE = {name: code for code, name in enumerate(TYPES) if name}
RESETS = frozenset({TYPE_CODE["FULL_STATE"], TYPE_CODE["RESUMED"]})
#: head codes of the two short forms of a chain DELTA_UPDATE (no mask byte: it is
#: CHAIN_MASK); PLAYERS_DELTA's payload is ``{"players": <the value written>}``
SHORT_DELTA, PLAYERS_DELTA = 17, 18
_DELTA = TYPE_CODE["DELTA_UPDATE"]

#: names every table starts with, indices 1..len (never announced, never changed)
STATIC: tuple[str, ...] = (
    "players", "entities", "playerId", "sessionToken", "resumed", "state", "epoch", "docs",
    "kind", "data", "from", "reason", "serverTime", "code", "message", "docId", "update",
    "stateVector", "entityId", "expectedVersion", "spectate", "sinceVersion", "playerName",
    "name", "color", "x", "y", "z", "t", "score", "text", "owner", "left", "timeout",
    "kicked", "closed", "vx", "vy", "angle", "ready",
)
STATIC_INDEX = {name: i + 1 for i, name in enumerate(STATIC)}
DYNAMIC_BASE = len(STATIC) + 1  # 41: the first index a table may announce
#: entries a server table holds at most (later names travel as literals)
ROOM_TABLE_MAX = 1024
#: entries a decoder accepts at most (its dynamic indices are DYNAMIC_BASE .. +MAX-1)
DECODER_TABLE_MAX = 4096

# head byte
HEAD_TYPE = 0x1F
HEAD_TABLE = 0x20
HEAD_ABSOLUTE_TIME = 0x40
# mask byte, in the order the fields follow
M_ROOM = 0x01
M_ROOM_CURRENT = 0x02
M_BASE = 0x04
M_VERSION = 0x08
M_TIME = 0x10
M_REQUEST = 0x20
M_PAYLOAD = 0x40
M_EXTRA = 0x80
#: the fields of a DELTA_UPDATE on a member's chain: what the short forms imply
CHAIN_MASK = M_ROOM_CURRENT | M_BASE | M_VERSION | M_TIME | M_PAYLOAD
# value type (low 3 bits of a value's head varint)
T_INT, T_FLOAT, T_STR, T_REF, T_OBJ, T_ARR, T_CONST, T_BYTES = range(8)
C_NULL, C_FALSE, C_TRUE, C_BIGINT = range(4)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: a short float's k is below this in magnitude (exact in a float64 and a JS number)
SHORT_FLOAT_K = 2**52
#: a frame's timestamp anchors short floats only up to this magnitude (exact as float64)
ANCHOR_MAX = 2**53
#: float value head widths: 1..63 near the frame's time (scale x - 1), 64..127 a
#: short binary fraction (scale x - 64)
NEAR_TIME, FRACTION, FLOAT_WIDTHS = 1, 64, 128
_pack_double = struct.Struct("<d").pack
_unpack_double = struct.Struct("<d").unpack_from

#: name → index, or None (write it literally); may record the use
Resolve = Callable[[str], int | None]


class DecodeError(ValueError):
    """A frame that is not valid bin1 (or refers to a name this decoder never got)."""


# -- primitives --------------------------------------------------------------


def write_varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def zigzag(n: int) -> int:
    return n << 1 if n >= 0 else (-n << 1) - 1


def unzigzag(z: int) -> int:
    return z >> 1 if not z & 1 else -((z + 1) >> 1)


def _no_names(name: str) -> int | None:
    return STATIC_INDEX.get(name)


def _write_str(out: bytearray, text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    write_varint(out, len(data))
    out += data


def _write_key(out: bytearray, key: str, resolve: Resolve) -> None:
    index = resolve(key)
    if index is None:
        out.append(0)
        _write_str(out, key)
    else:
        write_varint(out, index)


def write_value(
    out: bytearray, value: Any, resolve: Resolve = _no_names, anchor: int | None = None,
) -> None:
    """One JSON value (plus bytes) as a tagged value; ``anchor``, the frame's timestamp
    when the value follows it, lets a float near that time travel short."""
    kind = type(value)
    if kind is dict:
        write_varint(out, len(value) << 3 | T_OBJ)
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"object key {key!r} is not a string")
            _write_key(out, key, resolve)
            write_value(out, item, resolve, anchor)
    elif kind is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            write_varint(out, zigzag(value) << 3 | T_INT)
        else:
            write_varint(out, C_BIGINT << 3 | T_CONST)
            _write_str(out, str(value))
    elif kind is str:
        index = resolve(value)
        if index is None:
            data = value.encode("utf-8", "surrogatepass")
            write_varint(out, len(data) << 3 | T_STR)
            out += data
        else:
            write_varint(out, index << 3 | T_REF)
    elif kind is float:
        write_float(out, value, anchor)
    elif kind is list or kind is tuple:
        write_varint(out, len(value) << 3 | T_ARR)
        for item in value:
            write_value(out, item, resolve, anchor)
    elif value is None:
        out.append(C_NULL << 3 | T_CONST)
    elif kind is bool:
        out.append((C_TRUE if value else C_FALSE) << 3 | T_CONST)
    elif kind is bytes or kind is bytearray or kind is memoryview:
        data = bytes(value)
        write_varint(out, len(data) << 3 | T_BYTES)
        out += data
    else:  # what orjson would write for it (UUID, datetime, dataclass...), as JSON would
        write_value(out, orjson.loads(orjson.dumps(value)), resolve, anchor)


def _varint_size(n: int) -> int:
    return (n.bit_length() + 6) // 7 or 1


def write_float(out: bytearray, value: float, anchor: int | None = None) -> None:
    """The shortest exact form of a float: a float64, a short binary fraction
    ``k / 2**e``, or, with ``anchor`` (the frame's timestamp), ``anchor + k / 2**e``
    (a time in ms with a fraction, the send time of a move, costs 3-5 bytes, not 9).
    Both short forms decode exactly in float64 arithmetic: ``k`` and ``anchor`` are
    exact float64s and the sum's exact value is ``value``, which a float64 holds."""
    if not math.isfinite(value):
        raise ValueError("NaN and Infinity are not JSON values")
    if value or math.copysign(1.0, value) > 0:  # -0.0 only as a float64 (k = 0 is +0.0)
        n, d = value.as_integer_ratio()
        e = d.bit_length() - 1
        head = z = 0
        size = 9  # a float64's
        if e <= FLOAT_WIDTHS - 1 - FRACTION and -SHORT_FLOAT_K < n < SHORT_FLOAT_K:
            z = zigzag(n)
            if 2 + _varint_size(z) < size:  # its head is two bytes
                head, size = (FRACTION + e) << 3 | T_FLOAT, 2 + _varint_size(z)
        if anchor is not None and e < FRACTION - NEAR_TIME:
            k = n - (anchor << e)  # value - anchor == k / 2**e exactly
            if -SHORT_FLOAT_K < k < SHORT_FLOAT_K:
                h = (NEAR_TIME + e) << 3 | T_FLOAT
                zk = zigzag(k)
                near = (1 if h < 0x80 else 2) + _varint_size(zk)
                if near < size:
                    head, z, size = h, zk, near
        if head:
            write_varint(out, head)
            write_varint(out, z)
            return
    out.append(T_FLOAT)
    out += _pack_double(value)


# -- the envelope ------------------------------------------------------------


def _envelope(
    message: dict[str, Any], table: bytes | None, resolve: Resolve, *,
    absolute_time: bool, time_base: int, current_room: str | None,
) -> bytes:
    """Head, mask, table block (already encoded), the envelope's fields and the rest."""
    kind = message.get("type")
    code = TYPE_CODE.get(kind) if type(kind) is str else None
    extra: dict[str, Any] = {}
    mask = 0
    room = base = version = timestamp = None
    for key, value in message.items():
        kind = type(value)
        if key == "type" and code is not None:
            continue
        if key == "roomId" and kind is str:
            room = value
            mask |= M_ROOM_CURRENT if value == current_room else M_ROOM
        elif key == "baseVersion" and kind is int and value >= 0:
            base = value
            mask |= M_BASE
        elif key == "version" and kind is int and value >= 0:
            version = value
            mask |= M_VERSION
        elif key == "timestamp" and kind is int:
            timestamp = value
            mask |= M_TIME
        elif key == "requestId":
            mask |= M_REQUEST
        elif key == "payload":
            mask |= M_PAYLOAD
        else:
            extra[key] = value
    if base is not None and (version is None or version < base):
        extra["baseVersion"] = base  # not a chain step: carried as it is
        mask &= ~M_BASE
        base = None
    if timestamp is not None and not _INT64_MIN <= timestamp - time_base <= _INT64_MAX:
        extra["timestamp"] = timestamp
        mask &= ~M_TIME
        timestamp = None
    if extra:
        mask |= M_EXTRA
    payload = message.get("payload")
    head = code or 0
    if code == _DELTA and mask == CHAIN_MASK:  # a chain frame: the short forms
        if type(payload) is dict and len(payload) == 1 and "players" in payload:
            head, payload = PLAYERS_DELTA, payload["players"]
        else:
            head = SHORT_DELTA
    if table is not None:
        head |= HEAD_TABLE
    if absolute_time and timestamp is not None:
        head |= HEAD_ABSOLUTE_TIME
    out = bytearray((head,) if head & HEAD_TYPE >= SHORT_DELTA else (head, mask))
    if table is not None:
        out += table
    if mask & M_ROOM:
        write_value(out, room, resolve)
    if base is not None:
        out.append(base & 0xFF)
    if version is not None:
        write_varint(out, version - base if base is not None else version)
    anchor = None
    if timestamp is not None:
        write_varint(out, zigzag(timestamp - (0 if absolute_time else time_base)))
        if -ANCHOR_MAX <= timestamp <= ANCHOR_MAX:
            anchor = timestamp
    if mask & M_REQUEST:
        write_value(out, message["requestId"], resolve, anchor)
    if mask & M_PAYLOAD:
        write_value(out, payload, resolve, anchor)
    if extra:
        write_value(out, extra, resolve, anchor)
    return bytes(out)


def _with_table(body: bytes, block: bytes) -> bytes:
    """``body`` (a frame encoded without a table block) with ``block`` after its
    head and mask (a short form has no mask byte)."""
    at = 1 if body[0] & HEAD_TYPE >= SHORT_DELTA else 2
    return bytes((body[0] | HEAD_TABLE,)) + body[1:at] + block + body[at:]


def _table_block(entries: Iterable[tuple[int, str]], time_base: int | None) -> bytes:
    """Runs of consecutive (index, name) entries, the time base first on a reset."""
    out = bytearray()
    if time_base is not None:
        write_varint(out, zigzag(time_base))
    runs: list[tuple[int, list[str]]] = []
    for index, name in sorted(entries):
        if runs and runs[-1][0] + len(runs[-1][1]) == index:
            runs[-1][1].append(name)
        else:
            runs.append((index, [name]))
    write_varint(out, len(runs))
    for first, names in runs:
        write_varint(out, first)
        write_varint(out, len(names))
        for name in names:
            _write_str(out, name)
    return bytes(out)


def encode(message: dict[str, Any]) -> bytes:
    """A message with no dynamic table (names literal, timestamp absolute).

    A FULL_STATE or RESUMED encoded so resets the decoder's table to empty."""
    return _envelope(message, None, _no_names, absolute_time=True, time_base=0,
                     current_room=None)


# -- server → clients: the room's table -----------------------------------------


class RoomTable:
    """A room's names and their tags, and the encoder of its frames (see module doc).

    ``learn`` is called with each change's public part before any frame
    covering it is encoded; ``encode`` encodes a frame for every member that
    holds the frame's ``baseVersion`` (or, for FULL_STATE/RESUMED and EVENT,
    for anyone)."""

    __slots__ = ("covered", "index", "limit", "names", "tags", "time_base")

    def __init__(self, time_base: int, *, limit: int = ROOM_TABLE_MAX) -> None:
        #: timestamps are sent as offsets from it (announced by every reset)
        self.time_base = time_base
        self.limit = limit
        self.names: list[str] = []
        self.tags: list[int] = []
        self.index: dict[str, int] = {}
        #: the highest version any frame encoded from this table covered
        self.covered = -1

    def learn(self, doc: dict[str, Any], version: int, *, ids: bool = True) -> None:
        """Give the keys of ``doc`` (a patch or state of the room) an index, down to
        the third level: player and entity ids (unless not ``ids``), their field names."""
        stack = [(doc, 1)]
        while stack:
            obj, level = stack.pop()
            for key, value in obj.items():
                if (ids or level != 2) and key not in self.index and key not in STATIC_INDEX:
                    self._add(key, version)
                if level < 3 and type(value) is dict:
                    stack.append((value, level + 1))

    def learn_changes(self, items: Iterable[ViewItem], rule: ViewRule) -> None:
        """``learn`` each change as the "everyone else" view shows it (§13): a name
        only some members may see is never announced to the others. Under views by
        place (a room type with an ``interest``) there is no such view: only field
        names are learned, never who or what exists out of a member's sight."""
        ids = getattr(rule, "interest", None) is None
        for item in items:
            if item.kind is not None:
                patch = item.patch if item.audience is None else view_patch(
                    rule, item.patch, None)
                self.learn(patch, item.version, ids=ids)

    def _add(self, name: str, version: int) -> None:
        if len(self.names) >= self.limit or type(name) is not str:
            return
        tag = max(version, self.covered + 1, self.tags[-1] if self.tags else 0)
        self.index[name] = DYNAMIC_BASE + len(self.names)
        self.names.append(name)
        self.tags.append(tag)

    def encode(self, frame: dict[str, Any]) -> bytes:
        if frame.get("type") in ("FULL_STATE", "RESUMED"):
            return self._encode_reset(frame)
        base, version = frame.get("baseVersion"), frame.get("version")
        if type(base) is not int or type(version) is not int or version < base:
            return _envelope(frame, None, _no_names, absolute_time=False,
                             time_base=self.time_base, current_room=frame.get("roomId"))
        return self._encode_step(frame, base, version)

    def _encode_reset(self, frame: dict[str, Any]) -> bytes:
        index = self.index
        version = frame.get("version")
        if type(version) is int:
            self.covered = max(self.covered, version)
        block = _table_block(
            ((DYNAMIC_BASE + i, name) for i, name in enumerate(self.names)), self.time_base)

        def resolve(name: str) -> int | None:
            return STATIC_INDEX.get(name) or index.get(name)

        return _envelope(frame, block, resolve, absolute_time=False,
                         time_base=self.time_base, current_room=None)

    def _encode_step(self, frame: dict[str, Any], base: int, version: int) -> bytes:
        index, tags = self.index, self.tags
        announce: dict[int, str] = {}
        first_new = bisect_right(tags, base)  # entries tagged above base
        for i in range(first_new, bisect_right(tags, version)):
            announce[DYNAMIC_BASE + i] = self.names[i]
        new_from = DYNAMIC_BASE + first_new

        def resolve(name: str) -> int | None:
            found = STATIC_INDEX.get(name)
            if found is not None:
                return found
            found = index.get(name)
            if found is not None and found >= new_from:
                announce[found] = name
            return found

        self.covered = max(self.covered, version)
        room = frame.get("roomId")
        # the body first: it decides which entries the frame uses
        body = _envelope(frame, None, resolve, absolute_time=False,
                         time_base=self.time_base, current_room=room)
        if not announce:
            return body
        block = _table_block(announce.items(), None)
        return _with_table(body, block)


# -- client → server: a stream's table ------------------------------------------


class StreamEncoder:
    """One connection's frames to one reader: a name is announced in the first
    frame that uses it (object keys down to ``depth``, the room id, entity ids)."""

    __slots__ = ("depth", "index", "limit")

    def __init__(self, *, depth: int = 3, limit: int = ROOM_TABLE_MAX) -> None:
        self.index: dict[str, int] = {}
        self.depth = depth
        self.limit = limit

    def encode(self, message: dict[str, Any]) -> bytes:
        if message.get("type") in ("FULL_STATE", "RESUMED"):  # not a client's: no table
            return encode(message)
        new: dict[int, str] = {}
        self._learn_names(message, new)
        index = self.index

        def resolve(name: str) -> int | None:
            return STATIC_INDEX.get(name) or index.get(name)

        body = _envelope(message, None, resolve, absolute_time=True, time_base=0,
                         current_room=None)
        if not new:
            return body
        block = _table_block(new.items(), None)
        return _with_table(body, block)

    def _learn_names(self, message: dict[str, Any], new: dict[int, str]) -> None:
        names: list[str] = []
        for key in ("roomId", "entityId"):
            if type(message.get(key)) is str:
                names.append(message[key])
        payload = message.get("payload")
        if type(payload) is dict:
            stack = [(payload, self.depth)]
            while stack:
                obj, left = stack.pop()
                for key, value in obj.items():
                    names.append(key)
                    if left > 1 and type(value) is dict:
                        stack.append((value, left - 1))
        for name in names:
            if (name not in self.index and name not in STATIC_INDEX
                    and len(self.index) < self.limit):
                index = self.index[name] = DYNAMIC_BASE + len(self.index)
                new[index] = name


# -- either side: the decoder ----------------------------------------------------


_MAX_DEPTH = 512
#: a STATE_UPDATE's head (no table block) and mask (an explicit roomId and a payload)
_UPDATE_HEAD = TYPE_CODE["STATE_UPDATE"]
_UPDATE_MASK = M_ROOM | M_PAYLOAD


class Decoder:
    """One connection's incoming frames: the table, time base, current room and
    the version of the last frame that carried one (the register ``baseVersion``
    is checked against). A FULL_STATE or RESUMED resets all four."""

    __slots__ = ("anchor", "limit", "resets", "room", "saw_bytes", "table", "time_base",
                 "version")

    def __init__(self, *, limit: int = DECODER_TABLE_MAX, resets: bool = True) -> None:
        self.limit = limit
        #: False on the server: a client's stream never resets (its FULL_STATE is refused)
        self.resets = resets
        self.table: dict[int, str] = {}
        self.time_base = 0
        self.room: str | None = None
        self.version = 0
        #: the last frame held a bytes value (kind 7): the only non-JSON value it can hold
        self.saw_bytes = False
        #: the frame's timestamp once read (None before, or in a frame without one):
        #: what a float near the frame's time is relative to
        self.anchor: float | None = None

    def decode(self, raw: bytes) -> dict[str, Any]:
        """The message of one frame; DecodeError if it is not valid bin1. A table
        block is applied before the rest is read, even if the rest is refused."""
        self.saw_bytes = False
        self.anchor = None
        data = raw if type(raw) is bytes else bytes(raw)
        try:
            if data[0] == _UPDATE_HEAD and data[1] == _UPDATE_MASK:
                message = self._update(data)
                if message is not None:
                    return message
            return self._decode(data)
        except (IndexError, UnicodeDecodeError, struct.error, RecursionError) as exc:
            raise DecodeError(f"truncated or malformed bin1 frame ({exc})") from exc

    def _update(self, data: bytes) -> dict[str, Any] | None:
        """A client's STATE_UPDATE with a room (a name) and a payload object and nothing
        else, the frame a client sends most (every move), read without ``_decode``'s
        general steps; None when it is not exactly that shape (``_decode`` reads it)."""
        k = data[2]
        if k & 7 != T_REF:
            return None
        if k < 0x80:
            pos = 3
        elif data[3] < 0x80:
            k = (k & 0x7F) | (data[3] << 7)
            pos = 4
        else:
            return None
        h = data[pos]
        if h & 7 != T_OBJ or h >= 0x80:
            return None
        payload, pos = self._object(data, pos + 1, h >> 3, 0)
        if pos != len(data):
            raise DecodeError(f"{len(data) - pos} bytes after the frame's end")
        return {"type": "STATE_UPDATE", "roomId": self._name(k >> 3), "payload": payload}

    def _decode(self, data: bytes) -> dict[str, Any]:
        head = data[0]
        code = head & HEAD_TYPE
        if head & 0x80 or code > PLAYERS_DELTA:
            raise DecodeError(f"unknown head byte {head:#04x}")
        players_only = code == PLAYERS_DELTA
        if code >= SHORT_DELTA:  # a chain DELTA_UPDATE: no mask byte
            code, mask, pos = _DELTA, CHAIN_MASK, 1
        else:
            mask, pos = data[1], 2
        if code in RESETS and self.resets:
            self.table = {}
            self.time_base = 0
        if head & HEAD_TABLE:
            if code in RESETS:
                z, pos = _read_varint(data, pos)
                self.time_base = unzigzag(z)
            pos = self._read_table(data, pos)
        message: dict[str, Any] = {"type": TYPES[code]} if code else {}
        if mask & M_ROOM and mask & M_ROOM_CURRENT:
            raise DecodeError("roomId both explicit and current")
        if mask & M_ROOM:
            room, pos = self._value(data, pos, 0)
            if type(room) is not str:
                raise DecodeError("roomId is not a string")
            message["roomId"] = room
        elif mask & M_ROOM_CURRENT:
            if self.room is None:
                raise DecodeError("current room used before any FULL_STATE or RESUMED")
            message["roomId"] = self.room
        base = None
        if mask & M_BASE:
            delta = (data[pos] - self.version) & 0xFF
            pos += 1
            base = self.version + (delta - 256 if delta >= 128 else delta)
        if mask & M_VERSION:
            n, pos = _read_varint(data, pos)
            message["version"] = n if base is None else base + n
        elif base is not None:
            raise DecodeError("baseVersion without version")
        if base is not None:
            message["baseVersion"] = base
        if mask & M_TIME:
            z, pos = _read_varint(data, pos)
            timestamp = message["timestamp"] = unzigzag(z) + (
                0 if head & HEAD_ABSOLUTE_TIME else self.time_base)
            if -ANCHOR_MAX <= timestamp <= ANCHOR_MAX:
                self.anchor = float(timestamp)
        if mask & M_REQUEST:
            message["requestId"], pos = self._value(data, pos, 0)
        if mask & M_PAYLOAD:
            payload, pos = self._value(data, pos, 0)
            message["payload"] = {"players": payload} if players_only else payload
        if mask & M_EXTRA:
            extra, pos = self._value(data, pos, 0)
            if type(extra) is not dict:
                raise DecodeError("envelope extras are not an object")
            for key, value in extra.items():
                if key in message:
                    raise DecodeError(f"envelope field {key!r} given twice")
                message[key] = value
        if pos != len(data):
            raise DecodeError(f"{len(data) - pos} bytes after the frame's end")
        if "version" in message and type(message["version"]) is int:
            self.version = message["version"]
        if code in RESETS and self.resets:
            room = message.get("roomId")
            self.room = room if type(room) is str else None
        return message

    def _read_table(self, data: bytes, pos: int) -> int:
        runs, pos = _read_varint(data, pos)
        table = self.table
        for _ in range(runs):
            first, pos = _read_varint(data, pos)
            count, pos = _read_varint(data, pos)
            if first < DYNAMIC_BASE or first + count > DYNAMIC_BASE + self.limit:
                raise DecodeError(f"table entries {first}..{first + count - 1} out of range")
            for index in range(first, first + count):
                length, pos = _read_varint(data, pos)
                end = pos + length
                if end > len(data):
                    raise DecodeError("table entry runs past the frame's end")
                table[index] = str(data[pos:end], "utf-8", "surrogatepass")
                pos = end
        return pos

    def _name(self, index: int) -> str:
        if 0 < index < DYNAMIC_BASE:
            return STATIC[index - 1]
        name = self.table.get(index)
        if name is None:
            raise DecodeError(f"name {index} was never announced")
        return name

    def _value(self, data: bytes, pos: int, depth: int) -> tuple[Any, int]:
        h = data[pos]
        if h < 0x80:  # a one-byte head: most of them
            pos += 1
        elif data[pos + 1] < 0x80:  # two bytes: an integer up to ±1,023, a short string
            h = (h & 0x7F) | (data[pos + 1] << 7)
            pos += 2
        else:
            h, pos = _read_varint(data, pos)
        kind, x = h & 7, h >> 3
        if kind == T_INT:
            return (x >> 1 if not x & 1 else -((x + 1) >> 1)), pos
        if kind == T_OBJ:
            return self._object(data, pos, x, depth)
        if kind == T_ARR:
            if depth >= _MAX_DEPTH:
                raise DecodeError("nested too deeply")
            if x > len(data) - pos:
                raise DecodeError("container longer than the frame")
            items = []
            for _ in range(x):
                item, pos = self._value(data, pos, depth + 1)
                items.append(item)
            return items, pos
        return self._scalar(data, pos, kind, x)

    def _object(self, data: bytes, pos: int, count: int, depth: int) -> tuple[Any, int]:
        """An object of ``count`` members at ``pos``. Its integer and float members, the
        bulk of a client's moves, are read here without a call each."""
        if depth >= _MAX_DEPTH:
            raise DecodeError("nested too deeply")
        size = len(data)
        if count > size - pos:
            raise DecodeError("container longer than the frame")
        obj: dict[str, Any] = {}
        table = self.table
        for _ in range(count):
            k = data[pos]
            if k < 0x80:
                pos += 1
            else:
                k, pos = _read_varint(data, pos)
            if 0 < k < DYNAMIC_BASE:
                key = STATIC[k - 1]
            elif k:
                found = table.get(k)
                if found is None:
                    raise DecodeError(f"name {k} was never announced")
                key = found
            else:
                length, pos = _read_varint(data, pos)
                end = pos + length
                if end > size:
                    raise DecodeError("key runs past the frame's end")
                key = str(data[pos:end], "utf-8", "surrogatepass")
                pos = end
            h = data[pos]
            if h < 0x80:
                if h & 7 == T_INT:
                    x = h >> 3
                    obj[key] = x >> 1 if not x & 1 else -((x + 1) >> 1)
                    pos += 1
                    continue
                if h == T_FLOAT:  # float64, width 0
                    value = _unpack_double(data, pos + 1)[0]
                    if not math.isfinite(value):
                        raise DecodeError("NaN and Infinity are not JSON values")
                    obj[key] = value
                    pos += 9
                    continue
            elif h & 7 == T_INT and data[pos + 1] < 0x80:
                x = ((h & 0x7F) | (data[pos + 1] << 7)) >> 3
                obj[key] = x >> 1 if not x & 1 else -((x + 1) >> 1)
                pos += 2
                continue
            obj[key], pos = self._value(data, pos, depth + 1)
        return obj, pos

    def _scalar(self, data: bytes, pos: int, kind: int, x: int) -> tuple[Any, int]:
        if kind == T_FLOAT:
            if x == 0:
                value = _unpack_double(data, pos)[0]
                if not math.isfinite(value):
                    raise DecodeError("NaN and Infinity are not JSON values")
                return value, pos + 8
            if x >= FLOAT_WIDTHS:
                raise DecodeError(f"unknown float width {x}")
            z, pos = _read_varint(data, pos)
            k = unzigzag(z)
            if not -SHORT_FLOAT_K < k < SHORT_FLOAT_K:
                raise DecodeError("a short float's k is out of range")
            if x >= FRACTION:
                return k * 2.0 ** (FRACTION - x), pos
            if self.anchor is None:
                raise DecodeError("a float near the frame's time, before or without a timestamp")
            return self.anchor + k * 2.0 ** (NEAR_TIME - x), pos
        if kind in (T_STR, T_BYTES):
            end = pos + x
            if end > len(data):
                raise DecodeError("string runs past the frame's end")
            chunk = data[pos:end]
            if kind == T_STR:
                return str(chunk, "utf-8", "surrogatepass"), end
            self.saw_bytes = True
            return chunk, end
        if kind == T_REF:
            return self._name(x), pos
        # T_CONST
        if x == C_NULL:
            return None, pos
        if x == C_FALSE:
            return False, pos
        if x == C_TRUE:
            return True, pos
        if x == C_BIGINT:
            length, pos = _read_varint(data, pos)
            end = pos + length
            if end > len(data):
                raise DecodeError("big integer runs past the frame's end")
            text = str(data[pos:end], "ascii")
            if not text.lstrip("-").isdigit():
                raise DecodeError("bad big integer")
            return int(text), end
        raise DecodeError(f"unknown constant {x}")


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    n = byte & 0x7F
    shift = 7
    while True:
        pos += 1
        byte = data[pos]
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            return n, pos + 1
        shift += 7
        if shift > 70:
            raise DecodeError("varint longer than 10 bytes")
