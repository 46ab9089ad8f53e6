// The version chain of PROTOCOL.md §6: apply in order, ignore stale, RESYNC on a gap.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { applyChange, checkChain } from "../client.js";
import { ROOM, delta, fullState, joined, makeClient } from "./fakes.mjs";

describe("checkChain", () => {
  const at = (baseVersion, version) => ({ type: "DELTA_UPDATE", baseVersion, version });

  test("the next link applies, merged links included", () => {
    assert.equal(checkChain(10, at(10, 11)), "apply");
    assert.equal(checkChain(10, at(10, 14)), "apply");
  });

  test("not newer than the mirror is stale", () => {
    assert.equal(checkChain(10, at(9, 10)), "stale");
    assert.equal(checkChain(10, at(3, 4)), "stale");
  });

  test("a missing link or an overlap is a gap", () => {
    assert.equal(checkChain(10, at(11, 12)), "gap");
    assert.equal(checkChain(10, at(9, 11)), "gap");
  });

  test("malformed versions are a gap unless plainly old", () => {
    assert.equal(checkChain(10, { version: 11 }), "gap");
    assert.equal(checkChain(10, { version: "11", baseVersion: 10 }), "gap");
    assert.equal(checkChain(10, at(12, 12)), "gap");
    assert.equal(checkChain(10, at(10, 9)), "stale");
  });
});

describe("applyChange", () => {
  const state = { players: { a: { x: 1 } }, entities: {} };

  test("DELTA_UPDATE merges its patch", () => {
    const patch = { players: { a: { x: 2 } } };
    const next = applyChange(state, { type: "DELTA_UPDATE", payload: patch });
    assert.deepEqual(next, { players: { a: { x: 2 } }, entities: {} });
  });

  test("PLAYER_JOINED sets the player's object (replacing, not merging)", () => {
    const stale = { players: { b: { old: true } }, entities: {} };
    const next = applyChange(stale, {
      type: "PLAYER_JOINED",
      payload: { playerId: "b", state: { playerName: "B" } },
    });
    assert.deepEqual(next.players.b, { playerName: "B" });
  });

  test("PLAYER_LEFT removes the player", () => {
    const payload = { playerId: "a", reason: "left" };
    const next = applyChange(state, { type: "PLAYER_LEFT", payload });
    assert.deepEqual(next, { players: {}, entities: {} });
    assert.deepEqual(state.players, { a: { x: 1 } }, "old state untouched");
  });
});

