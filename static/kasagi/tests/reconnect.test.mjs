// Reconnection with backoff, and resuming the player by its session token (PROTOCOL.md §6).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { backoffDelay, defaultStorage, memoryStorage } from "../client.js";
import { ROOM, delta, fullState, joined, makeClient } from "./fakes.mjs";

const KEY = `kasagi:sessionToken:${ROOM}`;

describe("backoffDelay", () => {
  test("doubles from the base up to the cap", () => {
    const noJitter = { baseMs: 500, maxMs: 15000, jitter: 0 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 10].map((n) => backoffDelay(n, noJitter)),
      [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000],
    );
  });

  test("jitter takes off up to its share", () => {
    const options = { baseMs: 1000, maxMs: 60000, jitter: 0.5 };
    assert.equal(backoffDelay(2, options, () => 0), 4000);
    assert.equal(backoffDelay(2, options, () => 0.999999), 2000);
    for (let i = 0; i < 100; i += 1) {
      const delay = backoffDelay(3, options);
      assert.ok(delay >= 4000 && delay <= 8000, String(delay));
    }
  });
});

describe("token storage", () => {
  test("memoryStorage behaves like Web Storage", () => {
    const storage = memoryStorage();
    assert.equal(storage.getItem("k"), null);
    storage.setItem("k", "v");
    assert.equal(storage.getItem("k"), "v");
    storage.removeItem("k");
    assert.equal(storage.getItem("k"), null);
  });

  test("defaultStorage falls back to memory without sessionStorage (Node)", () => {
    assert.equal(globalThis.sessionStorage, undefined);
    const storage = defaultStorage();
    storage.setItem("k", "v");
    assert.equal(storage.getItem("k"), "v");
  });

  test("a storage that throws does not break joining or resuming", async () => {
    const broken = {
      getItem() {
        throw new Error("SecurityError");
      },
      setItem() {
        throw new Error("QuotaExceededError");
      },
      removeItem() {
        throw new Error("SecurityError");
      },
    };
    const h = makeClient({ storage: broken });
    await joined(h, { sessionToken: "tok-1" });
    h.ws.drop();
    h.timers.advance(60000);
    h.ws.open();
    assert.equal(h.ws.last.payload.sessionToken, "tok-1", "kept in memory");
  });
});

