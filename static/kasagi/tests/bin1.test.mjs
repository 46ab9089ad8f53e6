// The kasagi.bin1 codec in the browser: the examples of docs/protocol.md, round trips.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Bin1Error, Decoder, Encoder } from "../bin1.js";

const hex = (s) => Uint8Array.from(s.replace(/\s+/g, "").match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

describe("docs/protocol.md examples", () => {
  test("a FULL_STATE then a DELTA_UPDATE", () => {
    const decoder = new Decoder();
    const full = decoder.decode(hex(`26 59 80 80 a5 8e d8 66 01 29 02 03 70 2d 31 02 68 70
      2a 6c 6f 62 62 79 2a e8 07 2c 03 1a 70 2d 32 04 12 74 6b 05 0e 07 12 65 31 06 14
      01 14 29 0c 2a 30 00 03 70 2d 32 0c 1a a0 01 02 04`));
    assert.deepEqual(full, {
      type: "FULL_STATE", roomId: "lobby", version: 42, timestamp: 1764172800500,
      payload: { playerId: "p-2", sessionToken: "tk", resumed: false, epoch: "e1",
        state: { players: { "p-1": { hp: 3 }, "p-2": { x: 10 } }, entities: {} } },
    });
    const delta = decoder.decode(hex(`32 01 2b 01 03 70 2d 32 2a 01 cc 08 0c 2b 1c
      1a 28 1b 89 04 06 1d 19 05`));
    assert.deepEqual(delta, {
      type: "DELTA_UPDATE", roomId: "lobby", version: 43, baseVersion: 42,
      timestamp: 1764172800550,
      payload: { players: { "p-2": { x: -3, y: 1.5, t: 1764172800549.25 } } },
    });
  });

  test("the long form of a DELTA_UPDATE (mask byte, float64) still decodes", () => {
    const decoder = new Decoder();
    decoder.room = "lobby";
    decoder.version = 42;
    decoder.timeBase = 1764172800000;
    const delta = decoder.decode(hex(`27 5e 01 2b 01 03 70 2d 32 2a 01 cc 08 0c 01 0c 2b 14
      1a 28 1b 01 00 00 00 00 00 00 f8 3f`));
    assert.deepEqual(delta.payload, { players: { "p-2": { x: -3, y: 1.5 } } });
  });

  test("a float near the frame's time needs the frame's timestamp", () => {
    // PING with a payload {t: <near-time float>} and no timestamp slot
    assert.throws(() => new Decoder().decode(hex("05 40 0c 1d 19 05")), Bin1Error);
    // the same with a timestamp (absolute, head bit 6): T - 0.75
    const ok = new Decoder().decode(hex("45 50 02 0c 1d 19 05"));
    assert.deepEqual(ok, { type: "PING", timestamp: 1, payload: { t: 0.25 } });
  });

  test("a client's STATE_UPDATEs", () => {
    const encoder = new Encoder();
    assert.equal(toHex(encoder.encode({ type: "STATE_UPDATE", roomId: "lobby",
      payload: { x: -2, mode: "run" } })), "2341012902056c6f626279046d6f6465cb02141a182a1a72756e");
    assert.equal(toHex(encoder.encode({ type: "STATE_UPDATE", roomId: "lobby",
      requestId: "c-1", payload: { mode: null } })), "0361cb021a632d310c2a06");
  });
});

describe("round trips", () => {
  const messages = [
    { type: "JOIN_ROOM", roomId: "r-1", requestId: "c-1", payload: { playerName: "Ann", x: 1 } },
    { type: "STATE_UPDATE", roomId: "r-1", entityId: "doc", expectedVersion: 4,
      payload: { text: "héllo ✓", list: [1, -2.5, null, true, { deep: { deeper: 1 } }] } },
    { type: "PING", requestId: 7, timestamp: 1764172800000 },
    { type: "MESSAGE", roomId: "r-1", payload: { kind: "emoji", data: { big: 2 ** 52, neg: -(2 ** 40) } } },
    { type: "WHAT", roomId: "r-1" },
    { type: "LEAVE_ROOM", roomId: "r-1" },
  ];
  test("the decoder reads what the encoder writes", () => {
    const encoder = new Encoder();
    const decoder = new Decoder();
    for (const message of messages) {
      assert.deepEqual(decoder.decode(encoder.encode(message)), message);
    }
  });

  test("bytes decode to base64, as JSON frames carry them", () => {
    const frame = new Encoder().encode({ type: "DOC_UPDATE", roomId: "r",
      payload: { docId: "n", update: Uint8Array.of(0, 1, 255) } });
    assert.deepEqual(new Decoder().decode(frame).payload, { docId: "n", update: "AAH/" });
  });

  test("malformed frames are refused", () => {
    for (const bad of ["", "07", "ff00", "0540cb02", "054001000000", "05400000", "0702"]) {
      assert.throws(() => new Decoder().decode(hex(bad)), Bin1Error, bad);
    }
  });
});

// Against a real server (tests/e2e/test_bin_codec.py runs it): the client picks bin1.
const URL = process.env.KASAGI_WS_URL;
describe("live server on bin1", {
  skip: !URL || typeof WebSocket !== "function" ? "set KASAGI_WS_URL (and a WebSocket)" : false,
}, () => {
  test("the client negotiates bin1, mirrors a JSON client and counts JSON's cost", async () => {
    const { connect, memoryStorage } = await import("../client.js");
    const room = `bin1-js-${process.pid}-${Date.now()}`;
    const compact = connect(URL, { storage: memoryStorage() });
    const plain = connect(URL, { storage: memoryStorage(), encoding: "json" });
    try {
      await compact.join(room, { playerName: "B", x: 1 });
      await plain.join(room, { playerName: "J" });
      assert.equal(compact.stats.codec, "bin1");
      assert.equal(plain.stats.codec, "json");
      for (let x = 2; x <= 20; x += 1) compact.update({ x, t: 1764650000000.5 + x });
      plain.updateEntity("flag", { owner: "J", pos: [1.5, null] });
      const deadline = Date.now() + 5000;
      while ((compact.state?.players?.[compact.playerId]?.x !== 20
              || plain.state?.players?.[compact.playerId]?.x !== 20
              || !compact.state?.entities?.flag || compact.version !== plain.version)
             && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.deepEqual(compact.state, plain.state);
      assert.equal(compact.stats.gaps, 0);
      const stats = compact.stats.toJSON();
      assert.ok(stats.jsonBytesReceived > 2 * stats.bytesReceived, JSON.stringify(stats));
    } finally {
      compact.close();
      plain.close();
    }
  });
});

describe("the demo panel's rate", () => {
  test("shows the codec's bytes and what JSON would have cost", async () => {
    const { rateSummary } = await import("../demo-panel.js");
    assert.equal(rateSummary({ codec: "bin1", bytesPerSecond: 1000, jsonBytesPerSecond: 4000,
      messagesReceived: 3, bytesReceived: 2048 }),
    "1000 B/s bin1 (JSON: 3.9 KB/s, 25%) · 3 msgs, 2.0 KB total");
    assert.equal(rateSummary({ codec: "json", bytesPerSecond: 100, jsonBytesPerSecond: 100,
      messagesReceived: 1, bytesReceived: 100 }), "100 B/s json · 1 msgs, 100 B total");
  });
});
