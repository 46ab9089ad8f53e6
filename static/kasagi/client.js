/**
 * Browser client of the Kasagi Sync protocol, version 1, plus the events of
 * 1.1 (MESSAGE / EVENT, §11) and recovery by version (RESUMED, §14)
 * (docs/protocol.md; usage in docs/js-client.md).
 *
 * It keeps a read-only mirror of one room's state: a FULL_STATE replaces it,
 * each DELTA_UPDATE / PLAYER_JOINED / PLAYER_LEFT is applied only when its
 * `baseVersion` is the mirror's version (§6), and a gap asks for a RESYNC.
 * It reconnects with backoff and resumes the same player with the session
 * token it keeps per room in `sessionStorage`, naming the version and epoch
 * of the state it still holds: a RESUMED answer keeps that state and the
 * missed changes follow, a FULL_STATE replaces it.
 *
 * The mirror is never changed by the client's own writes: an update shows up
 * only when the server confirms it with a DELTA_UPDATE (the server may clamp
 * or drop fields). The WebSocket constructor, storage, timers, clock and
 * random source are all injectable, so the whole state machine runs under
 * Node's test runner without a browser or a server. No dependencies.
 *
 * @module kasagi/client
 */

import { Decoder as Bin1Decoder, Encoder as Bin1Encoder, SUBPROTOCOL as BIN1 } from "./bin1.js";
import { applyMergePatch, composeMergePatches, isPlainObject } from "./merge-patch.js";

export { applyMergePatch, composeMergePatches, isPlainObject } from "./merge-patch.js";

/** `[A-Za-z0-9_.-]{1,64}`: the shape of a roomId and of an entityId (§2, §5). */
export const ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** `[A-Za-z0-9_.:-]{1,64}`: the shape of a MESSAGE kind (§11). */
export const KIND_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Join errors after which an automatic re-join is tried again rather than given up. */
const TRANSIENT_CODES = new Set(["RATE_LIMITED", "INTERNAL"]);

/**
 * Bytes as standard padded base64 (the JSON form of §16's binary fields).
 *
 * @param {Uint8Array} bytes
 */
export function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

/**
 * A binary field as received: base64 (JSON) or bytes (bin1), as a Uint8Array.
 *
 * @param {unknown} value
 * @returns {Uint8Array | null}
 */
export function fromBinary(value) {
  if (value instanceof Uint8Array) {
    return value;
  }
  if (value instanceof ArrayBuffer) {
    return new Uint8Array(value);
  }
  if (typeof value !== "string") {
    return null;
  }
  try {
    return Uint8Array.from(atob(value), (char) => char.charCodeAt(0));
  } catch {
    return null;
  }
}

const WS_OPEN = 1;
const REDACTED = "<redacted>";
const RESYNC_RETRY_MS = 1000;

/**
 * @typedef {import("./merge-patch.js").JsonValue} JsonValue
 * @typedef {import("./merge-patch.js").JsonObject} JsonObject
 *
 * @typedef {object} Envelope a protocol message (§2)
 * @property {string} type
 * @property {string} [roomId]
 * @property {JsonObject} [payload]
 * @property {number} [timestamp]
 * @property {number} [version]
 * @property {number} [baseVersion]
 * @property {string | number} [requestId]
 * @property {string} [entityId]
 * @property {number} [expectedVersion]
 *
 * @typedef {{getItem(key: string): string | null,
 *            setItem(key: string, value: string): void,
 *            removeItem(key: string): void}} TokenStorage
 *   the subset of the Web Storage API the client uses
 *
 * @typedef {object} ReconnectOptions
 * @property {number} [baseMs=500] first delay
 * @property {number} [maxMs=15000] cap of the exponential growth
 * @property {number} [jitter=0.5] fraction of the delay taken off at random (0..1)
 * @property {number} [maxAttempts=Infinity] consecutive failures before giving up
 *
 * @typedef {object} ClientOptions
 * @property {string} [token] REST API token, sent as `?token=` (§7); browsers
 *   normally rely on the Django session cookie instead
 * @property {any} [WebSocket] WebSocket constructor (default: the global one)
 * @property {TokenStorage} [storage] where session tokens live (default:
 *   `sessionStorage`, or memory when that is unavailable)
 * @property {string} [storagePrefix="kasagi:sessionToken:"] storage key prefix, + roomId
 * @property {ReconnectOptions | false} [reconnect] backoff settings, or false to never reconnect
 * @property {number} [maxOutbox=100] updates kept while not in the room; oldest dropped beyond
 * @property {{setTimeout: Function, clearTimeout: Function}} [timers]
 * @property {() => number} [now] monotonic clock in ms (RTT, bytes per second)
 * @property {() => number} [random] uniform in [0, 1) (backoff jitter)
 * @property {"auto" | "bin1" | "json"} [encoding="auto"] "auto" and "bin1" offer the
 *   compact codec `kasagi.bin1` (docs/protocol.md) and use it when the server accepts
 *   it, JSON text frames otherwise; "json" offers nothing
 */

/* ------------------------------------------------------------------ */
/* Pure helpers (exported for the tests and for other tools)           */
/* ------------------------------------------------------------------ */

/**
 * An error with a code: either an ERROR frame from the server (§8 codes), or
 * a client-side failure (codes starting with `CLIENT_`).
 */
export class KasagiError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{requestId?: string | number | null, roomId?: string | null,
   *          payload?: JsonObject}} [details]
   */
  constructor(code, message, { requestId = null, roomId = null, payload = {} } = {}) {
    super(`${code}: ${message}`);
    this.name = "KasagiError";
    this.code = code;
    this.detail = message;
    this.requestId = requestId;
    this.roomId = roomId;
    this.payload = payload;
  }

  /**
   * @param {Envelope} msg an ERROR frame
   * @returns {KasagiError}
   */
  static fromMessage(msg) {
    const payload = isPlainObject(msg.payload) ? msg.payload : {};
    return new KasagiError(String(payload.code ?? "INTERNAL"), String(payload.message ?? ""), {
      requestId: msg.requestId ?? null,
      roomId: msg.roomId ?? null,
      payload,
    });
  }
}

/**
 * The default endpoint for a page: `ws(s)://<host>/sync` of the page's own
 * origin (wss when the page is https).
 *
 * @param {{protocol: string, host: string}} [loc] defaults to `location`
 * @param {string} [path="/sync"]
 * @returns {string}
 */
