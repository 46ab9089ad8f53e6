/**
 * The compact binary codec `kasagi.bin1` in the browser (docs/protocol.md,
 * "The compact binary codec"): a Decoder of server frames and an Encoder of
 * the client's frames, one of each per socket. Pure: no I/O.
 *
 * JavaScript numbers are float64: an integer-valued number is sent as an
 * integer, as JSON.stringify would write it, and integers decode exactly up to
 * 2^53 (JSON.parse has the same limit). Raw bytes (documents, §16) decode to
 * standard padded base64 strings, the form the JSON frames carry, so code
 * above the codec sees the same messages whichever codec the socket uses.
 */

export const SUBPROTOCOL = "kasagi.bin1";

const TYPES = [
  "", "JOIN_ROOM", "LEAVE_ROOM", "STATE_UPDATE", "RESYNC", "PING", "FULL_STATE",
  "DELTA_UPDATE", "PLAYER_JOINED", "PLAYER_LEFT", "PONG", "ERROR", "MESSAGE", "EVENT",
  "RESUMED", "DOC_SYNC", "DOC_UPDATE",
];
const CODES = new Map(TYPES.map((name, code) => [name, code]).filter(([name]) => name));
const RESETS = new Set([6, 14]);
const STATIC = [
  "players", "entities", "playerId", "sessionToken", "resumed", "state", "epoch", "docs",
  "kind", "data", "from", "reason", "serverTime", "code", "message", "docId", "update",
  "stateVector", "entityId", "expectedVersion", "spectate", "sinceVersion", "playerName",
  "name", "color", "x", "y", "z", "t", "score", "text", "owner", "left", "timeout",
  "kicked", "closed", "vx", "vy", "angle", "ready",
];
const STATIC_INDEX = new Map(STATIC.map((name, i) => [name, i + 1]));
const FIRST_DYNAMIC = 41;
const MAX_NAMES = 1024;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A frame that is not valid bin1 (or names an index never announced). */
export class Bin1Error extends Error {}

const zigzag = (n) => (n >= 0 ? 2 * n : -2 * n - 1);
const unzigzag = (z) => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);

/** Growing byte buffer. */
class Out {
  constructor() {
    this.bytes = new Uint8Array(64);
    this.length = 0;
  }

  room(n) {
    if (this.length + n > this.bytes.length) {
      const bigger = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
      bigger.set(this.bytes.subarray(0, this.length));
      this.bytes = bigger;
    }
  }

  byte(b) {
    this.room(1);
    this.bytes[this.length++] = b;
  }

  varint(n) {
    while (n > 0x7f) {
      this.byte((n % 128) | 0x80);
      n = Math.floor(n / 128);
    }
    this.byte(n);
  }

  raw(data) {
    this.room(data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }

  text(s) {
    const data = utf8.encode(s);
    this.varint(data.length);
    this.raw(data);
  }

  float(v) {
    this.room(8);
    new DataView(this.bytes.buffer).setFloat64(this.length, v, true);
    this.length += 8;
  }

  done() {
    return this.bytes.slice(0, this.length);
  }
}

/** This client's frames: a name is announced in the first frame that uses it. */
export class Encoder {
  constructor() {
    /** @type {Map<string, number>} */
    this.names = new Map();
  }

  /**
   * @param {Record<string, any>} msg
   * @returns {Uint8Array}
   */
  encode(msg) {
    const code = typeof msg.type === "string" ? CODES.get(msg.type) ?? 0 : 0;
    const fresh = [];
    const learn = (name) => {
      if (!RESETS.has(code) && !this.names.has(name) && !STATIC_INDEX.has(name)
          && this.names.size < MAX_NAMES) {
        this.names.set(name, FIRST_DYNAMIC + this.names.size);
        fresh.push(name);
      }
    };
    for (const key of ["roomId", "entityId"]) {
      if (typeof msg[key] === "string") learn(msg[key]);
    }
    const walk = (obj, level) => {
      for (const [key, value] of Object.entries(obj)) {
        learn(key);
        if (level < 3 && isObject(value)) walk(value, level + 1);
      }
    };
    if (isObject(msg.payload)) walk(msg.payload, 1);

    let mask = 0;
    const extra = {};
    let extras = false;
    for (const [key, value] of Object.entries(msg)) {
      if (value === undefined || (key === "type" && code)) continue;
      if (key === "roomId" && typeof value === "string") mask |= 0x01;
      else if (key === "version" && Number.isSafeInteger(value) && value >= 0) mask |= 0x08;
      else if (key === "timestamp" && Number.isSafeInteger(value)) mask |= 0x10;
      else if (key === "requestId") mask |= 0x20;
      else if (key === "payload") mask |= 0x40;
      else {
        extra[key] = value;
        extras = true;
      }
    }
    if (extras) mask |= 0x80;
    const out = new Out();
    out.byte(code | (fresh.length ? 0x20 : 0) | (mask & 0x10 ? 0x40 : 0));
    out.byte(mask);
    if (fresh.length) {
      out.varint(1);
      out.varint(this.names.get(fresh[0]));
      out.varint(fresh.length);
      for (const name of fresh) out.text(name);
    }
    if (mask & 0x01) this.#value(out, msg.roomId);
    if (mask & 0x08) out.varint(msg.version);
    if (mask & 0x10) out.varint(zigzag(msg.timestamp));
    if (mask & 0x20) this.#value(out, msg.requestId);
    if (mask & 0x40) this.#value(out, msg.payload);
    if (extras) this.#value(out, extra);
    return out.done();
  }

