// A Node load generator for Kasagi (`bench.compare --node-tool`): bench.load's `move`
// workload (JSON STATE_UPDATEs {x, y, t, s}, t the send time in epoch µs) on bench.load's
// schedule and window, printing a result in bench.load's shape.
//
// Why it exists: on a two-core machine bench.load's Python clients need more than a core
// for a 1,000-player world (framing, masking and sending 10,000 messages a second, reading
// ~50 MB/s), so they delay the very frames they time. Node's `ws` does the same work in
// a fraction of that, which leaves the server its core. It measures what bench.load's
// `--observe N` measures: every Nth client parses its frames and times every other
// player's `t` it sees (send → seen, one clock); the others count bytes only.
//
// Usage: node kasagi-load.mjs --url ws://127.0.0.1:8080/sync --clients 1000 --rooms 1
//          --rate 10 [--room-type world] [--observe 10] [--duration 10] [--warmup 2]
//          [--drain 5] [--pid <server pid>] [--room-prefix p] [--json-only]
import { setTimeout as sleep } from "node:timers/promises";
import WebSocket from "ws";
import { fail as failWith, mark, parseArgs, percentiles, round, windowReport } from "./measure.mjs";

const FLAGS = new Set(["json-only"]);
const DEFAULTS = {
  url: "ws://127.0.0.1:8080/sync", clients: "50", rooms: "5", rate: "10", duration: "10",
  warmup: "2", drain: "5", pid: null, "room-prefix": null, "room-type": "freeform",
  observe: "1", "connect-concurrency": "50", "drain-quiet": "0.3",
  // accepted for bench.compare, not used: one Node process, JSON, the move payload
  encoding: "json", procs: "1", payload: "move", "world-spread": "0",
};

const fail = (message) => failWith("kasagi-load.mjs", message);

const args = parseArgs(process.argv.slice(2), DEFAULTS, FLAGS, "kasagi-load.mjs");
if (args.encoding !== "json") fail("only --encoding json (bench.load speaks the others)");
if (args.payload !== "move") fail("only --payload move (bench.load runs the others)");
const url = args.url;
const clients = Number(args.clients);
const rooms = Number(args.rooms);
const rate = Number(args.rate);
const duration = Number(args.duration);
const warmup = Number(args.warmup);
const drain = Number(args.drain);
const observeEvery = Math.max(1, Number(args.observe));
const concurrency = Math.max(1, Number(args["connect-concurrency"]));
const quietMs = Number(args["drain-quiet"]) * 1000;
const pid = args.pid ? Number(args.pid) : null;
const prefix = args["room-prefix"] ?? `n${process.pid}`;
const world = args["room-type"] === "world";
if (!world && args["room-type"] !== "freeform") fail("--room-type is freeform or world");
const START_DELAY_MS = 500;

const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const roomId = (i) => `${prefix}-${i % rooms}`;

// -- where players stand (bench/world.py: the density of 1,000 players on the world) ------

const WORLD_SIZE = 10000;
const perRoom = Math.ceil(clients / rooms);
const side = world ? Math.min(WORLD_SIZE, WORLD_SIZE * Math.sqrt(perRoom / 1000)) : 1000;

function spot(i) {
  if (!world) return [100 + ((i * 37) % 800), 100 + ((i * 91) % 800)];
  const slot = Math.floor(i / rooms);
  const columns = Math.max(1, Math.ceil(Math.sqrt(perRoom)));
  const spacing = side / columns;
  return [Math.round(((slot % columns) + 0.5) * spacing), Math.round((Math.floor(slot / columns) + 0.5) * spacing)];
}

// -- /proc ------------------------------------------------------------------------------

// -- clients ------------------------------------------------------------------------------

const counters = { messages: 0, bytes: 0, observed: 0, gaps: 0, disconnects: 0 };
const errors = {};
const latencies = [];
const connectMs = [];
const failures = {};
const tWindow = { start: Infinity, end: Infinity }; // epoch µs
let closing = false;
let lastMessageAt = 0;