export function defaultUrl(loc = globalThis.location, path = "/sync") {
  if (!loc) {
    throw new TypeError("defaultUrl() needs a location outside a browser");
  }
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}${path}`;
}

/**
 * An absolute ws(s) URL from what the caller gave: a ws:// or wss:// URL is
 * kept; a path ("/sync") or an http(s) URL is resolved against the page's
 * location, http becoming ws and https wss.
 *
 * @param {string} url
 * @param {{href: string} | undefined} [loc] defaults to `location`
 * @returns {string}
 */
export function resolveUrl(url, loc = globalThis.location) {
  let parsed;
  try {
    parsed = loc ? new URL(url, loc.href) : new URL(url);
  } catch {
    throw new TypeError(`not a WebSocket URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol === "http:" || parsed.protocol === "https:") {
    parsed.protocol = parsed.protocol === "https:" ? "wss:" : "ws:";
  }
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new TypeError(`not a WebSocket URL: ${JSON.stringify(url)}`);
  }
  return parsed.toString();
}

/**
 * Add `token=<key>` to a WebSocket URL (§7); unchanged without a token.
 *
 * @param {string} url
 * @param {string | null | undefined} token
 * @returns {string}
 */
export function withToken(url, token) {
  if (!token) {
    return url;
  }
  const parsed = new URL(url);
  parsed.searchParams.set("token", token);
  return parsed.toString();
}

/**
 * Where a state-changing message stands against the mirror's version (§6).
 *
 * - `"apply"`: its baseVersion is the current version: apply it.
 * - `"stale"`: its version is not newer than the current one: ignore it.
 * - `"gap"`: anything else (a missed change, an overlap, a malformed
 *   version): the mirror cannot follow, ask for a RESYNC.
 *
 * @param {number} currentVersion
 * @param {Envelope} msg
 * @returns {"apply" | "stale" | "gap"}
 */
export function checkChain(currentVersion, msg) {
  const { version, baseVersion } = msg;
  if (!Number.isInteger(version) || !Number.isInteger(baseVersion) || version <= baseVersion) {
    return Number.isInteger(version) && version <= currentVersion ? "stale" : "gap";
  }
  if (version <= currentVersion) {
    return "stale";
  }
  return baseVersion === currentVersion ? "apply" : "gap";
}

/**
 * The room state after one state-changing message (§5). Pure: the old state
 * is not modified and untouched branches are shared.
 *
 * @param {JsonObject} state
 * @param {Envelope} msg a DELTA_UPDATE, PLAYER_JOINED or PLAYER_LEFT
 * @returns {JsonObject}
 */
export function applyChange(state, msg) {
  const payload = isPlainObject(msg.payload) ? msg.payload : {};
  switch (msg.type) {
    case "DELTA_UPDATE":
      return /** @type {JsonObject} */ (applyMergePatch(state, payload));
    case "PLAYER_JOINED": {
      const id = String(payload.playerId);
      const player = isPlainObject(payload.state) ? payload.state : {};
      const cleared = applyMergePatch(state, { players: { [id]: null } });
      return /** @type {JsonObject} */ (applyMergePatch(cleared, { players: { [id]: player } }));
    }
    case "PLAYER_LEFT":
      return /** @type {JsonObject} */ (
        applyMergePatch(state, { players: { [String(payload.playerId)]: null } })
      );
    default:
      throw new TypeError(`not a state-changing message: ${msg.type}`);
  }
}

/**
 * Delay before reconnect attempt number `attempt` (0 for the first):
 * exponential from `baseMs`, capped at `maxMs`, minus a random share of up
 * to `jitter` so that clients dropped together do not return together.
 *
 * @param {number} attempt
 * @param {ReconnectOptions} [options]
 * @param {() => number} [random]
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const { baseMs = 500, maxMs = 15000, jitter = 0.5 } = options;
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(ceiling * (1 - jitter * random()));
}

/**
 * Bytes of a string once UTF-8 encoded, without allocating the encoding.
 *
 * @param {string} text
 * @returns {number}
 */
export function utf8Length(text) {
  let bytes = 0;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 0x80) {
      bytes += 1;
    } else if (code < 0x800) {
      bytes += 2;
    } else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i += 1;
      } else {
        bytes += 3;
      }
    } else {
      bytes += 3;
    }
  }
  return bytes;
}

/**
 * A copy of a message safe to show in a log: the session token (a secret,
 * §6) of JOIN_ROOM and FULL_STATE payloads is replaced by "<redacted>".
 *
 * @param {Envelope} msg
 * @returns {Envelope}
 */
export function redactMessage(msg) {
  if (!isPlainObject(msg.payload) || !("sessionToken" in msg.payload)) {
    return msg;
  }
  if (msg.payload.sessionToken === null) {
    return msg;
  }
  return { ...msg, payload: { ...msg.payload, sessionToken: REDACTED } };
}

/**
 * A Web Storage look-alike in memory, used where `sessionStorage` is absent
 * or refused (Node, sandboxed iframes, some private modes).
 *
 * @returns {TokenStorage}
 */
export function memoryStorage() {
  const items = new Map();
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => void items.set(key, String(value)),
    removeItem: (key) => void items.delete(key),
  };
}

/**
 * `sessionStorage` when it works, else memory storage.
 *
 * @returns {TokenStorage}
 */
export function defaultStorage() {
  try {
    const storage = globalThis.sessionStorage;
    const probe = "kasagi:probe";
    storage.setItem(probe, "1");
    storage.removeItem(probe);
    return storage;
  } catch {
    return memoryStorage();
  }
}

function defaultNow() {
  return globalThis.performance ? globalThis.performance.now() : Date.now();
}

function reportListenerError(error) {
  if (typeof globalThis.reportError === "function") {
    globalThis.reportError(error);
  } else {
    console.error(error);
  }
}

/* ------------------------------------------------------------------ */
/* Statistics for the demo's side panel                                */
/* ------------------------------------------------------------------ */

/** Counters of one client; `toJSON()` gives a plain snapshot. */
export class ClientStats {
  /**
   * @param {() => number} now
   * @param {() => JsonValue} getState
   */
  constructor(now, getState) {
    this.#now = now;
    this.#getState = getState;
    this.messagesReceived = 0;
    this.messagesSent = 0;
    this.bytesReceived = 0;
    this.bytesSent = 0;
    /** the codec of the current socket: "json" or "bin1" */
    this.codec = "json";
    /** what the frames received would have weighed as JSON (= bytesReceived on JSON) */
    this.jsonBytesReceived = 0;
    /** bytes of the last DELTA_UPDATE frame received (0 before the first) */
    this.lastDeltaBytes = 0;
    /** round trip of the last answered ping(), in ms (null before the first) */
    this.lastRtt = null;
    /** version gaps seen (each one sent a RESYNC) */
    this.gaps = 0;
    /** RESYNC messages sent (gaps, resync() calls, retries) */
    this.resyncs = 0;
    /** state-changing messages ignored because they were not newer than the mirror */
    this.staleIgnored = 0;
    /** sockets opened after a drop */
    this.reconnects = 0;
    /** queued updates dropped because the outbox was full */
    this.droppedUpdates = 0;
    /** EVENT messages (§11) received for the room */
    this.events = 0;
    /** resumes answered RESUMED (§14): the state was kept */
    this.recoveries = 0;
    /**
     * The last recovery (§14), or null: `changes` versions caught up in `frames`
     * frames, `bytes` received for it (the RESUMED and those frames) against
     * `fullBytes`, the JSON size of the state a FULL_STATE would have carried.
     * `done` turns true once the server has sent every missed change.
     * @type {null | {sinceVersion: number, version: number, changes: number, frames: number,
     *   bytes: number, fullBytes: number, done: boolean}}
     */
    this.lastRecovery = null;
    /** @type {[number, number][]} [time, bytes] of the last second's frames */
    this.#window = [];
    this.#sizedState = undefined;
    this.#sizedBytes = 0;
  }

