// Requests and their answers: join, update, ping, errors; plus URLs, events and stats.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  KasagiError,
  connect,
  defaultUrl,
  redactMessage,
  resolveUrl,
  utf8Length,
  withToken,
} from "../client.js";
import { ROOM, delta, fakeWebSocketClass, fullState, joined, makeClient } from "./fakes.mjs";

describe("URLs", () => {
  test("defaultUrl follows the page's scheme and host", () => {
    const secure = { protocol: "https:", host: "kasagi.example:8443" };
    assert.equal(defaultUrl(secure), "wss://kasagi.example:8443/sync");
    const plain = { protocol: "http:", host: "localhost:8080" };
    assert.equal(defaultUrl(plain), "ws://localhost:8080/sync");
    assert.throws(() => defaultUrl(undefined), TypeError);
  });

  test("resolveUrl accepts ws(s) URLs, and paths or http(s) URLs against the page", () => {
    const page = { href: "https://kasagi.example/rooms/demo/" };
    assert.equal(resolveUrl("ws://h:8080/sync", undefined), "ws://h:8080/sync");
    assert.equal(resolveUrl("/sync", page), "wss://kasagi.example/sync");
    assert.equal(resolveUrl("http://h/sync", page), "ws://h/sync");
    assert.throws(() => resolveUrl("/sync", undefined), TypeError);
    assert.throws(() => resolveUrl("ftp://h/sync", undefined), TypeError);
  });

  test("a token goes in the query string", () => {
    assert.equal(withToken("ws://h/sync", "k 1"), "ws://h/sync?token=k+1");
    assert.equal(withToken("ws://h/sync?room=r", "abc"), "ws://h/sync?room=r&token=abc");
    assert.equal(withToken("ws://h/sync", null), "ws://h/sync");
  });

  test("connect(url, {token}) opens the socket with it", () => {
    const { FakeWebSocket, sockets } = fakeWebSocketClass();
    const client = connect("ws://h:8080/sync", { token: "abc", WebSocket: FakeWebSocket });
    assert.equal(sockets[0].url, "ws://h:8080/sync?token=abc");
    assert.equal(client.status, "connecting");
    client.close();
  });
});