function onFrame(c, data) {
  counters.messages += 1;
  counters.bytes += data.length;
  lastMessageAt = performance.now();
  if (!c.observer) return;
  const msg = JSON.parse(data);
  if (msg.type === "ERROR") {
    const code = msg.payload?.code ?? "?";
    errors[code] = (errors[code] ?? 0) + 1;
    return;
  }
  if (typeof msg.version === "number" && typeof msg.baseVersion === "number") {
    if (c.version !== null && msg.baseVersion !== c.version) counters.gaps += 1;
    c.version = msg.version;
  } else if (msg.type === "FULL_STATE" && typeof msg.version === "number") {
    c.version = msg.version;
  }
  if (msg.type !== "DELTA_UPDATE") return;
  const players = msg.payload?.players;
  if (!players) return;
  const now = nowUs();
  for (const [id, p] of Object.entries(players)) {
    if (id === c.pid || p === null || typeof p.t !== "number") continue;
    if (p.t >= tWindow.start && p.t < tWindow.end) {
      counters.observed += 1;
      latencies.push((now - p.t) / 1000);
    }
  }
}

function open(i) {
  const [x, y] = spot(i);
  const c = { idx: i, room: roomId(i), x, y, vx: (1 + (i % 3)) * (i % 2 ? 1 : -1),
    vy: (1 + (Math.floor(i / 3) % 3)) * (Math.floor(i / 2) % 2 ? 1 : -1),
    observer: i % observeEvery === 0, pid: null, version: null, ws: null, seq: 0 };
  const started = performance.now();
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    c.ws = ws;
    let joined = false;
    ws.on("open", () => ws.send(JSON.stringify({ type: "JOIN_ROOM", roomId: c.room, payload: { x, y } })));
    ws.on("message", (data) => {
      if (!joined) {
        const msg = JSON.parse(data);
        if (msg.type !== "FULL_STATE") {
          failures[msg.payload?.code ?? msg.type] = (failures[msg.payload?.code ?? msg.type] ?? 0) + 1;
          ws.close();
          resolve(null);
          return;
        }
        joined = true;
        c.pid = msg.payload.playerId;
        c.version = msg.version;
        connectMs.push(performance.now() - started);
        ws.on("message", (frame) => onFrame(c, frame));
        resolve(c);
      }
    });
    ws.on("error", (err) => {
      if (!joined) {
        failures[err.code ?? "error"] = (failures[err.code ?? "error"] ?? 0) + 1;
        resolve(null);
      }
    });
    ws.on("close", () => { if (joined && !closing) counters.disconnects += 1; });
  });
}

if (world) { // the demo's /world/<roomId>/ page makes the room a world room
  const http = url.replace(/^ws/, "http").replace(/\/sync\/?$/, "");
  for (let r = 0; r < rooms; r += 1) {
    const answer = await fetch(`${http}/world/${roomId(r)}/`);
    if (answer.status !== 200) fail(`/world/${roomId(r)}/ answered ${answer.status}`);
  }
}
const joined = [];
for (let i = 0; i < clients; i += concurrency) {
  const batch = [];
  for (let j = i; j < Math.min(clients, i + concurrency); j += 1) batch.push(open(j));
  for (const c of await Promise.all(batch)) if (c) joined.push(c);
}

// -- the schedule: slot k of client i is due at start + i/(clients·rate) + (k−1)/rate -----

const periodMs = 1000 / rate;
const base = performance.now() + START_DELAY_MS;
const windowStart = base + warmup * 1000;
const windowEnd = windowStart + duration * 1000;
tWindow.start = Math.round((performance.timeOrigin + windowStart) * 1000);
tWindow.end = Math.round((performance.timeOrigin + windowEnd) * 1000);
let sentInWindow = 0;
let sentTotal = 0;
const sendLag = [];

function move(c) {
  let x = c.x + c.vx;
  if (x < 0 || x > side) { c.vx = -c.vx; x = c.x + c.vx; }
  let y = c.y + c.vy;
  if (y < 0 || y > side) { c.vy = -c.vy; y = c.y + c.vy; }
  c.x = x;
  c.y = y;
  c.seq += 1;
  return JSON.stringify({ type: "STATE_UPDATE", roomId: c.room, payload: { x, y, t: nowUs(), s: c.seq } });
}

