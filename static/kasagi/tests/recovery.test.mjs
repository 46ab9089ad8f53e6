// Recovery by version (PROTOCOL.md §14): the rejoin names the state held (sinceVersion,
// epoch); RESUMED keeps it and the missed changes follow; FULL_STATE replaces it.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ROOM, delta, fullState, joined, makeClient, resumed } from "./fakes.mjs";

const KEY = `kasagi:sessionToken:${ROOM}`;

/** Join at version 10 in epoch e-1, apply one delta, drop, reopen: returns the rejoin. */
async function awayAndBack(h, fullStateOptions = {}) {
  await joined(h, { version: 10, epoch: "e-1", ...fullStateOptions });
  h.ws.receive(delta(10, 11, { players: { "p-1": { x: 5 } } }));
  h.ws.drop();
  h.timers.advance(60000);
  h.ws.open();
  return h.ws.last;
}

describe("recovery by version", () => {
  test("the rejoin carries the version and epoch of the state held", async () => {
    const h = makeClient();
    const rejoin = await awayAndBack(h);
    assert.equal(h.client.epoch, "e-1");
    assert.equal(rejoin.type, "JOIN_ROOM");
    assert.deepEqual(rejoin.payload, {
      playerName: "Ann",
      sessionToken: "tok-1",
      sinceVersion: 11,
      epoch: "e-1",
    });
  });

  test("the first join and a page reload name no state", async () => {
    const h = makeClient();
    await joined(h, { epoch: "e-1" });
    const first = h.ws.sent[0];
    assert.equal(first.payload.sinceVersion, undefined);
    const reload = makeClient({ storage: h.storage });
    reload.client.join(ROOM, { playerName: "Ann" });
    reload.ws.open();
    assert.equal(reload.ws.last.payload.sessionToken, "tok-1");
    assert.equal(reload.ws.last.payload.sinceVersion, undefined, "a new page holds no state");
  });

  test("a 1.0 server (no epoch) gets a plain resume", async () => {
    const h = makeClient();
    await joined(h, { version: 10 });
    h.ws.drop();
    h.timers.advance(60000);
    h.ws.open();
    assert.deepEqual(h.ws.last.payload, { playerName: "Ann", sessionToken: "tok-1" });
  });

  test("RESUMED keeps the state, chains from its version and counts the recovery", async () => {
    const h = makeClient();
    const recovered = [];
    h.client.on("recovered", (detail) => recovered.push(detail));
    const rejoin = await awayAndBack(h);
    const held = h.client.state;
    h.client.update({ y: 1 }); // queued while away
    h.ws.receive(resumed({ requestId: rejoin.requestId, version: 11, sessionToken: "tok-2" }));
    assert.equal(h.client.state, held, "the very same mirror");
    assert.equal(h.client.version, 11);
    assert.equal(h.client.synced, true);
    assert.equal(h.client.resumed, true);
    assert.equal(h.storage.getItem(KEY), "tok-2", "the rotated token is kept");
    const self = h.named("joined").at(-1);
    assert.deepEqual([self.self, self.resumed, self.recovered], [true, true, true]);
    const sent = h.ws.sent.slice(1);
    assert.deepEqual(sent.map((m) => m.type), ["PING", "STATE_UPDATE"], "barrier, then outbox");
    const barrier = sent[0];

    // the missed changes, composed by the server, then the live chain
    h.ws.receive(delta(11, 14, { players: { "p-2": { x: 1 } } }));
    h.ws.receive({
      type: "PLAYER_LEFT", roomId: ROOM, version: 15, baseVersion: 14,
      payload: { playerId: "p-2", reason: "left" },
    });
    assert.equal(h.client.version, 15);
    assert.deepEqual(h.client.state.players, { "p-1": { playerName: "Ann", x: 5 } });
    assert.equal(recovered.length, 0, "not done before the barrier's PONG");
    h.ws.receive({ type: "PONG", requestId: barrier.requestId, payload: { serverTime: 1 } });
    assert.equal(recovered.length, 1);
    const last = h.client.stats.lastRecovery;
    assert.deepEqual(
      [last.sinceVersion, last.version, last.changes, last.frames, last.done],
      [11, 15, 4, 2, true],
    );
    assert.ok(last.bytes > 0 && last.fullBytes === h.client.stats.stateBytes);
    assert.equal(recovered[0].changes, 4);
    assert.equal(h.client.stats.recoveries, 1);
    h.ws.receive(delta(15, 16, { entities: { d: { open: true } } }));
    assert.equal(h.client.stats.lastRecovery.frames, 2, "later frames are not the recovery's");
    assert.equal(h.client.stats.gaps, 0);
  });

  test("a FULL_STATE answer replaces the mirror and its epoch", async () => {
    const h = makeClient();
    const rejoin = await awayAndBack(h);
    const state = { players: { "p-1": { playerName: "Ann", x: 9 } }, entities: {} };
    h.ws.receive(fullState({
      requestId: rejoin.requestId, version: 3, resumed: true, epoch: "e-2", state,
    }));
    assert.deepEqual(h.client.state, state);
    assert.equal(h.client.version, 3);
    assert.equal(h.client.epoch, "e-2");
    assert.equal(h.client.stats.recoveries, 0);
    h.ws.drop();
    h.timers.advance(60000);
    h.ws.open();
    assert.equal(h.ws.last.payload.sinceVersion, 3);
    assert.equal(h.ws.last.payload.epoch, "e-2");
  });

  test("a RESUMED that does not name the state held asks for a RESYNC", async () => {
    const h = makeClient();
    const rejoin = await awayAndBack(h);
    h.ws.receive(resumed({ requestId: rejoin.requestId, version: 7 }));
    assert.equal(h.ws.last.type, "RESYNC");
    assert.equal(h.client.synced, false);
    h.ws.receive(delta(7, 8, {})); // dropped: a FULL_STATE is on its way
    assert.equal(h.client.version, 11);
    h.ws.receive(fullState({ requestId: h.ws.last.requestId, version: 12, epoch: "e-1" }));
    assert.equal(h.client.synced, true);
    assert.equal(h.client.version, 12);
  });

  test("a spectator has no token and so never names a state", async () => {
    const h = makeClient();
    const promise = h.client.join(ROOM, { spectate: true });
    h.ws.open();
    h.ws.receive(fullState({
      requestId: h.ws.last.requestId, playerId: null, sessionToken: null, epoch: "e-1",
    }));
    await promise;
    h.ws.drop();
    h.timers.advance(60000);
    h.ws.open();
    assert.deepEqual(h.ws.last.payload, { spectate: true });
  });
});
