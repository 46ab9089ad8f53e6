/**
 * Test doubles of the browser APIs the client uses (WebSocket, timers,
 * clock) — never of the server: the tests script what a server following
 * PROTOCOL.md would send, and check what the client sends back.
 */

import { KasagiClient, memoryStorage } from "../client.js";

/** A WebSocket class whose instances the test opens, feeds and drops by hand. */
export function fakeWebSocketClass() {
  const sockets = [];
  class FakeWebSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;

    constructor(url) {
      this.url = url;
      this.readyState = 0;
      /** raw frames the client sent */
      this.frames = [];
      this.closedWith = null;
      sockets.push(this);
    }

    send(data) {
      if (this.readyState !== 1) {
        throw new Error("InvalidStateError: socket not open");
      }
      this.frames.push(data);
    }

    close(code = 1000, reason = "") {
      if (this.readyState >= 2) {
        return;
      }
      this.closedWith = { code, reason };
      this.readyState = 3;
      this.onclose?.({ code, reason, wasClean: true });
    }

    // ---- driven by the test ----

    /** the parsed messages the client sent */
    get sent() {
      return this.frames.map((frame) => JSON.parse(frame));
    }

    /** the last message the client sent */
    get last() {
      return this.sent.at(-1);
    }

    open() {
      this.readyState = 1;
      this.onopen?.({});
    }

    /** deliver a server message (object → JSON text frame, string as is) */
    receive(message) {
      const data = typeof message === "string" ? message : JSON.stringify(message);
      this.onmessage?.({ data });
    }

    /** the handshake fails the way Node 20 reports it: an error event, no close */
    fail() {
      this.onerror?.({ type: "error" });
    }

    /** the connection breaks (no close handshake) */
    drop(code = 1006) {
      this.readyState = 3;
      this.onclose?.({ code, reason: "", wasClean: false });
    }
  }
  return { FakeWebSocket, sockets };
}

/** setTimeout/clearTimeout and a clock that only move when the test says so. */
export function fakeTimers() {
  let now = 0;
  let nextId = 1;
  const pending = new Map();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = nextId++;
      pending.set(id, { at: now + Math.max(0, ms), fn });
      return id;
    },
    clearTimeout(id) {
      pending.delete(id);
    },
    /** delays of the timers waiting, in ms from now */
    get delays() {
      return [...pending.values()].map((timer) => timer.at - now);
    },
    /** move the clock forward, running every timer that falls due, in order */
    advance(ms) {
      const until = now + ms;
      for (;;) {
        let due = null;
        for (const [id, timer] of pending) {
          if (timer.at <= until && (due === null || timer.at < due[1].at)) {
            due = [id, timer];
          }
        }
        if (due === null) {
          break;
        }
        pending.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = until;
    },
  };
}

/**
 * A connected client on fake socket, timers and storage, plus the helpers
 * to play the server's side.
 */
export function makeClient(options = {}) {
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const timers = fakeTimers();
  const storage = options.storage ?? memoryStorage();
  const client = new KasagiClient(options.url ?? "ws://kasagi.test/sync", {
    WebSocket: FakeWebSocket,
    storage,
    timers,
    now: timers.now,
    random: () => 0.5,
    ...options.clientOptions,
  });
  const events = [];
  for (const name of ["status", "message", "state", "delta", "joined", "left", "error"]) {
    client.on(name, (detail) => events.push({ name, detail }));
  }
  client.connect();
  return {
    client,
    sockets,
    timers,
    storage,
    events,
    /** the socket in use */
    get ws() {
      return sockets.at(-1);
    },
    named(name) {
      return events.filter((event) => event.name === name).map((event) => event.detail);
    },
  };
}

export const ROOM = "game-lobby-1";

/** A FULL_STATE as the server sends it. */
export function fullState({
  roomId = ROOM,
  version = 10,
  playerId = "p-1",
  sessionToken = "tok-1",
  resumed = false,
  state = { players: { [playerId]: { playerName: "Ann" } }, entities: {} },
  requestId,
  epoch,
} = {}) {
  const message = {
    type: "FULL_STATE",
    roomId,
    version,
    timestamp: 1764172800000,
    payload: { playerId, sessionToken, resumed, state },
  };
  if (requestId !== undefined) {
    message.requestId = requestId;
  }
  if (epoch !== undefined) {
    message.payload.epoch = epoch; // 1.1 (§14); a 1.0 server sends none
  }
  return message;
}

/** A RESUMED (§14) as the server sends it: the client keeps its state at `version`. */
export function resumed({
  roomId = ROOM,
  version = 10,
  playerId = "p-1",
  sessionToken = "tok-1",
  epoch = "e-1",
  requestId,
} = {}) {
  const message = {
    type: "RESUMED",
    roomId,
    version,
    timestamp: 1764172800000,
    payload: { playerId, sessionToken, resumed: true, epoch },
  };
  if (requestId !== undefined) {
    message.requestId = requestId;
  }
  return message;
}

/** A DELTA_UPDATE from baseVersion to version. */
export function delta(baseVersion, version, payload, roomId = ROOM) {
  return { type: "DELTA_UPDATE", roomId, version, baseVersion, timestamp: 1, payload };
}

/** Open the socket, join, answer with a FULL_STATE; resolves the join result. */
export async function joined(harness, fullStateOptions = {}, fields = { playerName: "Ann" }) {
  const promise = harness.client.join(fullStateOptions.roomId ?? ROOM, fields);
  if (harness.ws.readyState !== 1) {
    harness.ws.open();
  }
  const join = harness.ws.last;
  harness.ws.receive(fullState({ requestId: join.requestId, ...fullStateOptions }));
  return promise;
}
