// End to end against a real server; skipped unless KASAGI_WS_URL is set.
//
//   KASAGI_WS_URL=ws://127.0.0.1:8080/sync \
//     node --experimental-websocket --test static/kasagi/tests/
//
// (Node 22+ has a global WebSocket without the flag.) No test doubles here:
// the real client, a real socket, the real server.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { connect, memoryStorage } from "../client.js";

const URL = process.env.KASAGI_WS_URL;
const skip = !URL
  ? "set KASAGI_WS_URL to run against a live server"
  : typeof WebSocket !== "function"
    ? "needs a global WebSocket (node --experimental-websocket on Node 20)"
    : false;

/** Resolve with the first `name` event whose detail passes `check`. */
function waitFor(client, name, check = () => true, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${name}`));
    }, ms);
    const off = client.on(name, (detail) => {
      if (check(detail)) {
        clearTimeout(timer);
        off();
        resolve(detail);
      }
    });
  });
}

describe("live server", { skip }, () => {
  const room = `js-client-${process.pid}-${Date.now()}`;

  test("two clients follow the same state; a reload resumes the player", async () => {
    const storageA = memoryStorage();
    const a = connect(URL, { storage: storageA });
    const b = connect(URL, { storage: memoryStorage() });
    try {
      const joinedA = await a.join(room, { playerName: "A" });
      assert.equal(joinedA.resumed, false);
      const aSeesB = waitFor(a, "joined", (d) => !d.self);
      const joinedB = await b.join(room, { playerName: "B" });
      assert.ok(joinedB.state.players[joinedA.playerId]);
      assert.equal((await aSeesB).playerId, joinedB.playerId);

      a.update({ x: 150, y: 200 });
      a.updateEntity("doc-1", { text: "hello" });
      await waitFor(b, "state", (d) => d.state.entities?.["doc-1"]?.text === "hello");
      if (a.state.entities?.["doc-1"]?.text !== "hello") {
        await waitFor(a, "state", (d) => d.state.entities?.["doc-1"]?.text === "hello");
      }
      assert.equal(a.version, b.version);
      assert.deepEqual(a.state, b.state);
      assert.equal(b.state.players[joinedA.playerId].x, 150);

      const rtt = await a.ping();
      assert.ok(rtt >= 0 && a.stats.lastRtt === rtt);

      // "reload" A: drop its socket without leaving, then a new client, same storage
      const versionBefore = b.version;
      a.close();
      const a2 = connect(URL, { storage: storageA });
      try {
        const resumed = await a2.join(room, { playerName: "A" });
        assert.equal(resumed.resumed, true);
        assert.equal(resumed.playerId, joinedA.playerId);
        assert.equal(resumed.version, versionBefore, "a resume changes no version");
        assert.equal(resumed.state.players[joinedA.playerId].x, 150);
        a2.leave();
        await waitFor(b, "left", (d) => d.playerId === joinedA.playerId);
        assert.equal(b.state.players[joinedA.playerId], undefined);
        assert.equal(b.stats.gaps, 0);
      } finally {
        a2.close();
      }
    } finally {
      a.close();
      b.close();
    }
  });

  test("a dropped socket recovers the missed changes with RESUMED (§14)", async () => {
    const sockets = [];
    class Recorded extends WebSocket {
      constructor(url) {
        super(url);
        sockets.push(this);
      }
    }
    const reconnect = { baseMs: 400, maxMs: 400, jitter: 0 };
    const a = connect(URL, { storage: memoryStorage(), WebSocket: Recorded, reconnect });
    const b = connect(URL, { storage: memoryStorage() });
    const recoveryRoom = `${room}-recovery`;
    try {
      await a.join(recoveryRoom, { playerName: "A" });
      assert.equal(typeof a.epoch, "string");
      await b.join(recoveryRoom, { playerName: "B" });
      await waitFor(a, "joined", (d) => !d.self);
      const recovered = waitFor(a, "recovered");
      sockets.at(-1).close(); // no LEAVE_ROOM: the server keeps the player (grace period)
      for (let x = 1; x <= 5; x += 1) {
        b.update({ x });
      }
      b.updateEntity("door", { open: true });
      const detail = await recovered;
      assert.ok(detail.changes >= 1 && detail.bytes > 0 && detail.fullBytes > 0);
      if (a.version !== b.version) {
        await waitFor(a, "state", () => a.version === b.version);
      }
      assert.deepEqual(a.state, b.state);
      assert.equal(a.stats.recoveries, 1);
      assert.equal(a.stats.gaps, 0);
    } finally {
      a.close();
      b.close();
    }
  });

  test("a refused update is reported with the server's code and its requestId", async () => {
    const c = connect(URL, { storage: memoryStorage() });
    try {
      await c.join(room, { playerName: "C" });
      let deep = { end: 1 };
      for (let i = 0; i < 12; i += 1) deep = { [`k${i}`]: deep }; // beyond the nesting limit
      const requestId = c.update({ deep });
      const error = await waitFor(c, "error");
      assert.equal(error.requestId, requestId);
      assert.ok(["INVALID_UPDATE", "PAYLOAD_TOO_LARGE", "BAD_MESSAGE"].includes(error.code));
    } finally {
      c.close();
    }
  });
});
