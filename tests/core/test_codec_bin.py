"""The binary codec kasagi.bin1: lossless round trips, and the room table's rule
(a member decodes every frame it gets, whenever it joined, whatever its view,
however its backlog was composed, from bytes shared with the rest of its view)."""

from __future__ import annotations

import random
import struct

import msgpack
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.core import bin_codec
from sync.core.bin_codec import DYNAMIC_BASE, DecodeError, Decoder, RoomTable, StreamEncoder
from sync.core.changes import Change, ChangeKind
from sync.core.frames import full_state_frame, resumed_frame
from sync.core.merge_patch import apply_patch
from sync.core.room_types import RoomType
from sync.core.views import member_frames

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
envelope_values = json_values | st.integers(0, 2**40)
messages = st.fixed_dictionaries(
    {"type": st.sampled_from([*bin_codec.TYPE_CODE, "NOPE"]) | json_values},
    optional={
        "roomId": st.text(max_size=8) | json_values, "version": envelope_values,
        "baseVersion": envelope_values, "timestamp": envelope_values,
        "requestId": json_values, "payload": json_values, "expectedVersion": envelope_values,
        "entityId": st.text(max_size=8),
    },
)


def decoder_for(message: dict) -> Decoder:
    """A decoder whose version register is the message's baseVersion (its chain)."""
    decoder = Decoder()
    base = message.get("baseVersion")
    if type(base) is int:
        decoder.version = base
    return decoder


@given(messages)
def test_any_message_round_trips_without_a_table(message):
    assert decoder_for(message).decode(bin_codec.encode(message)) == message


@given(st.lists(messages, min_size=1, max_size=6))
def test_a_client_stream_round_trips_with_names_announced_on_first_use(stream):
    encoder, decoder = StreamEncoder(), Decoder(resets=False)
    for message in stream:
        decoder.version = message["baseVersion"] if type(message.get("baseVersion")) is int else 0
        assert decoder.decode(encoder.encode(message)) == message


def test_a_stream_sends_a_name_once():
    encoder = StreamEncoder()
    first = encoder.encode({"type": "STATE_UPDATE", "roomId": "arena-1",
                            "payload": {"hp": 3, "mana": 1}})
    second = encoder.encode({"type": "STATE_UPDATE", "roomId": "arena-1",
                             "payload": {"hp": 2, "mana": 0}})
    assert b"mana" in first and b"arena-1" in first
    assert b"mana" not in second and len(second) == 9  # head, mask, room (2), payload (5)


def test_floats_are_exact_and_ints_keep_their_type():
    decoder = Decoder()
    for value in (0.1, -0.0, 1.0, 1e308, 5e-324, 1764650000123.456, 2**63, -(2**63) - 1, 7):
        out = decoder.decode(bin_codec.encode({"type": "PING", "payload": {"v": value}}))
        assert type(out["payload"]["v"]) is type(value)
        assert repr(out["payload"]["v"]) == repr(value)


@given(st.floats(allow_nan=False, allow_infinity=False),
       st.none() | st.integers(-(2**53), 2**53) | st.integers(1_700_000_000_000, 1_900_000_000_000))
def test_every_float_decodes_to_the_same_bits_in_its_shortest_form(value, anchor):
    out = bytearray()
    bin_codec.write_float(out, value, anchor)
    decoder = Decoder()
    decoder.anchor = None if anchor is None else float(anchor)
    decoded, end = decoder._value(bytes(out), 0, 0)
    assert end == len(out) <= 9
    assert type(decoded) is float and struct.pack("<d", decoded) == struct.pack("<d", value)


def test_short_floats_cost_what_the_spec_says():
    def size(value: float, anchor: int | None = None) -> int:
        out = bytearray()
        bin_codec.write_float(out, value, anchor)
        return len(out)

    assert size(1.5) == 3 and size(-2.25) == 3 and size(0.0) == 3 and size(-0.0) == 9
    assert size(0.1) == 9  # no short binary form: a float64
    now = 1764873905123
    assert size(now + 0.4567, None) == 9
    assert size(now - 0.4567, now) <= 5  # a send time a moment before the frame's