async function sendLoop() {
  const plan = joined.map((c, k) => ({ c, off: (k / joined.length) * periodMs }));
  for (let k = 1; ; k += 1) {
    const slot = base + (k - 1) * periodMs;
    if (slot >= windowEnd) return;
    for (const { c, off } of plan) {
      const due = slot + off;
      if (due >= windowEnd) continue;
      const wait = due - performance.now();
      if (wait > 0.5) await sleep(wait);
      sendLag.push(Math.max(0, performance.now() - due));
      if (c.ws.readyState !== WebSocket.OPEN) continue;
      c.ws.send(move(c));
      sentTotal += 1;
      if (due >= windowStart) sentInWindow += 1;
    }
  }
}

function markNow() {
  let wire = 0;
  for (const c of joined) wire += c.ws._socket?.bytesRead ?? 0;
  return mark(counters, wire, pid);
}

let start = null;
let end = null;
setTimeout(() => { start = markNow(); }, windowStart - performance.now());
setTimeout(() => { end = markNow(); }, windowEnd - performance.now());
await sendLoop();
while (end === null) await sleep(10);
const drainUntil = performance.now() + drain * 1000;
while (performance.now() < drainUntil && performance.now() - lastMessageAt < quietMs) await sleep(quietMs / 3);
const quiet = performance.now() - lastMessageAt >= quietMs;
closing = true;
for (const c of joined) c.ws.close();

// -- the result, in bench.load's shape ------------------------------------------------------

const report = windowReport(start, end, joined.length, pid);
const toolPct = report.tool.cpu_pct;
const observers = joined.filter((c) => c.observer).length;
const result = {
  bench: "kasagi-node-load",
  mode: "load",
  config: {
    url, clients, rooms, rate, payload: "move", room_type: args["room-type"], duration, warmup,
    drain, pids: pid === null ? [] : [pid], procs: 1, room_prefix: prefix, encoding: "json",
    observe: observeEvery, tool: "node",
  },
  clients: joined.length,
  observers,
  rooms,
  sent: sentInWindow,
  sent_total: sentTotal,
  expected_deliveries: null,
  deliveries: null,
  observed: counters.observed,
  superseded: null,
  resynced: null,
  delivery_ratio: null,
  deliveries_per_s: null,
  changes_rx_per_s: null,
  ...report.rates,
  bytes_tx_per_client_per_s: null,
  latency_ms: percentiles(latencies),
  send_lag_ms: percentiles(sendLag),
  connect_ms: percentiles(connectMs),
  connect_failures: failures,
  gaps: counters.gaps,
  duplicates: null,
  disconnects: counters.disconnects,
  errors,
  tool_errors: 0,
  quiet_at_end: quiet,
  server: { ...report.server, cpu_s_per_1000_deliveries: null },
  tool: report.tool,
  machine: report.machine,
  rooms_total: rooms,
  rooms_converged: null,
  all_converged: null,
  views: null,
  idle: null,
  events: null,
};

if (!args["json-only"]) {
  const lat = result.latency_ms;
  console.log([
    `Kasagi bench (Node tool)  ${url}  ${result.clients} clients (${observers} observing), ${rooms} rooms, ${rate} Hz, ${args["room-type"]}`,
    `  latency send->seen  p50 ${lat.p50}  p90 ${lat.p90}  p99 ${lat.p99}  max ${lat.max} ms  (n=${lat.count})`,
    `  bytes/client/s      rx ${result.bytes_rx_per_client_per_s} (wire ${result.wire_bytes_rx_per_client_per_s})`,
    `  server              cpu ${result.server.cpu_pct} %`,
    `  tool                cpu ${toolPct} %, send lag p99 ${result.send_lag_ms.p99} ms`,
    `  chain gaps          ${counters.gaps}, errors ${JSON.stringify(errors)}`,
  ].join("\n"));
}
console.log((args["json-only"] ? "" : "BENCH_RESULT ") + JSON.stringify(result));