describe("join", () => {
  test("sends JOIN_ROOM once open and resolves on the FULL_STATE", async () => {
    const h = makeClient();
    const promise = h.client.join(ROOM, { playerName: "Ann", color: "#FF0000" });
    assert.equal(h.ws.frames.length, 0, "waits for the socket");
    h.ws.open();
    const join = h.ws.last;
    assert.equal(join.type, "JOIN_ROOM");
    assert.equal(join.roomId, ROOM);
    assert.deepEqual(join.payload, { playerName: "Ann", color: "#FF0000" });
    assert.equal(typeof join.requestId, "string");
    h.ws.receive(fullState({ requestId: join.requestId, version: 42 }));
    const result = await promise;
    assert.deepEqual(result, {
      roomId: ROOM,
      playerId: "p-1",
      version: 42,
      state: { players: { "p-1": { playerName: "Ann" } }, entities: {} },
      resumed: false,
    });
    assert.equal(h.client.roomId, ROOM);
    assert.equal(h.client.synced, true);
    const self = h.named("joined")[0];
    assert.deepEqual(self, {
      roomId: ROOM,
      playerId: "p-1",
      state: { playerName: "Ann" },
      self: true,
      resumed: false,
    });
  });

  test("rejects on the ERROR carrying its requestId, not on others", async () => {
    const h = makeClient();
    h.ws.open();
    const promise = h.client.join(ROOM, {});
    const join = h.ws.last;
    let settled = false;
    promise.then(
      () => (settled = true),
      () => (settled = true),
    );
    h.ws.receive({
      type: "ERROR",
      requestId: "someone-else",
      payload: { code: "RATE_LIMITED", message: "x" },
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false);
    h.ws.receive({
      type: "ERROR",
      roomId: ROOM,
      requestId: join.requestId,
      payload: { code: "ROOM_FULL", message: "the room is full" },
    });
    await assert.rejects(promise, (error) => {
      assert.ok(error instanceof KasagiError);
      assert.equal(error.code, "ROOM_FULL");
      assert.equal(error.detail, "the room is full");
      assert.equal(error.requestId, join.requestId);
      return true;
    });
    assert.equal(h.client.roomId, null, "free to join again");
    assert.deepEqual(
      h.named("error").map((e) => e.code),
      ["RATE_LIMITED", "ROOM_FULL"],
    );
  });

  test("refuses a second room and bad room ids locally", async () => {
    const h = makeClient();
    await joined(h);
    await assert.rejects(h.client.join("other", {}), { code: "ALREADY_IN_ROOM" });
    await assert.rejects(h.client.join("bad room!", {}), TypeError);
  });

  test("spectate joins without a player or token", async () => {
    const h = makeClient();
    const promise = h.client.join(ROOM, { spectate: true });
    h.ws.open();
    const join = h.ws.last;
    assert.deepEqual(join.payload, { spectate: true });
    h.ws.receive(fullState({ requestId: join.requestId, playerId: null, sessionToken: null }));
    const result = await promise;
    assert.equal(result.playerId, null);
    assert.equal(h.storage.getItem(`kasagi:sessionToken:${ROOM}`), null);
    assert.throws(() => h.client.update({ x: 1 }), { code: "FORBIDDEN" });
  });

  test("leave() before the answer rejects the join", async () => {
    const h = makeClient();
    const promise = h.client.join(ROOM, {});
    h.client.leave();
    await assert.rejects(promise, { code: "CLIENT_ABORTED" });
  });
});

describe("update", () => {
  test("STATE_UPDATE envelopes for the player and for entities", async () => {
    const h = makeClient();
    await joined(h, { version: 41 });
    const id = h.client.update({ x: 150, y: 200 });
    assert.deepEqual(h.ws.last, {
      type: "STATE_UPDATE",
      roomId: ROOM,
      payload: { x: 150, y: 200 },
      version: 41,
      requestId: id,
    });
    h.client.updateEntity("doc-1", { text: "hi" }, { expectedVersion: 41 });
    assert.deepEqual(h.ws.last, {
      type: "STATE_UPDATE",
      roomId: ROOM,
      payload: { text: "hi" },
      version: 41,
      requestId: h.ws.last.requestId,
      entityId: "doc-1",
      expectedVersion: 41,
    });
  });

  test("the mirror changes only with the server's confirmation", async () => {
    const h = makeClient();
    await joined(h, { version: 41 });
    const before = h.client.state;
    h.client.update({ x: 9999 });
    assert.equal(h.client.state, before);
    h.ws.receive(delta(41, 42, { players: { "p-1": { x: 1000 } } })); // clamped by the server
    assert.equal(h.client.state.players["p-1"].x, 1000);
  });

  test("errors about an update carry its requestId", async () => {
    const h = makeClient();
    await joined(h);
    const id = h.client.update({ x: -1 });
    h.ws.receive({
      type: "ERROR",
      roomId: ROOM,
      requestId: id,
      payload: { code: "INVALID_UPDATE", message: "x must be a number between 0 and 1000" },
    });
    const error = h.named("error").at(-1);
    assert.equal(error.code, "INVALID_UPDATE");
    assert.equal(error.requestId, id);
    assert.equal(h.client.roomId, ROOM, "an ERROR changes nothing");
  });

  test("argument checks", async () => {
    const h = makeClient();
    assert.throws(() => h.client.update({ x: 1 }), { code: "NOT_IN_ROOM" });
    await joined(h);
    assert.throws(() => h.client.update([1]), TypeError);
    assert.throws(() => h.client.updateEntity("no spaces", {}), TypeError);
  });
});

describe("ping", () => {
  test("resolves the round trip from the PONG with its requestId", async () => {
    const h = makeClient();
    h.ws.open();
    const promise = h.client.ping();
    const ping = h.ws.last;
    assert.equal(ping.type, "PING");
    h.timers.advance(37);
    h.ws.receive({ type: "PONG", requestId: "nope", payload: { serverTime: 1 } });
    h.ws.receive({ type: "PONG", requestId: ping.requestId, payload: { serverTime: 1 } });
    assert.equal(await promise, 37);
    assert.equal(h.client.stats.lastRtt, 37);
  });

  test("rejects when the socket is closed or drops", async () => {
    const h = makeClient();
    await assert.rejects(h.client.ping(), { code: "CLIENT_NOT_CONNECTED" });
    h.ws.open();
    const promise = h.client.ping();
    h.ws.drop();
    await assert.rejects(promise, { code: "CLIENT_CLOSED" });
  });
});

describe("events and stats", () => {
  test("message events log both directions with the token redacted", async () => {
    const h = makeClient();
    await joined(h, { sessionToken: "secret-1" });
    h.client.leave();
    await joined(h, { sessionToken: "secret-2" }); // this join carries no token (left)
    const log = h.named("message");
    assert.deepEqual(
      log.map((m) => `${m.direction} ${m.message.type}`),
      ["out JOIN_ROOM", "in FULL_STATE", "out LEAVE_ROOM", "out JOIN_ROOM", "in FULL_STATE"],
    );
    assert.ok(!JSON.stringify(log).includes("secret"));
    assert.equal(log[1].message.payload.sessionToken, "<redacted>");
    assert.equal(redactMessage({ type: "PING" }).type, "PING");
  });

  test("a throwing listener does not break the client", async () => {
    const h = makeClient();
    const original = console.error;
    const reported = [];
    console.error = (error) => reported.push(error);
    try {
      h.client.on("state", () => {
        throw new Error("boom");
      });
      await joined(h, { version: 1 });
      h.ws.receive(delta(1, 2, { entities: { a: { n: 1 } } }));
    } finally {
      console.error = original;
    }
    assert.equal(h.client.version, 2);
    assert.equal(reported.length, 2);
  });

  test("off() and the unsubscribe function remove listeners", async () => {
    const h = makeClient();
    const seen = [];
    const fn = (d) => seen.push(d.version);
    h.client.on("state", fn);
    const off = h.client.on("state", (d) => seen.push(-d.version));
    off();
    await joined(h, { version: 3 });
    h.client.off("state", fn);
    h.ws.receive(delta(3, 4, {}));
    assert.deepEqual(seen, [3]);
  });

  test("bad frames are reported, not thrown", () => {
    const h = makeClient();
    h.ws.open();
    h.ws.receive("not json");
    h.ws.receive("[1,2]");
    assert.deepEqual(
      h.named("error").map((e) => e.code),
      ["CLIENT_BAD_FRAME", "CLIENT_BAD_FRAME"],
    );
  });

  test("counts messages, bytes per second, delta vs mirror size", async () => {
    const h = makeClient();
    await joined(h, { version: 1 });
    const frame = JSON.stringify(delta(1, 2, { entities: { note: { text: "héllo" } } }));
    h.ws.receive(frame);
    const stats = h.client.stats;
    assert.equal(stats.messagesReceived, 2);
    assert.equal(stats.messagesSent, 1);
    assert.equal(stats.lastDeltaBytes, utf8Length(frame));
    assert.equal(stats.lastDeltaBytes, Buffer.byteLength(frame));
    assert.equal(stats.stateBytes, Buffer.byteLength(JSON.stringify(h.client.state)));
    assert.equal(stats.bytesPerSecond, stats.bytesReceived);
    h.timers.advance(1001);
    assert.equal(stats.bytesPerSecond, 0);
    const snapshot = JSON.parse(JSON.stringify(stats));
    assert.equal(snapshot.messagesReceived, 2);
    assert.equal(snapshot.gaps, 0);
    assert.equal(typeof snapshot.stateBytes, "number");
  });

  test("utf8Length matches the encoder", () => {
    for (const text of ["", "abc", "é", "€", "😀", "a😀b", "\ud800x"]) {
      assert.equal(utf8Length(text), new TextEncoder().encode(text).length, text);
    }
  });
});