@pytest.mark.parametrize("raw", [
    bytes([0x07, 0x40, 0x09, 0x02]),  # a float near the time in a frame with no timestamp
    bytes([0x07, 0x50, 0x00, 0x81, 0x10, 0x02]),  # width 128: unknown
    bytes([0x07, 0x50, 0x00, 0x81, 0x08]) + b"\xff" * 7 + b"\x7f",  # k beyond 2**52
    bytes([0x13, 0x00]),  # head code 19: reserved
    bytes([0x91, 0x2a, 0x01, 0x00, 0x04]),  # a short form with bit 7 set
])
def test_malformed_short_forms_are_refused(raw):
    decoder = Decoder()
    decoder.room, decoder.version = "r", 42
    with pytest.raises(DecodeError):
        decoder.decode(raw)


def test_a_chain_frame_takes_the_short_forms():
    table, decoder = RoomTable(1764172800000), Decoder()
    decoder.room, decoder.version, decoder.time_base = "lobby", 7, 1764172800000
    chain = {"type": "DELTA_UPDATE", "roomId": "lobby", "baseVersion": 7, "version": 8,
             "timestamp": 1764172800001}
    players = {**chain, "payload": {"players": {"p": {"x": 1}}}}
    both = {**chain, "version": 9, "baseVersion": 8,
            "payload": {"players": {"p": {"x": 2}}, "entities": {}}}
    assert table.encode(players)[0] == bin_codec.PLAYERS_DELTA
    assert decoder.decode(table.encode(players)) == players
    assert table.encode(both)[0] == bin_codec.SHORT_DELTA
    assert decoder.decode(table.encode(both)) == both
    # without a room table (no current room) the frame keeps its mask
    assert bin_codec.encode(players)[0] == bin_codec.TYPE_CODE["DELTA_UPDATE"] | 0x40


def test_bytes_travel_raw():
    frame = {"type": "DOC_UPDATE", "roomId": "r", "payload": {"docId": "n", "update": b"\x00\x01"}}
    encoded = bin_codec.encode(frame)
    assert b"\x00\x01" in encoded and Decoder().decode(encoded) == frame


@pytest.mark.parametrize("raw", [
    b"", b"\x07", b"\xff\x00", b"\x1f\x00",            # truncated, reserved bit, unknown type
    b"\x05\x40\x0c\x00",                                # object with a key but no value
    b"\x05\x40\xcb\x02",                                # a name (41) never announced
    b"\x05\x40\x01" + b"\x00" * 7,                     # truncated float
    b"\x05\x40\x01\x00\x00\x00\x00\x00\x00\xf8\x7f",  # NaN
    b"\x05\x40\x00\x00",                                # bytes after the end
    b"\x07\x02",                                        # current room before any FULL_STATE
])
def test_malformed_frames_are_refused(raw):
    with pytest.raises(DecodeError):
        Decoder().decode(raw)


def test_a_reference_past_the_table_is_refused():
    block = bytes((0x05 | 0x20, 0x40, 1, 0x80, 0x40, 1, 1)) + b"a" + b"\x0c"
    with pytest.raises(DecodeError):
        Decoder(limit=16).decode(block)


def test_a_reset_clears_the_table():
    table, decoder = RoomTable(1_000), Decoder()
    table.learn({"players": {"p-1": {"hp": 1}}}, 1)
    decoder.decode(table.encode(full_state_frame(
        "r", 1, {}, player_id=None, session_token=None, resumed=False, timestamp=1_000)))
    assert DYNAMIC_BASE in decoder.table
    decoder.decode(bin_codec.encode(full_state_frame(
        "r", 1, {}, player_id=None, session_token=None, resumed=False, timestamp=1_000)))
    assert decoder.table == {} and decoder.time_base == 0


def xyt_frame(players: int, version: int) -> dict:
    rng = random.Random(version)
    return {"type": "DELTA_UPDATE", "roomId": "arena-1", "version": version,
            "baseVersion": version - 1, "timestamp": 1764650000000 + version,
            "payload": {"players": {
                f"p-{i:016x}": {"x": rng.randint(0, 1000), "y": rng.randint(0, 1000),
                                "t": 1764650000000 + version - rng.random() * 50}
                for i in range(players)}}}