  #now;
  #getState;
  #window;
  #sizedState;
  #sizedBytes;

  /**
   * Count a received frame.
   *
   * @param {number} bytes
   */
  recordReceived(bytes, jsonBytes = bytes) {
    this.messagesReceived += 1;
    this.bytesReceived += bytes;
    this.jsonBytesReceived += jsonBytes;
    this.#window.push([this.#now(), bytes, jsonBytes]);
    this.#prune();
  }

  /**
   * Count a sent frame.
   *
   * @param {number} bytes
   */
  recordSent(bytes) {
    this.messagesSent += 1;
    this.bytesSent += bytes;
  }

  /** Bytes received during the last second. */
  get bytesPerSecond() {
    this.#prune();
    return this.#window.reduce((sum, [, bytes]) => sum + bytes, 0);
  }

  /** What the last second's frames would have weighed as JSON text. */
  get jsonBytesPerSecond() {
    this.#prune();
    return this.#window.reduce((sum, [, , jsonBytes]) => sum + jsonBytes, 0);
  }

  /**
   * JSON length (UTF-8 bytes) of the mirror: what a FULL_STATE of it weighs,
   * to compare with `lastDeltaBytes`. Computed on read, cached per mirror.
   */
  get stateBytes() {
    const state = this.#getState();
    if (state !== this.#sizedState) {
      this.#sizedState = state;
      this.#sizedBytes = state == null ? 0 : utf8Length(JSON.stringify(state));
    }
    return this.#sizedBytes;
  }

  /** A plain snapshot of every counter, getters included. */
  toJSON() {
    return {
      messagesReceived: this.messagesReceived,
      messagesSent: this.messagesSent,
      bytesReceived: this.bytesReceived,
      bytesSent: this.bytesSent,
      bytesPerSecond: this.bytesPerSecond,
      codec: this.codec,
      jsonBytesReceived: this.jsonBytesReceived,
      jsonBytesPerSecond: this.jsonBytesPerSecond,
      lastDeltaBytes: this.lastDeltaBytes,
      stateBytes: this.stateBytes,
      lastRtt: this.lastRtt,
      gaps: this.gaps,
      resyncs: this.resyncs,
      staleIgnored: this.staleIgnored,
      reconnects: this.reconnects,
      droppedUpdates: this.droppedUpdates,
      events: this.events,
      recoveries: this.recoveries,
      lastRecovery: this.lastRecovery && { ...this.lastRecovery },
    };
  }

  #prune() {
    const horizon = this.#now() - 1000;
    let drop = 0;
    while (drop < this.#window.length && this.#window[drop][0] <= horizon) {
      drop += 1;
    }
    if (drop > 0) {
      this.#window.splice(0, drop);
    }
  }
}

/* ------------------------------------------------------------------ */
/* The client                                                          */
/* ------------------------------------------------------------------ */

/**
 * One connection to a Kasagi server, in at most one room at a time.
 *
 * Events (`on(name, fn)`; each listener gets one detail object):
 * `status`, `message`, `state`, `delta`, `joined`, `left`, `event`, `error`,
 * `recovered` (see docs/js-client.md).
 */