describe("client on the chain", () => {
  test("applies each next link and emits delta then state", async () => {
    const h = makeClient();
    await joined(h, { version: 10 });
    h.ws.receive(delta(10, 11, { players: { "p-1": { x: 150 } } }));
    h.ws.receive(delta(11, 13, { entities: { d: { text: "hi" } } }));
    assert.equal(h.client.version, 13);
    assert.deepEqual(h.client.state, {
      players: { "p-1": { playerName: "Ann", x: 150 } },
      entities: { d: { text: "hi" } },
    });
    assert.deepEqual(
      h.named("delta").map((d) => [d.baseVersion, d.version]),
      [
        [10, 11],
        [11, 13],
      ],
    );
    const states = h.named("state");
    assert.deepEqual(
      states.map((s) => [s.type, s.version]),
      [
        ["FULL_STATE", 10],
        ["DELTA_UPDATE", 11],
        ["DELTA_UPDATE", 13],
      ],
    );
    assert.equal(states.at(-1).state, h.client.state);
  });

  test("PLAYER_JOINED and PLAYER_LEFT are links too, with joined/left events", async () => {
    const h = makeClient();
    await joined(h, { version: 10 });
    h.ws.receive({
      type: "PLAYER_JOINED",
      roomId: ROOM,
      version: 11,
      baseVersion: 10,
      payload: { playerId: "p-2", state: { playerName: "B" } },
    });
    assert.deepEqual(h.client.state.players["p-2"], { playerName: "B" });
    h.ws.receive({
      type: "PLAYER_LEFT",
      roomId: ROOM,
      version: 12,
      baseVersion: 11,
      payload: { playerId: "p-2", reason: "timeout" },
    });
    assert.equal(h.client.state.players["p-2"], undefined);
    assert.equal(h.client.version, 12);
    const others = h.named("joined").filter((j) => !j.self);
    assert.deepEqual(others, [
      { roomId: ROOM, playerId: "p-2", state: { playerName: "B" }, self: false },
    ]);
    assert.deepEqual(h.named("left"), [
      { roomId: ROOM, playerId: "p-2", reason: "timeout", self: false },
    ]);
  });

  test("stale messages are ignored and counted", async () => {
    const h = makeClient();
    await joined(h, { version: 10 });
    const before = h.client.state;
    h.ws.receive(delta(9, 10, { players: { "p-1": { x: 1 } } }));
    h.ws.receive(delta(4, 5, { players: { "p-1": { x: 2 } } }));
    assert.equal(h.client.state, before);
    assert.equal(h.client.version, 10);
    assert.equal(h.client.stats.staleIgnored, 2);
    assert.equal(h.client.stats.gaps, 0);
    assert.ok(!h.ws.sent.some((m) => m.type === "RESYNC"));
  });

  test("a gap sends one RESYNC and ignores changes until the FULL_STATE", async () => {
    const h = makeClient();
    await joined(h, { version: 10 });
    const before = h.client.state;
    h.ws.receive(delta(11, 12, { players: { "p-1": { x: 1 } } })); // 10 → 11 missing
    assert.equal(h.client.stats.gaps, 1);
    assert.equal(h.client.synced, false);
    const resync = h.ws.last;
    assert.equal(resync.type, "RESYNC");
    assert.equal(resync.roomId, ROOM);
    assert.ok(resync.requestId);

    // while waiting: nothing applies, no second RESYNC
    h.ws.receive(delta(12, 13, { players: { "p-1": { x: 2 } } }));
    h.ws.receive(delta(20, 21, { players: { "p-1": { x: 3 } } }));
    assert.equal(h.client.state, before);
    assert.equal(h.ws.sent.filter((m) => m.type === "RESYNC").length, 1);

    // the FULL_STATE replaces the mirror, whatever its version
    const fresh = { players: { "p-1": { playerName: "Ann", x: 2 } }, entities: {} };
    h.ws.receive(fullState({ version: 13, state: fresh, requestId: resync.requestId }));
    assert.equal(h.client.version, 13);
    assert.deepEqual(h.client.state, fresh);
    assert.equal(h.client.synced, true);

    // and the chain continues from it
    h.ws.receive(delta(13, 14, { players: { "p-1": { x: 4 } } }));
    assert.equal(h.client.version, 14);
    assert.equal(h.client.state.players["p-1"].x, 4);
    // a resync is not a (re)join
    assert.equal(h.named("joined").length, 1);
  });

  test("a FULL_STATE resets the mirror even to a lower version", async () => {
    const h = makeClient();
    await joined(h, { version: 10 });
    h.ws.receive(delta(10, 11, { players: { "p-1": { x: 1 } } }));
    h.ws.receive(fullState({ version: 7, state: { players: {}, entities: { e: { n: 1 } } } }));
    assert.equal(h.client.version, 7);
    assert.deepEqual(h.client.state, { players: {}, entities: { e: { n: 1 } } });
    h.ws.receive(delta(7, 8, { entities: { e: { n: 2 } } }));
    assert.equal(h.client.state.entities.e.n, 2);
  });

  test("resync() asks for a FULL_STATE and resolves with it", async () => {
    const h = makeClient();
    await joined(h, { version: 10 });
    const promise = h.client.resync();
    const request = h.ws.last;
    assert.equal(request.type, "RESYNC");
    const fresh = { players: {}, entities: {} };
    h.ws.receive(fullState({ version: 12, state: fresh, requestId: request.requestId }));
    assert.deepEqual(await promise, fresh);
    assert.equal(h.client.stats.gaps, 0);
    assert.equal(h.client.stats.resyncs, 1);
  });

  test("a refused RESYNC is retried after a second", async () => {
    const h = makeClient();
    await joined(h, { version: 10 });
    h.ws.receive(delta(12, 13, {}));
    const first = h.ws.last;
    h.ws.receive({
      type: "ERROR",
      roomId: ROOM,
      requestId: first.requestId,
      payload: { code: "RATE_LIMITED", message: "slow down" },
    });
    h.ws.receive(delta(13, 14, {})); // still waiting: ignored
    assert.equal(h.ws.sent.filter((m) => m.type === "RESYNC").length, 1);
    h.timers.advance(1000);
    const second = h.ws.last;
    assert.equal(second.type, "RESYNC");
    assert.notEqual(second.requestId, first.requestId);
  });

  test("messages for another room are ignored", async () => {
    const h = makeClient();
    await joined(h, { version: 10 });
    h.ws.receive(delta(10, 11, { entities: { x: { a: 1 } } }, "other-room"));
    assert.equal(h.client.version, 10);
    assert.equal(h.client.stats.gaps, 0);
  });

  test("being removed from the room (kicked) ends the membership", async () => {
    const h = makeClient();
    await joined(h, { version: 10 });
    h.ws.receive({
      type: "PLAYER_LEFT",
      roomId: ROOM,
      version: 11,
      baseVersion: 10,
      payload: { playerId: "p-1", reason: "kicked" },
    });
    assert.equal(h.client.roomId, null);
    assert.equal(h.client.state, null);
    assert.equal(h.storage.getItem(`kasagi:sessionToken:${ROOM}`), null);
    const left = h.named("left").at(-1);
    assert.equal(left.self, true);
    assert.equal(left.reason, "kicked");
  });
});