def test_a_tick_of_moves_costs_a_fraction_of_json_and_msgpack():
    table, decoder = RoomTable(1764650000000), Decoder()
    decoder.decode(table.encode(full_state_frame(
        "arena-1", 99, {}, player_id=None, session_token=None, resumed=False,
        timestamp=1764650000000)))
    first = xyt_frame(20, 100)
    table.learn(first["payload"], 100)
    decoder.decode(table.encode(first))
    frame = xyt_frame(20, 101)
    encoded = table.encode(frame)
    assert decoder.decode(encoded) == frame
    # 20 moves of {x, y, t}: 13 bytes each (the player and its object's head, x and y as
    # varints, t a send time near the frame's: 5 bytes, not a float64's 10); a short head
    assert encoded[0] == bin_codec.PLAYERS_DELTA
    assert len(encoded) <= 20 * 13 + 6
    assert len(encoded) < 0.2 * len(orjson.dumps(frame))
    assert len(encoded) < 0.3 * len(msgpack.packb(frame))


# -- the room table's rule, on simulated rooms ------------------------------------------


class Member:
    """A connection: its decoder, its state as decoded, and its chain."""

    def __init__(self, viewer: str | None) -> None:
        self.viewer = viewer
        self.decoder = Decoder()
        self.state: dict = {}
        self.sent = self.seen = -1
        self.lag: list | None = None  # items held back while "slow"

    def receive(self, data: bytes, frame: dict) -> None:
        message = self.decoder.decode(data)
        assert message == frame
        kind = frame["type"]
        if kind == "FULL_STATE":
            self.state = frame["payload"]["state"]
        elif kind == "DELTA_UPDATE":
            assert frame["baseVersion"] == self.sent
            self.state = apply_patch(self.state, frame["payload"])
        elif kind == "PLAYER_JOINED":
            self.state = apply_patch(self.state, {"players": {
                frame["payload"]["playerId"]: frame["payload"]["state"]}})
        elif kind == "PLAYER_LEFT":
            self.state = apply_patch(self.state, {"players": {frame["payload"]["playerId"]: None}})
        if "version" in frame:
            self.sent = frame["version"]


class Room:
    """A room's state, its changes, its table, and members fed as the hub feeds them:
    frames built per (start, sent, view) and encoded once for all who share them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.rule = RoomType()
        self.state: dict = {"players": {}, "entities": {}}
        self.version = 0
        self.table = RoomTable(1764650000000)
        self.members: list[Member] = []
        self.log: list[Change] = []
        self.pending: list = []
        self.names = [f"f{i}" for i in range(6)] + ["_secret", "_hand"]

    def change(self, kind: ChangeKind, patch: dict, payload: dict | None = None) -> None:
        change = Change(kind, self.version, self.version + 1, patch, payload)
        self.state = apply_patch(self.state, patch)
        self.version += 1
        self.log.append(change)
        from sync.hub import Pending  # the hub's own item, audience included

        self.pending.append(Pending.of(change, self.rule))

    def random_change(self) -> None:
        rng, players = self.rng, self.state["players"]
        roll = rng.random()
        if roll < 0.15 or not players:
            pid = f"p-{rng.randrange(10**6):06d}"
            obj = {rng.choice(self.names): rng.randint(-5, 5) for _ in range(2)}
            self.change(ChangeKind.JOINED, {"players": {pid: obj}},
                        {"playerId": pid, "state": obj})
        elif roll < 0.22:
            pid = rng.choice(sorted(players))
            self.change(ChangeKind.LEFT, {"players": {pid: None}},
                        {"playerId": pid, "reason": "left"})
        elif roll < 0.4:
            entity = f"e-{rng.randrange(8)}"
            self.change(ChangeKind.DELTA, {"entities": {entity: {
                rng.choice(self.names[:6]): rng.choice([1.5, "s", None, [1, 2], {"k": True}])}}})
        else:
            pid = rng.choice(sorted(players))
            field = rng.choice(self.names)
            self.change(ChangeKind.DELTA, {"players": {pid: {
                field: rng.choice([rng.randint(-10**9, 10**9), rng.random(), None, "v",
                                   # a send time near the frame's, a short fraction, -0.0
                                   1764650000000 + self.version - rng.random() * 40,
                                   rng.randint(-99, 99) / 8, -0.0])}}})

    def join(self, viewer: str | None) -> Member:
        member = Member(viewer)
        frame = full_state_frame(
            "r", self.version, self.rule.view_of(self.state, viewer), player_id=viewer,
            session_token=None, resumed=False, timestamp=1764650000000 + self.version)
        member.receive(self.table.encode(frame), frame)
        member.sent = member.seen = self.version
        self.members.append(member)
        return member

    def resume(self, member: Member) -> None:
        """RESUMED at the member's version, then the logged changes since (recovery)."""
        member.decoder = Decoder()
        frame = resumed_frame("r", member.sent, player_id="p", session_token="t",
                              epoch="e", timestamp=1764650000000)
        member.receive(self.table.encode(frame), frame)
        member.seen = member.sent
        from sync.hub import Pending

        items = [Pending.of(c, self.rule) for c in self.log if c.version > member.sent]
        self.table.learn_changes(items, self.rule)
        self.deliver([member], items, hold=False)
        member.lag = None

    def deliver(self, members: list[Member], items: list, *, hold: bool = True) -> None:
        shared: dict[tuple, tuple[list[dict], list[bytes], int, int]] = {}
        for member in members:
            viewer = member.viewer if any(
                i.audience and member.viewer in i.audience for i in items) else None
            key = (member.sent, member.seen, viewer)
            if key not in shared:
                frames, sent, seen = member_frames(
                    "r", items, sent=member.sent, seen=member.seen, viewer=member.viewer,
                    rule=self.rule, timestamp=1764650000000 + self.version, hold=hold)
                shared[key] = (frames, [self.table.encode(f) for f in frames], sent, seen)
            frames, encoded, sent, seen = shared[key]
            for frame, data in zip(frames, encoded, strict=True):
                member.receive(data, frame)
            member.seen = seen

    def tick(self) -> None:
        items, self.pending = self.pending, []
        self.table.learn_changes(items, self.rule)
        live = [m for m in self.members if m.lag is None]
        self.deliver(live, items)
        for member in self.members:
            if member.lag is not None:
                member.lag.extend(items)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32))