export class KasagiClient {
  /**
   * @param {string} [url] endpoint, default `defaultUrl()`
   * @param {ClientOptions} [options]
   */
  constructor(url, options = {}) {
    this.url = url ? resolveUrl(url) : defaultUrl();
    this.#token = options.token ?? null;
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.#storage = options.storage ?? defaultStorage();
    this.#storagePrefix = options.storagePrefix ?? "kasagi:sessionToken:";
    this.#reconnect = options.reconnect === false ? false : { ...(options.reconnect ?? {}) };
    this.#maxOutbox = options.maxOutbox ?? 100;
    const timers = options.timers ?? globalThis;
    this.#setTimeout = (fn, ms) => timers.setTimeout(fn, ms);
    this.#clearTimeout = (id) => timers.clearTimeout(id);
    this.#now = options.now ?? defaultNow;
    this.#random = options.random ?? Math.random;
    this.#encoding = options.encoding ?? "auto";
    this.stats = new ClientStats(this.#now, () => this.#state);
    if (typeof this.#WebSocket !== "function") {
      throw new TypeError("no WebSocket constructor: pass options.WebSocket");
    }
  }

  // configuration
  #token;
  #WebSocket;
  #encoding;
  /** @type {{encoder: Bin1Encoder, decoder: Bin1Decoder} | null} the socket's bin1 tables */
  #bin1 = null;
  #storage;
  #storagePrefix;
  #reconnect;
  #maxOutbox;
  #setTimeout;
  #clearTimeout;
  #now;
  #random;

  // connection
  /** @type {any} */
  #ws = null;
  #status = "closed";
  #wanted = false;
  #attempt = 0;
  #reconnectTimer = null;
  #nextRequest = 0;

  // room
  /**
   * The room this client wants to be in, from join() until leave().
   * `live` is true once the current socket got its FULL_STATE.
   * @type {null | {roomId: string, fields: JsonObject, spectate: boolean,
   *   requestId: string | null, sentOn: any, live: boolean,
   *   pending: null | {resolve: Function, reject: Function}}}
   */
  #room = null;
  /** @type {JsonObject | null} */
  #state = null;
  /** @type {number | null} */
  #version = null;
  /** @type {string | null} */
  #playerId = null;
  #resumed = false;
  /** the room's epoch (§14) of the FULL_STATE the mirror comes from
   * @type {string | null} */
  #epoch = null;
  /** requestId of the PING sent after a RESUMED: its PONG comes after every missed change
   * @type {string | null} */
  #recoveryBarrier = null;
  #memoryTokens = new Map();

  // resync
  #resyncRequestId = null;
  #resyncTimer = null;
  /** @type {{promise: Promise<JsonObject>, resolve: Function, reject: Function} | null} */
  #resyncWaiter = null;

  /** @type {{entityId: string | null, patch: JsonObject, expectedVersion?: number,
   *          requestId: string}[]} */
  #outbox = [];
  /** @type {Map<string, {sentAt: number, resolve: Function, reject: Function}>} */
  #pings = new Map();
  /** @type {Map<string, Set<Function>>} */
  #listeners = new Map();

  /** The room state mirror (read-only; replaced, never mutated), or null. */
  get state() {
    return this.#state;
  }

  /** The room version the mirror is at, or null before the first FULL_STATE. */
  get version() {
    return this.#version;
  }

  /** This client's player in the room (null for a spectator or outside a room). */
  get playerId() {
    return this.#playerId;
  }

  /** The room joined or being joined, or null. */
  get roomId() {
    return this.#room ? this.#room.roomId : null;
  }

  /** True when the last FULL_STATE (or RESUMED) resumed an earlier player. */
  get resumed() {
    return this.#resumed;
  }

  /** The room's epoch (§14) of the state the mirror holds, or null (a 1.0 server). */
  get epoch() {
    return this.#epoch;
  }

  /** `connecting`, `open`, `reconnecting` or `closed`. */
  get status() {
    return this.#status;
  }

  /** True when the mirror follows the server live (in the room, no RESYNC pending). */
  get synced() {
    return Boolean(this.#room && this.#room.live && this.#resyncRequestId === null);
  }

  /* ---------------- events ---------------- */

  /**
   * Listen to an event; returns a function that removes the listener.
   *
   * @param {string} name
   * @param {(detail: any) => void} fn
   * @returns {() => void}
   */
  on(name, fn) {
    if (!this.#listeners.has(name)) {
      this.#listeners.set(name, new Set());
    }
    this.#listeners.get(name).add(fn);
    return () => this.off(name, fn);
  }

  /**
   * @param {string} name
   * @param {(detail: any) => void} fn
   */
  off(name, fn) {
    this.#listeners.get(name)?.delete(fn);
  }

  /**
   * Listen to the next occurrence of an event only.
   *
   * @param {string} name
   * @param {(detail: any) => void} fn
   * @returns {() => void}
   */
  once(name, fn) {
    const off = this.on(name, (detail) => {
      off();
      fn(detail);
    });
    return off;
  }

  #emit(name, detail) {
    for (const fn of [...(this.#listeners.get(name) ?? [])]) {
      try {
        fn(detail);
      } catch (error) {
        reportListenerError(error);
      }
    }
  }

  /* ---------------- connection ---------------- */

  /**
   * Open the socket (and keep it open: reconnect after drops).
   *
   * @returns {this}
   */
  connect() {
    if (this.#wanted) {
      return this;
    }
    this.#wanted = true;
    this.#attempt = 0;
    this.#setStatus("connecting");
    this.#openSocket();
    return this;
  }

  /**
   * Close for good: no reconnect. The room is not left, so the player stays
   * resumable (with its stored token) for the grace period; call leave()
   * first to leave. Pending join/resync/ping promises reject with CLIENT_CLOSED.
   *
   * @param {number} [code=1000]
   * @param {string} [reason]
   */
  close(code = 1000, reason = "client closed") {
    this.#wanted = false;
    this.#cancelTimer("reconnect");
    const ws = this.#ws;
    this.#ws = null;
    this.#socketGone(new KasagiError("CLIENT_CLOSED", "the client was closed"));
    if (this.#room) {
      const error = new KasagiError("CLIENT_CLOSED", "the client was closed");
      this.#room.pending?.reject(error);
      this.#resetRoom(error);
    }
    if (ws) {
      try {
        ws.close(code, reason);
      } catch {
        // already closing
      }
    }
    this.#setStatus("closed");
  }

  #setStatus(status, extra = {}) {
    const previous = this.#status;
    this.#status = status;
    this.#emit("status", { status, previous, ...extra });
  }

  #openSocket() {
    let ws;
    try {
      const url = withToken(this.url, this.#token);
      ws = this.#encoding === "json" ? new this.#WebSocket(url) : new this.#WebSocket(url, [BIN1]);
    } catch (error) {
      const detail = String(error?.message ?? error);
      this.#emit("error", new KasagiError("CLIENT_CONNECT_FAILED", detail));
      this.#scheduleReconnect();
      return;
    }
    this.#ws = ws;
    this.#bin1 = null; // names are per socket: fresh tables once this one opens
    ws.binaryType = "arraybuffer";
    ws.onopen = () => this.#onOpen(ws);
    ws.onmessage = (event) => this.#onFrame(ws, event);
    ws.onclose = (event) => this.#onClose(ws, event);
    ws.onerror = () => this.#onSocketError(ws);
  }

  #onSocketError(ws) {
    // Browsers follow an error with a close event; some runtimes (Node 20's
    // WebSocket) do not when the handshake fails, so a socket that is not
    // open counts as closed now, and its own close event, if any, is ignored.
    if (ws === this.#ws && ws.readyState !== WS_OPEN) {
      this.#onClose(ws, { code: 1006 });
      try {
        ws.close();
      } catch {
        // never opened
      }
    }
  }

  #onOpen(ws) {
    if (ws !== this.#ws) {
      return;
    }
    const bin1 = ws.protocol === BIN1;
    this.#bin1 = bin1 ? { encoder: new Bin1Encoder(), decoder: new Bin1Decoder() } : null;
    this.stats.codec = bin1 ? "bin1" : "json";
    if (!this.#room) {
      this.#attempt = 0;
    }
    this.#setStatus("open");
    if (this.#room) {
      this.#sendJoin();
    }
  }