  #index(name) {
    return STATIC_INDEX.get(name) ?? this.names.get(name);
  }

  #value(out, value) {
    if (value === null || value === undefined) {
      out.byte(6);
    } else if (value === true || value === false) {
      out.byte(((value ? 2 : 1) << 3) | 6);
    } else if (typeof value === "number") {
      if (!Number.isFinite(value)) {
        out.byte(6); // JSON.stringify writes null for NaN and Infinity
      } else if (Number.isSafeInteger(value)) {
        out.varint(zigzag(value) * 8);
      } else {
        out.byte(1);
        out.float(value);
      }
    } else if (typeof value === "string") {
      const index = this.#index(value);
      if (index === undefined) {
        const data = utf8.encode(value);
        out.varint(data.length * 8 + 2);
        out.raw(data);
      } else {
        out.varint(index * 8 + 3);
      }
    } else if (value instanceof Uint8Array) {
      out.varint(value.length * 8 + 7);
      out.raw(value);
    } else if (Array.isArray(value)) {
      out.varint(value.length * 8 + 5);
      for (const item of value) this.#value(out, item);
    } else {
      const entries = Object.entries(value).filter(([, v]) => v !== undefined);
      out.varint(entries.length * 8 + 4);
      for (const [key, item] of entries) {
        const index = this.#index(key);
        if (index === undefined) {
          out.byte(0);
          out.text(key);
        } else {
          out.varint(index);
        }
        this.#value(out, item);
      }
    }
  }
}

const SHORT_DELTA = 17; // DELTA_UPDATE's short forms (head codes); 18: the payload is {players: ...}
const PLAYERS_DELTA = 18;
const CHAIN_MASK = 0x5e; // what they imply: current room, baseVersion, version, timestamp, payload

/** Server frames of one socket (table, time base, current room, version register). */
export class Decoder {
  constructor() {
    /** @type {Map<number, string>} */
    this.names = new Map();
    this.timeBase = 0;
    this.room = null;
    this.version = 0;
    this.data = new Uint8Array(0);
    this.pos = 0;
    this.anchor = null;
  }