def test_every_member_decodes_its_frames_and_holds_its_view(seed):
    rng = random.Random(seed)
    room = Room(rng)
    room.join(None)
    for _ in range(rng.randrange(20, 80)):
        for _ in range(rng.randrange(0, 4)):
            room.random_change()
        roll = rng.random()
        players = sorted(room.state["players"])
        if roll < 0.1:
            room.join(rng.choice(players) if players and rng.random() < 0.7 else None)
        elif roll < 0.2 and room.members:
            member = rng.choice(room.members)
            if member.lag is None:
                member.lag = []
            else:  # catches up: its backlog composed into one pass
                backlog, member.lag = member.lag, None
                room.deliver([member], backlog)
        elif roll < 0.25 and room.members:
            member = rng.choice(room.members)
            member.lag = []
            room.tick()
            room.resume(member)
        if rng.random() < 0.7:
            room.tick()
    room.tick()
    for member in room.members:
        backlog, member.lag = member.lag or [], None
        room.deliver([member], backlog, hold=False)
        assert member.sent == room.version
        assert member.state == room.rule.view_of(room.state, member.viewer)
    assert not any(name.startswith("_") for name in room.table.names)


def test_the_first_offered_codec_the_server_knows_wins():
    from sync.core.codec import BIN1, JSON, MSGPACK, codec_for

    assert codec_for(["kasagi.bin1", "kasagi.msgpack"]) is BIN1
    assert codec_for(["kasagi.msgpack", "kasagi.bin1"]) is MSGPACK
    assert codec_for(["kasagi.bin2", "chat"]) is JSON
    inbound = BIN1.inbound()
    assert inbound is not BIN1.inbound()  # each connection keeps its own names
    assert inbound.decode('{"type": "PING"}') == {"type": "PING"}  # text frames stay JSON


def test_bytes_outside_a_document_field_are_refused_by_the_server():
    from sync.core.codec import BIN1
    from sync.core.errors import ErrorCode, ProtocolError

    doc = {"type": "DOC_UPDATE", "roomId": "r", "payload": {"docId": "n", "update": b"\x00"}}
    inbound = BIN1.inbound()
    assert inbound.decode(bin_codec.encode(doc)) == doc
    plain = {"type": "STATE_UPDATE", "roomId": "r", "payload": {"x": 1, "s": "b"}}
    assert inbound.decode(bin_codec.encode(plain)) == plain  # one frame's bytes, not the next's
    for bad in ({"x": b"\x00"}, {"deep": [{"y": b"\x01"}]}):
        with pytest.raises(ProtocolError) as refused:
            inbound.decode(bin_codec.encode({"type": "STATE_UPDATE", "roomId": "r",
                                             "payload": bad}))
        assert refused.value.code is ErrorCode.BAD_JSON
    with pytest.raises(ProtocolError):  # bytes in a document message, outside its fields
        inbound.decode(bin_codec.encode(
            {"type": "DOC_UPDATE", "roomId": "r", "payload": {"docId": b"n", "update": b""}}))


