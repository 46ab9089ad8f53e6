// Events (PROTOCOL.md §11): sendMessage builds a MESSAGE, EVENT reaches the `event`
// listeners as {kind, data, from}, and neither touches the state mirror.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { KIND_PATTERN, KasagiError } from "../client.js";
import { ROOM, delta, joined, makeClient } from "./fakes.mjs";

function events(h) {
  const seen = [];
  h.client.on("event", (detail) => seen.push(detail));
  return seen;
}

describe("sendMessage", () => {
  test("sends MESSAGE {kind, data} with a requestId", async () => {
    const h = makeClient();
    await joined(h);
    const requestId = h.client.sendMessage("emote", { emoji: "🎉" });
    assert.deepEqual(h.ws.last, {
      type: "MESSAGE",
      roomId: ROOM,
      payload: { kind: "emote", data: { emoji: "🎉" } },
      requestId,
    });
    assert.equal(typeof requestId, "string");
  });

  test("leaves data out when undefined, keeps falsy values", async () => {
    const h = makeClient();
    await joined(h);
    h.client.sendMessage("wave");
    assert.deepEqual(h.ws.last.payload, { kind: "wave" });
    for (const data of [0, false, "", null, [], "text"]) {
      h.client.sendMessage("k", data);
      assert.deepEqual(h.ws.last.payload, { kind: "k", data });
    }
  });

  test("a bad kind throws TypeError and sends nothing", async () => {
    const h = makeClient();
    await joined(h);
    const before = h.ws.frames.length;
    for (const kind of ["", "k".repeat(65), "with space", "émote", "a/b", 5, null, undefined]) {
      assert.throws(() => h.client.sendMessage(kind, {}), TypeError, String(kind));
    }
    for (const kind of ["emote", "coin.taken", "chat:say", "A-Z_0.9", "k".repeat(64)]) {
      assert.ok(KIND_PATTERN.test(kind), kind);
    }
    assert.equal(h.ws.frames.length, before);
  });

  test("outside a room, as a spectator or while reconnecting it throws", async () => {
    const h = makeClient();
    h.ws.open();
    assert.throws(() => h.client.sendMessage("emote"), (e) => e.code === "NOT_IN_ROOM");

    const watcher = makeClient();
    await joined(watcher, { playerId: null, sessionToken: null }, { spectate: true });
    assert.throws(() => watcher.client.sendMessage("emote"), (e) => e.code === "FORBIDDEN");

    const dropped = makeClient();
    await joined(dropped);
    dropped.ws.drop();
    assert.throws(
      () => dropped.client.sendMessage("emote"),
      (e) => e instanceof KasagiError && e.code === "CLIENT_NOT_CONNECTED",
    );
  });

  test("a refusal arrives as an error carrying the message's requestId", async () => {
    const h = makeClient();
    await joined(h);
    const requestId = h.client.sendMessage("fire");
    h.ws.receive({
      type: "ERROR",
      roomId: ROOM,
      requestId,
      payload: { code: "UNKNOWN_MESSAGE", message: "no handler for fire" },
    });
    const [error] = h.named("error");
    assert.equal(error.code, "UNKNOWN_MESSAGE");
    assert.equal(error.requestId, requestId);
    assert.equal(h.client.roomId, ROOM, "an ERROR never takes the client out of the room");
  });
});

describe("EVENT", () => {
  test("reaches the event listeners as {kind, data, from}, not the mirror", async () => {
    const h = makeClient();
    await joined(h);
    const seen = events(h);
    const state = h.client.state;
    const version = h.client.version;
    h.ws.receive({
      type: "EVENT",
      roomId: ROOM,
      timestamp: 1764172800000,
      payload: { kind: "emote", data: { emoji: "🎉" }, from: "p-2" },
    });
    h.ws.receive({
      type: "EVENT",
      roomId: ROOM,
      timestamp: 1764172800001,
      payload: {
        kind: "coin.taken",
        data: { coinId: "coin-1", playerId: "p-2", score: 1 },
        from: null,
      },
    });
    h.ws.receive({ type: "EVENT", roomId: ROOM, timestamp: 2, payload: { kind: "bare" } });
    assert.deepEqual(seen, [
      { kind: "emote", data: { emoji: "🎉" }, from: "p-2", roomId: ROOM, timestamp: 1764172800000 },
      {
        kind: "coin.taken",
        data: { coinId: "coin-1", playerId: "p-2", score: 1 },
        from: null,
        roomId: ROOM,
        timestamp: 1764172800001,
      },
      { kind: "bare", data: null, from: null, roomId: ROOM, timestamp: 2 },
    ]);
    assert.equal(h.client.state, state);
    assert.equal(h.client.version, version);
    assert.equal(h.client.stats.events, 3);
    assert.equal(h.client.stats.toJSON().events, 3);
    assert.equal(h.client.stats.gaps, 0);
  });

  test("an event after a delta sees the delta in the mirror (in order)", async () => {
    const h = makeClient();
    await joined(h, { version: 10 });
    let xAtEvent;
    h.client.on("event", () => {
      xAtEvent = h.client.state.players["p-2"]?.x;
    });
    h.ws.receive(delta(10, 11, { players: { "p-2": { x: 42 } } }));
    h.ws.receive({ type: "EVENT", roomId: ROOM, timestamp: 1, payload: { kind: "k" } });
    assert.equal(xAtEvent, 42);
  });

  test("events of another room, outside a room or malformed are dropped", async () => {
    const h = makeClient();
    const seen = events(h);
    h.ws.open();
    h.ws.receive({ type: "EVENT", roomId: ROOM, timestamp: 1, payload: { kind: "early" } });
    await joined(h);
    h.ws.receive({ type: "EVENT", roomId: "elsewhere", timestamp: 1, payload: { kind: "k" } });
    h.ws.receive({ type: "EVENT", roomId: ROOM, timestamp: 1, payload: { kind: 7 } });
    h.ws.receive({ type: "EVENT", roomId: ROOM, timestamp: 1, payload: "not an object" });
    h.client.leave();
    h.ws.receive({ type: "EVENT", roomId: ROOM, timestamp: 1, payload: { kind: "late" } });
    assert.deepEqual(seen, []);
    assert.equal(h.named("error").length, 0);
  });
});