  /**
   * @param {ArrayBuffer | Uint8Array} frame
   * @returns {Record<string, any>}
   */
  decode(frame) {
    const data = frame instanceof Uint8Array ? frame : new Uint8Array(frame);
    this.data = data;
    this.pos = 2;
    this.anchor = null; // the frame's timestamp, once read: what a near-time float is relative to
    if (data.length < 1) throw new Bin1Error("empty frame");
    const head = data[0];
    let code = head & 0x1f;
    if (head & 0x80 || code > PLAYERS_DELTA) throw new Bin1Error(`bad head byte ${head}`);
    const playersOnly = code === PLAYERS_DELTA;
    let mask;
    if (code >= SHORT_DELTA) { // a chain DELTA_UPDATE: no mask byte
      code = 7;
      mask = CHAIN_MASK;
      this.pos = 1;
    } else {
      if (data.length < 2) throw new Bin1Error("frame shorter than its header");
      mask = data[1];
    }
    if (RESETS.has(code)) {
      this.names = new Map();
      this.timeBase = 0;
    }
    if (head & 0x20) {
      if (RESETS.has(code)) this.timeBase = unzigzag(this.#uint());
      for (let runs = this.#uint(); runs > 0; runs -= 1) {
        const first = this.#uint();
        const count = this.#uint();
        if (first < FIRST_DYNAMIC) throw new Bin1Error(`announcement of static index ${first}`);
        for (let i = 0; i < count; i += 1) this.names.set(first + i, this.#text(this.#uint()));
      }
    }
    const msg = code ? { type: TYPES[code] } : {};
    if (mask & 0x01) msg.roomId = this.#value();
    else if (mask & 0x02) {
      if (this.room === null) throw new Bin1Error("current room before any FULL_STATE");
      msg.roomId = this.room;
    }
    let base = null;
    if (mask & 0x04) {
      const d = (((this.#byte() - this.version) % 256) + 256) % 256;
      base = this.version + (d >= 128 ? d - 256 : d);
    }
    if (mask & 0x08) {
      const n = this.#uint();
      msg.version = base === null ? n : base + n;
    }
    if (base !== null) msg.baseVersion = base;
    if (mask & 0x10) {
      msg.timestamp = unzigzag(this.#uint()) + (head & 0x40 ? 0 : this.timeBase);
      if (Math.abs(msg.timestamp) <= 2 ** 53) this.anchor = msg.timestamp;
    }
    if (mask & 0x20) msg.requestId = this.#value();
    if (mask & 0x40) msg.payload = playersOnly ? { players: this.#value() } : this.#value();
    if (mask & 0x80) {
      const extra = this.#value();
      if (!isObject(extra)) throw new Bin1Error("envelope extras are not an object");
      Object.assign(msg, extra);
    }
    if (this.pos !== data.length) throw new Bin1Error("bytes after the frame's end");
    if (Number.isInteger(msg.version)) this.version = msg.version;
    if (RESETS.has(code)) this.room = typeof msg.roomId === "string" ? msg.roomId : null;
    return msg;
  }

  #byte() {
    if (this.pos >= this.data.length) throw new Bin1Error("truncated frame");
    return this.data[this.pos++];
  }

  #uint() {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 10; i += 1) {
      const b = this.#byte();
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 128;
    }
    throw new Bin1Error("varint longer than 10 bytes");
  }

  #bytes(length) {
    const end = this.pos + length;
    if (end > this.data.length) throw new Bin1Error("string past the frame's end");
    const chunk = this.data.subarray(this.pos, end);
    this.pos = end;
    return chunk;
  }

  #text(length) {
    try {
      return fromUtf8.decode(this.#bytes(length));
    } catch (error) {
      if (error instanceof Bin1Error) throw error;
      throw new Bin1Error("a string is not UTF-8");
    }
  }

  #name(index) {
    if (index > 0 && index < FIRST_DYNAMIC) return STATIC[index - 1];
    const name = this.names.get(index);
    if (name === undefined) throw new Bin1Error(`name ${index} was never announced`);
    return name;
  }

  #value() {
    const h = this.#uint();
    const kind = h % 8;
    const x = (h - kind) / 8;
    switch (kind) {
      case 0:
        return unzigzag(x);
      case 1: {
        if (x === 0) {
          const at = this.pos;
          this.#bytes(8);
          return new DataView(this.data.buffer, this.data.byteOffset).getFloat64(at, true);
        }
        // short forms: k * 2^-e exactly (k below 2^52), or the frame's timestamp plus it
        const k = unzigzag(this.#uint());
        if (x >= 128 || Math.abs(k) >= 2 ** 52) throw new Bin1Error(`bad short float (width ${x})`);
        if (x >= 64) return k * 2 ** (64 - x);
        if (this.anchor === null) throw new Bin1Error("a float near the frame's time without one");
        return this.anchor + k * 2 ** (1 - x);
      }
      case 2:
        return this.#text(x);
      case 3:
        return this.#name(x);
      case 4: {
        const obj = {};
        for (let i = 0; i < x; i += 1) {
          const k = this.#uint();
          const key = k === 0 ? this.#text(this.#uint()) : this.#name(k);
          obj[key] = this.#value();
        }
        return obj;
      }
      case 5: {
        const items = [];
        for (let i = 0; i < x; i += 1) items.push(this.#value());
        return items;
      }
      case 6:
        if (x < 3) return [null, false, true][x];
        if (x === 3) return Number(this.#text(this.#uint()));
        throw new Bin1Error(`unknown constant ${x}`);
      default:
        return toBase64(this.#bytes(x));
    }
  }
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    && !(value instanceof Uint8Array);
}

function toBase64(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}