def test_the_examples_of_docs_protocol_md():
    table, decoder = RoomTable(1764172800000), Decoder()
    table.learn({"players": {"p-1": {"hp": 3}}}, 41)
    table.covered = 41
    full = {"type": "FULL_STATE", "roomId": "lobby", "version": 42,
            "timestamp": 1764172800500, "payload": {
                "playerId": "p-2", "sessionToken": "tk", "resumed": False, "epoch": "e1",
                "state": {"players": {"p-1": {"hp": 3}, "p-2": {"x": 10}}, "entities": {}}}}
    assert table.encode(full).hex() == (
        "2659" "8080a58ed866" "01290203702d31" "026870"
        "2a6c6f626279" "2a" "e807" "2c" "031a702d32" "0412746b" "050e" "07126531" "0614"
        "0114" "290c2a30" "0003702d320c1aa001" "0204")
    assert decoder.decode(table.encode(full)) == full
    patch = {"players": {"p-2": {"x": -3, "y": 1.5, "t": 1764172800549.25}}}
    table.learn(patch, 43)
    delta = {"type": "DELTA_UPDATE", "roomId": "lobby", "version": 43, "baseVersion": 42,
             "timestamp": 1764172800550, "payload": patch}
    assert table.encode(delta).hex() == (
        "32" "012b0103702d32" "2a" "01" "cc08" "0c2b1c" "1a28" "1b890406" "1d1905")
    assert decoder.decode(table.encode(delta)) == delta
    # the same change in the long form (an extra field: not a chain frame's short form)
    long = {**delta, "entityId": "e"}
    assert table.encode(long).hex().startswith("27de")
    assert decoder.decode(table.encode(long)) == long
    client = StreamEncoder()
    assert client.encode({"type": "STATE_UPDATE", "roomId": "lobby",
                          "payload": {"x": -2, "mode": "run"}}).hex() == (
        "2341012902056c6f62627904" "6d6f6465" "cb02" "141a182a1a72756e")
    assert client.encode({"type": "STATE_UPDATE", "roomId": "lobby", "requestId": "c-1",
                          "payload": {"mode": None}}).hex() == "0361cb021a632d310c2a06"


# -- the SDK's implementation, written from docs/protocol.md, against this one ----------------


@given(messages)
def test_the_python_sdk_decodes_what_the_server_encodes(message):
    from kasagi_client import bin1 as sdk

    decoder = sdk.Decoder()
    if type(message.get("baseVersion")) is int:
        decoder.version = message["baseVersion"]
    assert decoder.decode(bin_codec.encode(message)) == message


@given(st.lists(messages, min_size=1, max_size=6))
def test_the_server_decodes_what_the_python_sdk_encodes(stream):
    from kasagi_client import bin1 as sdk

    encoder, decoder = sdk.Encoder(), Decoder(resets=False)
    for message in stream:
        decoder.version = 0
        message = {k: v for k, v in message.items() if k != "baseVersion"}  # clients send none
        assert decoder.decode(encoder.encode(message)) == message


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32))
def test_the_python_sdk_follows_a_simulated_room(seed):
    from kasagi_client import bin1 as sdk

    rng = random.Random(seed)
    room = Room(rng)
    watcher = room.join(None)
    sdk_decoder = sdk.Decoder()
    original = watcher.receive

    def both(data: bytes, frame: dict) -> None:
        assert sdk_decoder.decode(data) == frame
        original(data, frame)

    watcher.receive = both  # type: ignore[method-assign]
    sdk_decoder.decode(room.table.encode(full_state_frame(
        "r", room.version, room.state, player_id=None, session_token=None, resumed=False,
        timestamp=1764650000000)))
    for _ in range(40):
        for _ in range(rng.randrange(1, 4)):
            room.random_change()
        room.tick()
    assert watcher.state == room.rule.view_of(room.state, None)