  #onClose(ws, event) {
    if (ws !== this.#ws) {
      return;
    }
    this.#ws = null;
    this.#socketGone(new KasagiError("CLIENT_CLOSED", "the connection closed"));
    if (!this.#wanted) {
      this.#setStatus("closed", { code: event?.code });
      return;
    }
    this.#scheduleReconnect(event?.code);
  }

  /** Forget everything tied to the socket that just went away. */
  #socketGone(error) {
    if (this.#room) {
      this.#room.live = false;
      this.#room.sentOn = null;
    }
    this.#resyncRequestId = null;
    this.#recoveryBarrier = null;
    this.#cancelTimer("resync");
    for (const ping of this.#pings.values()) {
      ping.reject(error);
    }
    this.#pings.clear();
  }

  #scheduleReconnect(code) {
    const options = this.#reconnect;
    const maxAttempts = options ? (options.maxAttempts ?? Infinity) : 0;
    if (!options || this.#attempt >= maxAttempts) {
      this.#wanted = false;
      const error = new KasagiError("CLIENT_CLOSED", "the connection closed and is not retried");
      this.#resyncWaiter?.reject(error);
      this.#resyncWaiter = null;
      if (this.#room?.pending) {
        // never joined: forget the room; a joined room stays, for connect() to resume
        this.#room.pending.reject(error);
        this.#resetRoom(error);
      }
      this.#setStatus("closed", { code });
      return;
    }
    const delayMs = backoffDelay(this.#attempt, options, this.#random);
    this.#attempt += 1;
    this.#setStatus("reconnecting", { attempt: this.#attempt, delayMs, code });
    this.#reconnectTimer = this.#setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#wanted) {
        this.stats.reconnects += 1;
        this.#openSocket();
      }
    }, delayMs);
  }

  #cancelTimer(which) {
    if (which === "reconnect" && this.#reconnectTimer !== null) {
      this.#clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = null;
    }
    if (which === "resync" && this.#resyncTimer !== null) {
      this.#clearTimeout(this.#resyncTimer);
      this.#resyncTimer = null;
    }
  }

  get #isOpen() {
    return this.#ws !== null && this.#ws.readyState === WS_OPEN;
  }

  #requestId() {
    this.#nextRequest += 1;
    return `c-${this.#nextRequest}`;
  }

  /**
   * @param {Envelope} msg
   * @returns {boolean} false when the socket is not open
   */
  #send(msg) {
    if (!this.#isOpen) {
      return false;
    }
    let bytes;
    if (this.#bin1) {
      const frame = this.#bin1.encoder.encode(msg);
      bytes = frame.length;
      this.#ws.send(frame);
    } else {
      const raw = JSON.stringify(msg);
      bytes = utf8Length(raw);
      this.#ws.send(raw);
    }
    this.stats.recordSent(bytes);
    this.#emit("message", { direction: "out", message: redactMessage(msg), bytes });
    return true;
  }

  /* ---------------- session tokens ---------------- */

  #tokenKey(roomId) {
    return this.#storagePrefix + roomId;
  }

  #loadToken(roomId) {
    try {
      const stored = this.#storage.getItem(this.#tokenKey(roomId));
      if (stored) {
        return stored;
      }
    } catch {
      // storage refused: memory below
    }
    return this.#memoryTokens.get(roomId) ?? null;
  }

  #saveToken(roomId, token) {
    this.#memoryTokens.set(roomId, token);
    try {
      this.#storage.setItem(this.#tokenKey(roomId), token);
    } catch {
      // quota or privacy mode: the memory copy still serves reconnects
    }
  }

  #forgetToken(roomId) {
    this.#memoryTokens.delete(roomId);
    try {
      this.#storage.removeItem(this.#tokenKey(roomId));
    } catch {
      // nothing stored
    }
  }

  /* ---------------- requests ---------------- */

  /**
   * Join a room. The `fields` become the player's initial state; with
   * `{spectate: true}` the client watches without a player. A session token
   * stored for this room is sent along, to resume the same player (§6).
   * Can be called before the socket is open: the join goes out on open.
   *
   * @param {string} roomId
   * @param {JsonObject} [fields]
   * @returns {Promise<{roomId: string, playerId: string | null, version: number,
   *   state: JsonObject, resumed: boolean}>} resolves on FULL_STATE, rejects
   *   with a KasagiError on the ERROR answering it
   */
  join(roomId, fields = {}) {
    if (typeof roomId !== "string" || !ID_PATTERN.test(roomId)) {
      return Promise.reject(new TypeError(`bad roomId ${JSON.stringify(roomId)}`));
    }
    if (!isPlainObject(fields)) {
      return Promise.reject(new TypeError("join fields must be an object"));
    }
    if (this.#room) {
      return Promise.reject(
        new KasagiError("ALREADY_IN_ROOM", `already in room ${this.#room.roomId}; leave first`),
      );
    }
    if (!this.#wanted) {
      return Promise.reject(new KasagiError("CLIENT_CLOSED", "connect() first"));
    }
    const { sessionToken, ...initial } = fields;
    if (typeof sessionToken === "string" && sessionToken) {
      this.#saveToken(roomId, sessionToken); // a token kept elsewhere by the caller
    }
    return new Promise((resolve, reject) => {
      this.#room = {
        roomId,
        fields: initial,
        spectate: initial.spectate === true,
        requestId: null,
        sentOn: null,
        live: false,
        pending: { resolve, reject },
      };
      if (this.#isOpen) {
        this.#sendJoin();
      }
    });
  }

  #sendJoin() {
    const room = this.#room;
    const payload = { ...room.fields };
    const token = room.spectate ? null : this.#loadToken(room.roomId);
    if (token) {
      payload.sessionToken = token;
      if (this.#state !== null && this.#version !== null && this.#epoch !== null) {
        // §14: the state still held; RESUMED keeps it and sends only what changed since
        payload.sinceVersion = this.#version;
        payload.epoch = this.#epoch;
      }
    }
    room.requestId = this.#requestId();
    room.live = false;
    room.sentOn = this.#ws;
    this.#send({ type: "JOIN_ROOM", roomId: room.roomId, payload, requestId: room.requestId });
  }

  /**
   * Leave the room at once (no grace period) and forget its session token.
   * If the socket is down, the server keeps the player for its grace period.
   */
  leave() {
    const room = this.#room;
    if (!room) {
      return;
    }
    if (room.sentOn !== null && room.sentOn === this.#ws) {
      this.#send({ type: "LEAVE_ROOM", roomId: room.roomId, requestId: this.#requestId() });
    }
    room.pending?.reject(new KasagiError("CLIENT_ABORTED", "left before the join completed"));
    this.#forgetToken(room.roomId);
    const playerId = this.#playerId;
    this.#resetRoom();
    this.#emit("left", { roomId: room.roomId, playerId, reason: "left", self: true });
  }

  #resetRoom(error = new KasagiError("CLIENT_ABORTED", "no longer in the room")) {
    this.#room = null;
    this.#state = null;
    this.#version = null;
    this.#playerId = null;
    this.#resumed = false;
    this.#epoch = null;
    this.#recoveryBarrier = null;
    this.#resyncRequestId = null;
    this.#cancelTimer("resync");
    this.#resyncWaiter?.reject(error);
    this.#resyncWaiter = null;
    this.#outbox = [];
  }

  /**
   * Patch this player's own state (a merge patch: `null` deletes a field).
   * While the room is not live (joining, reconnecting) the update waits in
   * an outbox, merged with the other waiting updates, and goes out after the
   * next FULL_STATE.
   *
   * @param {JsonObject} fields
   * @param {{expectedVersion?: number}} [options] compare-and-set (§5)
   * @returns {string} the requestId an ERROR about it would carry
   */
  update(fields, options = {}) {
    return this.#update(null, fields, options);
  }

  /**
   * Patch a shared entity (created if absent; emptied means deleted).
   *
   * @param {string} entityId
   * @param {JsonObject} patch
   * @param {{expectedVersion?: number}} [options] compare-and-set (§5)
   * @returns {string} the requestId an ERROR about it would carry
   */
  updateEntity(entityId, patch, options = {}) {
    if (typeof entityId !== "string" || !ID_PATTERN.test(entityId)) {
      throw new TypeError(`bad entityId ${JSON.stringify(entityId)}`);
    }
    return this.#update(entityId, patch, options);
  }

  #update(entityId, patch, { expectedVersion } = {}) {
    if (!isPlainObject(patch)) {
      throw new TypeError("an update must be an object (a merge patch)");
    }
    if (!this.#room) {
      throw new KasagiError("NOT_IN_ROOM", "join a room first");
    }
    if (this.#room.spectate) {
      throw new KasagiError("FORBIDDEN", "spectators cannot write");
    }
    // a copy, so that the caller may reuse its object while the entry waits
    const entry = {
      entityId,
      patch: JSON.parse(JSON.stringify(patch)),
      requestId: this.#requestId(),
    };
    if (expectedVersion !== undefined) {
      entry.expectedVersion = expectedVersion;
    }
    if (this.#room.live && this.#isOpen) {
      this.#sendUpdate(entry);
    } else {
      this.#enqueue(entry);
    }
    return entry.requestId;
  }

  #sendUpdate(entry) {
    const msg = {
      type: "STATE_UPDATE",
      roomId: this.#room.roomId,
      payload: entry.patch,
      version: this.#version,
      requestId: entry.requestId,
    };
    if (entry.entityId !== null) {
      msg.entityId = entry.entityId;
    }
    if (entry.expectedVersion !== undefined) {
      msg.expectedVersion = entry.expectedVersion;
    }
    this.#send(msg);
  }

  #enqueue(entry) {
    if (entry.expectedVersion === undefined) {
      let last = null;
      for (let i = this.#outbox.length - 1; i >= 0; i -= 1) {
        if (this.#outbox[i].entityId === entry.entityId) {
          last = this.#outbox[i];
          break;
        }
      }
      if (last && last.expectedVersion === undefined) {
        const composed = composeMergePatches(last.patch, entry.patch);
        if (composed !== undefined) {
          last.patch = /** @type {JsonObject} */ (composed);
          last.requestId = entry.requestId;
          return;
        }
      }
    }
    this.#outbox.push(entry);
    while (this.#outbox.length > this.#maxOutbox) {
      this.#outbox.shift();
      this.stats.droppedUpdates += 1;
    }
  }

  #flushOutbox() {
    const waiting = this.#outbox;
    this.#outbox = [];
    for (const entry of waiting) {
      this.#sendUpdate(entry);
    }
  }

  /**
   * Send a MESSAGE (§11) to the room's code. The built-in room types relay
   * it to every other member as an EVENT (their `event` listeners get
   * `{kind, data, from}`, `from` being this client's playerId); this client
   * receives nothing on success, and a refusal comes as an `error` event
   * carrying the returned requestId. Events are not state and are not
   * queued: while the room is not live (joining, reconnecting) this throws.
   *
   * @param {string} kind `[A-Za-z0-9_.:-]{1,64}`
   * @param {JsonValue} [data] any JSON value; left out (null) when undefined
   * @returns {string} the requestId an ERROR about it would carry
   */
  sendMessage(kind, data) {
    if (typeof kind !== "string" || !KIND_PATTERN.test(kind)) {
      throw new TypeError(`bad MESSAGE kind ${JSON.stringify(kind)}`);
    }
    if (!this.#room) {
      throw new KasagiError("NOT_IN_ROOM", "join a room first");
    }
    if (this.#room.spectate) {
      throw new KasagiError("FORBIDDEN", "spectators cannot send messages");
    }
    if (!this.#room.live || !this.#isOpen) {
      throw new KasagiError("CLIENT_NOT_CONNECTED", "not in the room right now (reconnecting)");
    }
    const payload = { kind };
    if (data !== undefined) {
      payload.data = data;
    }
    const requestId = this.#requestId();
    this.#send({ type: "MESSAGE", roomId: this.#room.roomId, payload, requestId });
    return requestId;
  }

  /* ---------------- documents (§16) ---------------- */

  /**
   * DOC_SYNC: send this client's Yjs state vector of a document; the answer
   * comes as a `doc` event of type `sync` (what this client lacks, and the
   * server's vector). Spectators may sync. Returns the requestId, or null when
   * not in the room right now (sync again on the next `joined`).
   *
   * @param {string} docId
   * @param {Uint8Array} stateVector
   * @returns {string | null}
   */
  docSync(docId, stateVector) {
    return this.#sendDoc("DOC_SYNC", { docId, stateVector: this.#binary(stateVector) });
  }

  /**
   * DOC_UPDATE: a Yjs v1 update of a document (the server relays it to the
   * others). Returns the requestId, or null when it could not be sent (not in
   * the room right now, a spectator): the next DOC_SYNC exchange repairs it.
   *
   * @param {string} docId
   * @param {Uint8Array} update
   * @returns {string | null}
   */
  docUpdate(docId, update) {
    if (this.#room?.spectate) {
      return null;
    }
    return this.#sendDoc("DOC_UPDATE", { docId, update: this.#binary(update) });
  }

  /** The room's documents, as the last FULL_STATE listed them (`payload.docs`). */
  get docs() {
    return this.#docs;
  }

  #docs = [];

  #binary(bytes) {
    return this.#bin1 ? bytes : toBase64(bytes);
  }

  #sendDoc(type, payload) {
    if (typeof payload.docId !== "string" || !ID_PATTERN.test(payload.docId)) {
      throw new TypeError(`bad docId ${JSON.stringify(payload.docId)}`);
    }
    if (!this.#room || !this.#room.live || !this.#isOpen) {
      return null;
    }
    const requestId = this.#requestId();
    this.#send({ type, roomId: this.#room.roomId, payload, requestId });
    return requestId;
  }

  /** @param {Envelope} msg */
  #onDoc(msg) {
    const payload = isPlainObject(msg.payload) ? msg.payload : {};
    const update = fromBinary(payload.update);
    if (!this.#room || msg.roomId !== this.#room.roomId || typeof payload.docId !== "string"
        || update === null) {
      return;
    }
    this.#emit("doc", {
      type: msg.type === "DOC_SYNC" ? "sync" : "update",
      docId: payload.docId,
      update,
      stateVector: fromBinary(payload.stateVector),
      from: typeof payload.from === "string" ? payload.from : null,
      requestId: msg.requestId ?? null,
    });
  }

  /**
   * Ask for a fresh FULL_STATE. Resolves with the new mirror.
   *
   * @returns {Promise<JsonObject>}
   */
  resync() {
    if (!this.#room) {
      return Promise.reject(new KasagiError("NOT_IN_ROOM", "join a room first"));
    }
    if (!this.#resyncWaiter) {
      let resolve;
      let reject;
      const promise = new Promise((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#resyncWaiter = { promise, resolve, reject };
    }
    const { promise } = this.#resyncWaiter;
    if (this.#room.live) {
      this.#requestResync();
    }
    // not live: the FULL_STATE answering the (re)join resolves it
    return promise;
  }

  #requestResync() {
    if (this.#resyncRequestId !== null || !this.#room || !this.#room.live) {
      return;
    }
    this.#resyncRequestId = this.#requestId();
    this.stats.resyncs += 1;
    this.#send({ type: "RESYNC", roomId: this.#room.roomId, requestId: this.#resyncRequestId });
  }

  /**
   * Application-level ping (§5). Resolves with the round trip in ms.
   *
   * @returns {Promise<number>}
   */
  ping() {
    if (!this.#isOpen) {
      return Promise.reject(new KasagiError("CLIENT_NOT_CONNECTED", "the socket is not open"));
    }
    const requestId = this.#requestId();
    return new Promise((resolve, reject) => {
      this.#pings.set(requestId, { sentAt: this.#now(), resolve, reject });
      this.#send({ type: "PING", requestId });
    });
  }

  /* ---------------- incoming ---------------- */

  #onFrame(ws, event) {
    if (ws !== this.#ws) {
      return;
    }
    const data = event?.data;
    let msg;
    let bytes;
    if (typeof data !== "string") {
      if (!this.#bin1 || !(data instanceof ArrayBuffer || ArrayBuffer.isView(data))) {
        this.#emit("error", new KasagiError("CLIENT_BAD_FRAME", "unexpected binary frame"));
        return;
      }
      bytes = data.byteLength;
      try {
        msg = this.#bin1.decoder.decode(data);
      } catch {
        msg = undefined;
      }
      // what JSON would have cost: the demo panel shows both
      this.stats.recordReceived(bytes, msg === undefined ? bytes : utf8Length(JSON.stringify(msg)));
    } else {
      bytes = utf8Length(data);
      this.stats.recordReceived(bytes);
      try {
        msg = JSON.parse(data);
      } catch {
        msg = undefined;
      }
    }
    if (!isPlainObject(msg) || typeof msg.type !== "string") {
      this.#emit("error", new KasagiError("CLIENT_BAD_FRAME", "a frame is not a JSON message"));
      return;
    }
    this.#emit("message", { direction: "in", message: redactMessage(msg), bytes });
    const handler = this.#handlers[msg.type];
    if (handler) {
      handler.call(this, msg, bytes);
    }
    // unknown types are ignored (forward compatibility); they still reach `message`
  }

  #handlers = {
    FULL_STATE: this.#onFullState,
    RESUMED: this.#onResumed,
    DELTA_UPDATE: this.#onChange,
    PLAYER_JOINED: this.#onChange,
    PLAYER_LEFT: this.#onChange,
    PONG: this.#onPong,
    ERROR: this.#onError,
    EVENT: this.#onEvent,
    DOC_SYNC: this.#onDoc,
    DOC_UPDATE: this.#onDoc,
  };

  /** @param {Envelope} msg */
  #onFullState(msg) {
    const room = this.#room;
    if (!room || msg.roomId !== room.roomId) {
      return;
    }
    const payload = isPlainObject(msg.payload) ? msg.payload : {};
    const answersJoin = !room.live;
    this.#state = isPlainObject(payload.state) ? payload.state : { players: {}, entities: {} };
    this.#version = Number.isInteger(msg.version) ? msg.version : 0;
    this.#playerId = payload.playerId ?? null;
    this.#resumed = payload.resumed === true;
    this.#epoch = typeof payload.epoch === "string" ? payload.epoch : null;
    this.#docs = Array.isArray(payload.docs) ? payload.docs : [];
    this.#recoveryBarrier = null;
    if (typeof payload.sessionToken === "string" && payload.sessionToken) {
      this.#saveToken(room.roomId, payload.sessionToken);
    }
    room.live = true;
    this.#resyncRequestId = null;
    this.#cancelTimer("resync");
    if (answersJoin) {
      this.#attempt = 0;
    }
    this.#emit("state", this.#stateDetail(msg));
    const snapshot = this.#joinResult();
    if (answersJoin) {
      room.pending?.resolve(snapshot);
      room.pending = null;
      this.#emit("joined", {
        roomId: room.roomId,
        playerId: this.#playerId,
        state: this.#playerId === null ? null : (this.#state.players?.[this.#playerId] ?? null),
        self: true,
        resumed: this.#resumed,
      });
    }
    this.#resyncWaiter?.resolve(this.#state);
    this.#resyncWaiter = null;
    if (this.#room === room && room.live) {
      this.#flushOutbox();
    }
  }

  /**
   * RESUMED (§14): the answer to a rejoin that named the state held. The
   * mirror stays; the missed changes follow as ordinary frames, chained from
   * `version`. A PING sent now is answered after the last of them, which
   * closes `stats.lastRecovery` and emits `recovered`.
   *
   * @param {Envelope} msg
   * @param {number} bytes
   */
  #onResumed(msg, bytes) {
    const room = this.#room;
    if (!room || msg.roomId !== room.roomId || room.live) {
      return; // not ours, or not the answer to our join
    }
    const payload = isPlainObject(msg.payload) ? msg.payload : {};
    if (typeof payload.sessionToken === "string" && payload.sessionToken) {
      this.#saveToken(room.roomId, payload.sessionToken);
    }
    this.#playerId = payload.playerId ?? this.#playerId;
    this.#resumed = true;
    room.live = true;
    this.#attempt = 0;
    this.#resyncRequestId = null;
    this.#cancelTimer("resync");
    const epoch = typeof payload.epoch === "string" ? payload.epoch : null;
    if (this.#state === null || msg.version !== this.#version || epoch !== this.#epoch) {
      // not the state we hold (never from a server following §14): start over
      this.#requestResync();
    } else {
      this.stats.recoveries += 1;
      this.stats.lastRecovery = {
        sinceVersion: this.#version,
        version: this.#version,
        changes: 0,
        frames: 0,
        bytes,
        fullBytes: this.stats.stateBytes,
        done: false,
      };
      this.#recoveryBarrier = this.#requestId();
      this.#send({ type: "PING", roomId: room.roomId, requestId: this.#recoveryBarrier });
    }
    room.pending?.resolve(this.#joinResult());
    room.pending = null;
    this.#emit("joined", {
      roomId: room.roomId,
      playerId: this.#playerId,
      state: this.#playerId === null ? null : (this.#state?.players?.[this.#playerId] ?? null),
      self: true,
      resumed: true,
      recovered: true,
    });
    if (this.#resyncWaiter && this.#resyncRequestId === null) {
      this.#requestResync(); // an explicit resync() asked while away still gets its FULL_STATE
    }
    if (this.#room === room && room.live) {
      this.#flushOutbox();
    }
  }

  #joinResult() {
    return {
      roomId: this.#room.roomId,
      playerId: this.#playerId,
      version: this.#version,
      state: this.#state,
      resumed: this.#resumed,
    };
  }

  #stateDetail(msg) {
    return {
      state: this.#state,
      version: this.#version,
      playerId: this.#playerId,
      type: msg.type,
    };
  }

  /**
   * DELTA_UPDATE, PLAYER_JOINED, PLAYER_LEFT: the version chain of §6.
   *
   * @param {Envelope} msg
   * @param {number} bytes
   */
  #onChange(msg, bytes) {
    const room = this.#room;
    if (!room || msg.roomId !== room.roomId || !room.live || this.#resyncRequestId !== null) {
      return; // not following this room, or a FULL_STATE is on its way
    }
    const verdict = checkChain(this.#version, msg);
    if (verdict === "stale") {
      this.stats.staleIgnored += 1;
      return;
    }
    if (verdict === "gap") {
      this.stats.gaps += 1;
      this.#requestResync();
      return;
    }
    const payload = isPlainObject(msg.payload) ? msg.payload : {};
    const aboutSelf = this.#playerId !== null && payload.playerId === this.#playerId;
    if (msg.type === "PLAYER_LEFT" && aboutSelf) {
      this.#removedFromRoom(String(payload.reason ?? "left"));
      return;
    }
    this.#state = applyChange(this.#state, msg);
    this.#version = msg.version;
    const recovery = this.stats.lastRecovery;
    if (this.#recoveryBarrier !== null && recovery && !recovery.done) {
      recovery.changes = msg.version - recovery.sinceVersion;
      recovery.version = msg.version;
      recovery.frames += 1;
      recovery.bytes += bytes;
    }
    if (msg.type === "DELTA_UPDATE") {
      this.stats.lastDeltaBytes = bytes;
      this.#emit("delta", {
        patch: payload,
        version: msg.version,
        baseVersion: msg.baseVersion,
      });
    } else if (msg.type === "PLAYER_JOINED") {
      this.#emit("joined", {
        roomId: room.roomId,
        playerId: payload.playerId,
        state: isPlainObject(payload.state) ? payload.state : {},
        self: false,
      });
    } else {
      this.#emit("left", {
        roomId: room.roomId,
        playerId: payload.playerId,
        reason: payload.reason,
        self: false,
      });
    }
    this.#emit("state", this.#stateDetail(msg));
  }

  /** The server removed this client's player (kicked, room closed, ...). */
  #removedFromRoom(reason, error = null) {
    const room = this.#room;
    const playerId = this.#playerId;
    if (error) {
      room.pending?.reject(error);
    }
    this.#forgetToken(room.roomId);
    this.#resetRoom();
    this.#emit("left", { roomId: room.roomId, playerId, reason, self: true, error });
  }

  /**
   * An EVENT (§11): handed to the `event` listeners; never touches the mirror.
   *
   * @param {Envelope} msg
   */
  #onEvent(msg) {
    const room = this.#room;
    const payload = isPlainObject(msg.payload) ? msg.payload : {};
    if (!room || msg.roomId !== room.roomId || typeof payload.kind !== "string") {
      return; // a late event of a room we left, or a malformed one
    }
    this.stats.events += 1;
    this.#emit("event", {
      kind: payload.kind,
      data: payload.data === undefined ? null : payload.data,
      from: typeof payload.from === "string" ? payload.from : null,
      roomId: room.roomId,
      timestamp: Number.isInteger(msg.timestamp) ? msg.timestamp : null,
    });
  }

  /** @param {Envelope} msg */
  #onPong(msg) {
    if (this.#recoveryBarrier !== null && String(msg.requestId) === this.#recoveryBarrier) {
      this.#recoveryBarrier = null;
      const recovery = this.stats.lastRecovery;
      if (recovery && !recovery.done) {
        recovery.done = true;
        recovery.fullBytes = this.stats.stateBytes;
        this.#emit("recovered", { roomId: this.#room?.roomId ?? null, ...recovery });
      }
      return;
    }
    const ping = this.#pings.get(String(msg.requestId));
    if (!ping) {
      return;
    }
    this.#pings.delete(String(msg.requestId));
    const rtt = this.#now() - ping.sentAt;
    this.stats.lastRtt = rtt;
    ping.resolve(rtt);
  }

  /** @param {Envelope} msg */
  #onError(msg) {
    const error = KasagiError.fromMessage(msg);
    const requestId = msg.requestId == null ? null : String(msg.requestId);
    const room = this.#room;
    this.#emit("error", error);
    if (requestId !== null && requestId === this.#recoveryBarrier) {
      this.#recoveryBarrier = null; // the count stops here; the chain itself is unaffected
    } else if (requestId !== null && this.#pings.has(requestId)) {
      this.#pings.get(requestId).reject(error);
      this.#pings.delete(requestId);
    } else if (room && requestId !== null && requestId === room.requestId && !room.live) {
      this.#onJoinRefused(error);
    } else if (room && requestId !== null && requestId === this.#resyncRequestId) {
      this.#onResyncRefused(error);
    } else if (room && error.code === "ROOM_CLOSED" && this.#concerns(msg)) {
      this.#removedFromRoom("closed", error);
    }
  }

  /** True when a message is about the current room (or names no room). */
  #concerns(msg) {
    return msg.roomId === undefined || msg.roomId === this.#room?.roomId;
  }

  #onJoinRefused(error) {
    const room = this.#room;
    const firstJoin = room.pending !== null;
    if (!firstJoin && TRANSIENT_CODES.has(error.code) && this.#ws) {
      // an automatic re-join hit a passing condition: retry on a fresh socket
      this.#ws.close(4000, "rejoin retry");
      return;
    }
    if (firstJoin) {
      room.pending.reject(error);
      room.pending = null;
      this.#resetRoom();
      return;
    }
    this.#removedFromRoom("rejoin-failed", error);
  }

  #onResyncRefused(error) {
    this.#resyncRequestId = null;
    if (error.code === "ROOM_CLOSED") {
      this.#removedFromRoom("closed", error);
    } else if (error.code === "NOT_IN_ROOM") {
      this.#sendJoin(); // the server lost track of us: join again (with the token)
    } else {
      this.#resyncRequestId = "retry";
      this.#resyncTimer = this.#setTimeout(() => {
        this.#resyncTimer = null;
        this.#resyncRequestId = null;
        this.#requestResync();
      }, RESYNC_RETRY_MS);
    }
  }
}

/**
 * Create a client and open its socket.
 *
 * @example
 *   import { connect } from "/static/kasagi/client.js";
 *   const client = connect();               // ws(s)://<this host>/sync
 *   await client.join("game-lobby-1", { playerName: "Ann" });
 *
 * @param {string} [url] default `defaultUrl()`
 * @param {ClientOptions} [options]
 * @returns {KasagiClient}
 */
export function connect(url, options = {}) {
  return new KasagiClient(url, options).connect();
}