describe("resume", () => {
  test("the FULL_STATE's token is stored under a key per room", async () => {
    const h = makeClient();
    const result = await joined(h, { sessionToken: "secret-1", playerId: "p-9" });
    assert.equal(h.storage.getItem(KEY), "secret-1");
    assert.equal(result.playerId, "p-9");
    assert.equal(h.client.playerId, "p-9");
    const first = h.ws.sent[0];
    assert.equal(first.type, "JOIN_ROOM");
    assert.equal(first.payload.sessionToken, undefined, "no token on a first visit");
  });

  test("a page reload (new client, same storage) resumes with the stored token", async () => {
    const storage = memoryStorage();
    const before = makeClient({ storage });
    await joined(before, { sessionToken: "secret-1" });

    const after = makeClient({ storage }); // the reloaded page
    const promise = after.client.join(ROOM, { playerName: "Ann" });
    after.ws.open();
    const join = after.ws.last;
    assert.equal(join.type, "JOIN_ROOM");
    assert.deepEqual(join.payload, { playerName: "Ann", sessionToken: "secret-1" });
    after.ws.receive(
      fullState({ requestId: join.requestId, resumed: true, sessionToken: "secret-2" }),
    );
    const result = await promise;
    assert.equal(result.resumed, true);
    assert.equal(after.client.resumed, true);
    assert.equal(storage.getItem(KEY), "secret-2", "a rotated token replaces the old one");
  });

  test("a dropped socket reconnects with backoff and rejoins with the token", async () => {
    const reconnect = { baseMs: 500, maxMs: 4000, jitter: 0.5 };
    const h = makeClient({ clientOptions: { reconnect } });
    await joined(h, { sessionToken: "secret-1", version: 10 });
    h.ws.receive(delta(10, 11, { players: { "p-1": { x: 5 } } }));

    h.ws.drop();
    assert.equal(h.client.status, "reconnecting");
    assert.equal(h.client.synced, false);
    assert.equal(h.client.version, 11, "the last mirror stays readable while away");
    assert.deepEqual(h.timers.delays, [375], "500 ms less half of the 0.5 jitter");
    assert.equal(h.sockets.length, 1);

    // the first retry fails too: the delay doubles
    h.timers.advance(375);
    assert.equal(h.sockets.length, 2);
    h.ws.drop();
    assert.deepEqual(h.timers.delays, [750]);
    h.timers.advance(750);
    assert.equal(h.sockets.length, 3);
    assert.equal(h.client.stats.reconnects, 2);

    h.ws.open();
    const rejoin = h.ws.last;
    assert.equal(rejoin.type, "JOIN_ROOM");
    assert.equal(rejoin.roomId, ROOM);
    assert.deepEqual(rejoin.payload, { playerName: "Ann", sessionToken: "secret-1" });

    // the resume: same player, state from the server, others told nothing
    h.ws.receive(
      fullState({
        requestId: rejoin.requestId,
        version: 11,
        resumed: true,
        sessionToken: "secret-1",
        state: { players: { "p-1": { playerName: "Ann", x: 5 } }, entities: {} },
      }),
    );
    assert.equal(h.client.synced, true);
    assert.equal(h.client.status, "open");
    const rejoined = h.named("joined").at(-1);
    assert.equal(rejoined.self, true);
    assert.equal(rejoined.resumed, true);

    // a later drop starts the backoff over
    h.ws.drop();
    assert.deepEqual(h.timers.delays, [375]);

    assert.deepEqual(
      h.named("status").map((s) => s.status),
      ["connecting", "open", "reconnecting", "reconnecting", "open", "reconnecting"],
    );
  });

  test("updates made while away are merged and sent after the rejoin", async () => {
    const h = makeClient();
    await joined(h, { version: 10 });
    h.ws.drop();
    h.client.update({ x: 1, y: 1 });
    h.client.update({ x: 2 });
    const lastId = h.client.updateEntity("doc-1", { text: "hello" });
    h.timers.advance(60000);
    h.ws.open();
    const rejoin = h.ws.last;
    assert.equal(h.ws.sent.length, 1, "nothing but the join before the FULL_STATE");
    h.ws.receive(fullState({ requestId: rejoin.requestId, version: 10, resumed: true }));
    const updates = h.ws.sent.filter((m) => m.type === "STATE_UPDATE");
    assert.deepEqual(
      updates.map((m) => [m.entityId ?? null, m.payload, m.version]),
      [
        [null, { x: 2, y: 1 }, 10],
        ["doc-1", { text: "hello" }, 10],
      ],
    );
    assert.equal(updates[1].requestId, lastId);
  });

  test("a failed handshake reported by an error event alone is retried", async () => {
    const h = makeClient();
    await joined(h);
    h.ws.drop();
    h.timers.advance(60000);
    h.ws.fail(); // server still down: error, no close event
    assert.equal(h.client.status, "reconnecting");
    assert.equal(h.sockets.at(-1).closedWith.code, 1000, "the failed socket is closed");
    h.timers.advance(60000);
    assert.equal(h.sockets.length, 3);
    h.ws.open();
    assert.equal(h.ws.last.type, "JOIN_ROOM");
  });

  test("an expired token just joins as a new player", async () => {
    const h = makeClient();
    await joined(h, { sessionToken: "old", playerId: "p-1" });
    h.ws.drop();
    h.timers.advance(60000);
    h.ws.open();
    const rejoin = h.ws.last;
    h.ws.receive(
      fullState({ requestId: rejoin.requestId, playerId: "p-7", sessionToken: "new" }),
    );
    assert.equal(h.client.playerId, "p-7");
    assert.equal(h.storage.getItem(KEY), "new");
    assert.equal(h.named("joined").at(-1).resumed, false);
  });

  test("a refused automatic rejoin ends the membership", async () => {
    const h = makeClient();
    await joined(h);
    h.ws.drop();
    h.timers.advance(60000);
    h.ws.open();
    h.ws.receive({
      type: "ERROR",
      roomId: ROOM,
      requestId: h.ws.last.requestId,
      payload: { code: "ROOM_CLOSED", message: "closed" },
    });
    assert.equal(h.client.roomId, null);
    const left = h.named("left").at(-1);
    assert.equal(left.self, true);
    assert.equal(left.reason, "rejoin-failed");
    assert.equal(left.error.code, "ROOM_CLOSED");
  });

  test("leave() sends LEAVE_ROOM and forgets the token", async () => {
    const h = makeClient();
    await joined(h);
    assert.equal(h.storage.getItem(KEY), "tok-1");
    h.client.leave();
    const leave = h.ws.last;
    assert.deepEqual(leave, { type: "LEAVE_ROOM", roomId: ROOM, requestId: leave.requestId });
    assert.equal(h.storage.getItem(KEY), null);
    assert.equal(h.client.roomId, null);
    assert.equal(h.client.state, null);
    assert.equal(h.named("left").at(-1).reason, "left");
    // reconnecting now does not rejoin
    h.ws.drop();
    h.timers.advance(60000);
    h.ws.open();
    assert.ok(!h.ws.sent.some((m) => m.type === "JOIN_ROOM"));
  });

  test("close() stops reconnecting and keeps the token for a later resume", async () => {
    const h = makeClient();
    await joined(h);
    h.client.close();
    assert.equal(h.client.status, "closed");
    assert.equal(h.sockets[0].closedWith.code, 1000);
    h.timers.advance(600000);
    assert.equal(h.sockets.length, 1);
    assert.equal(h.storage.getItem(KEY), "tok-1");
  });

  test("reconnect: false gives up at the first drop", async () => {
    const h = makeClient({ clientOptions: { reconnect: false } });
    await joined(h);
    h.ws.drop();
    assert.equal(h.client.status, "closed");
    assert.deepEqual(h.timers.delays, []);
  });

  test("maxAttempts bounds the retries, and a pending join rejects", async () => {
    const h = makeClient({ clientOptions: { reconnect: { maxAttempts: 2 } } });
    const promise = h.client.join(ROOM, {});
    h.ws.drop();
    h.timers.advance(60000);
    h.ws.drop();
    h.timers.advance(60000);
    h.ws.drop();
    assert.equal(h.client.status, "closed");
    assert.equal(h.sockets.length, 3);
    await assert.rejects(promise, { code: "CLIENT_CLOSED" });
    assert.equal(h.client.roomId, null, "a room never joined is forgotten");
  });

  test("after giving up, connect() re-joins the room that was joined", async () => {
    const h = makeClient({ clientOptions: { reconnect: { maxAttempts: 1 } } });
    await joined(h, { sessionToken: "secret-1" });
    h.ws.drop();
    h.timers.advance(60000);
    h.ws.drop();
    assert.equal(h.client.status, "closed");
    assert.equal(h.client.roomId, ROOM);
    h.client.connect();
    h.ws.open();
    assert.equal(h.ws.last.type, "JOIN_ROOM");
    assert.equal(h.ws.last.payload.sessionToken, "secret-1");
  });
});