def test_the_browser_client_decodes_a_simulated_room(tmp_path):
    """static/kasagi/bin1.js (Node) decodes every frame the server's codec writes."""
    import pathlib
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    rng = random.Random(11)
    room = Room(rng)
    watcher = room.join(None)
    frames: list[tuple[str, dict]] = []
    original = watcher.receive

    def record(data: bytes, frame: dict) -> None:
        frames.append((data.hex(), frame))
        original(data, frame)

    watcher.receive = record  # type: ignore[method-assign]
    full = full_state_frame("r", room.version, room.state, player_id=None, session_token=None,
                            resumed=False, timestamp=1764650000000)
    frames.append((room.table.encode(full).hex(), full))
    for _ in range(60):
        for _ in range(rng.randrange(1, 4)):
            room.random_change()
        room.tick()
    assert len(frames) > 30
    (tmp_path / "frames.json").write_bytes(orjson.dumps(frames))
    module = (pathlib.Path(__file__).parents[2] / "static/kasagi/bin1.js").as_uri()
    script = f"""
import {{ readFileSync }} from "node:fs";
import assert from "node:assert/strict";
import {{ Decoder }} from "{module}";
const frames = JSON.parse(readFileSync(process.argv[2], "utf8"));
const decoder = new Decoder();
for (const [hex, expected] of frames) {{
  const bytes = Uint8Array.from(hex.match(/../g), (b) => parseInt(b, 16));
  assert.deepEqual(decoder.decode(bytes), expected);
}}
console.log("decoded", frames.length);
"""
    (tmp_path / "check.mjs").write_text(script)
    done = subprocess.run([node, str(tmp_path / "check.mjs"), str(tmp_path / "frames.json")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"decoded {len(frames)}")


def test_object_members_read_inline_keep_every_rule() -> None:
    """The decoder reads an object's integer and float members without a call each:
    the same values, and the same refusals (NaN, an unannounced name, a cut frame)."""
    payload = {"x": 1023, "y": -1024, "z": 5, "n": -3, "t": 1764800000123.25, "s": "a"}
    frame = StreamEncoder().encode({"type": "STATE_UPDATE", "roomId": "r", "payload": payload})
    assert Decoder().decode(frame)["payload"] == payload
    assert [type(v) for v in Decoder().decode(frame)["payload"].values()] == [
        int, int, int, int, float, str]
    nan = bytearray(bin_codec.encode({"type": "PING", "payload": {"t": 0.1}}))  # a float64
    at = nan.index(bytes([bin_codec.T_FLOAT]))  # the float's head, then its 8 bytes
    nan[at + 1:at + 9] = b"\x00\x00\x00\x00\x00\x00\xf8\x7f"
    with pytest.raises(DecodeError, match="NaN"):
        Decoder().decode(bytes(nan))
    head = bin_codec.TYPE_CODE["PING"]
    obj = (1 << 3) | bin_codec.T_OBJ  # an object of one member
    with pytest.raises(DecodeError, match="never announced"):
        Decoder().decode(bytes([head, bin_codec.M_PAYLOAD, obj, DYNAMIC_BASE + 3, 0]))
    two_byte_int = bin_codec.zigzag(1000) << 3  # needs a two-byte head
    cut = bytes([head, bin_codec.M_PAYLOAD, obj, 1, 0x80 | (two_byte_int & 0x7F)])
    with pytest.raises(DecodeError):
        Decoder().decode(cut)


def outcome(decode, frame: bytes):
    """The message, or DecodeError for any refusal (``decode`` wraps the others in it)."""
    try:
        return decode(frame)
    except (DecodeError, IndexError, UnicodeDecodeError, struct.error, RecursionError):
        return DecodeError


@given(st.dictionaries(st.sampled_from(["x", "y", "t", "hp", "name"]),
                       json_values, max_size=5), st.text(min_size=1, max_size=8))
def test_a_clients_move_is_read_as_the_general_path_reads_it(payload, room):
    """``Decoder.decode`` reads the STATE_UPDATE a client sends most by a shorter way
    (``_update``): for every such frame, cut short or run on, the same message or the
    same refusal as the general ``_decode``."""
    encoder, names = StreamEncoder(), Decoder(resets=False)
    message = {"type": "STATE_UPDATE", "roomId": room, "payload": payload}
    assert names.decode(encoder.encode(message)) == message  # announces the names
    frame = encoder.encode(message)
    assert frame[0] == bin_codec.TYPE_CODE["STATE_UPDATE"]  # no table block: the short way
    for variant in (frame, frame[:-1], frame[:3], frame + b"\x00"):
        fast, general = Decoder(resets=False), Decoder(resets=False)
        fast.table = general.table = dict(names.table)
        expected = outcome(general._decode, variant)
        got = outcome(fast.decode, variant)
        assert got == expected
