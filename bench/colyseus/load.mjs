// Load peer for the Colyseus server: bench.load's `--payload xyt` workload (x, y
// integers random-walking ±5 in 0..1000, t the send time in epoch ms as a float, and
// nothing else), on bench.load's schedule and window, printing a result in bench.load's
// shape so bench.compare puts both in one table.
//
// It counts, per client, the WebSocket message payloads (as bench.load's "bytes") and
// the socket's bytes read (wire bytes: framing included, after any compression); every
// other member's t a client sees change (one latency sample when t lies in the window);
// deliveries expected = in-window moves × members (each move reaches every member, its
// sender included, as bench.load counts for xyt); the server's CPU and RSS from /proc;
// and, after a drain, whether every client's state equals what each member sent last.
//
// Usage: node load.mjs --url ws://127.0.0.1:2567 --clients 400 --rooms 20 --rate 20
//          [--duration 10] [--warmup 2] [--drain 5] [--pid <server pid>] [--json-only]
// The other bench.load workload options are accepted; those Colyseus cannot run are refused.
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, getStateCallbacks } from "colyseus.js";
import { fail as failWith, mark, parseArgs, percentiles, round, windowReport } from "./measure.mjs";

const FLAGS = new Set(["json-only"]);
const DEFAULTS = {
  url: "ws://127.0.0.1:2567", clients: "50", rooms: "5", rate: "10", duration: "10",
  warmup: "2", drain: "5", payload: "xyt", pid: null, "room-prefix": null,
  // accepted for bench.compare, not used: one Node process, sequential joins, schema encoding;
  // every client measures (--observe is bench.load's: its Python clients cost the cores)
  encoding: "json", procs: "1", "connect-concurrency": "50", "room-type": "freeform",
  "messages-per-second": "0", idle: "0", "drain-quiet": "0.3", observe: "1",
  "world-spread": "0",
};

const fail = (message) => failWith("load.mjs", message);

const args = parseArgs(process.argv.slice(2), DEFAULTS, FLAGS, "load.mjs");
if (args.payload !== "xyt") fail("Colyseus runs only --payload xyt");
if (Number(args["messages-per-second"]) > 0) fail("--messages-per-second has no Colyseus peer");
if (Number(args.idle) > 0) fail("--idle has no Colyseus peer");
if (args["room-type"] !== "freeform") fail("--room-type has no Colyseus peer");
const url = args.url;
const clients = Number(args.clients);
const rooms = Number(args.rooms);
const rate = Number(args.rate);
const duration = Number(args.duration);
const warmup = Number(args.warmup);
const drain = Number(args.drain);
const quietMs = Number(args["drain-quiet"]) * 1000;
const pid = args.pid ? Number(args.pid) : null;
const prefix = args["room-prefix"] ?? `r${process.pid}`;
const START_DELAY_MS = 500;
const STEP = 5;
const START = 500;

const CORE_VERSION = JSON.parse(
  readFileSync(new URL("node_modules/@colyseus/core/package.json", import.meta.url), "utf8")).version;

const nowMs = () => performance.timeOrigin + performance.now();

// -- /proc ----------------------------------------------------------------

// -- clients ----------------------------------------------------------------

const counters = { messages: 0, bytes: 0, changes: 0, duplicates: 0, observed: 0, errors: 0, disconnects: 0 };
const latencies = [];
const connectMs = [];
const failures = {};
let inWindow = false;
let closing = false;
let lastMessageAt = 0;
const tWindow = { start: Infinity, end: Infinity }; // epoch ms; set once the start is known

function watch(c) {
  const { room } = c;
  room.connection.transport.ws.addEventListener("message", (event) => {
    counters.messages += 1;
    counters.bytes += event.data.byteLength ?? event.data.length;
    lastMessageAt = performance.now();
  });
  room.onError(() => { counters.errors += 1; });
  room.onLeave(() => { if (!closing) counters.disconnects += 1; });
  const $ = getStateCallbacks(room);
  $(room.state).players.onAdd((player, key) => {
    if (key === room.sessionId) return;
    let before = player.t;
    $(player).listen("t", (t) => {
      if (t <= before) { counters.duplicates += t < before ? 1 : 0; return; }
      before = t;
      if (inWindow) counters.changes += 1;
      if (t >= tWindow.start && t < tWindow.end) {
        counters.observed += 1;
        latencies.push(nowMs() - t);
      }
    }, false);
  });
}

const joined = [];
const client = new Client(url);
for (let i = 0; i < clients; i += 1) {
  const started = performance.now();
  try {
    const room = await client.joinOrCreate("bench", { room: `${prefix}-${i % rooms}`, x: START, y: START });
    connectMs.push(performance.now() - started);
    const c = { idx: i, room, roomKey: i % rooms, x: START, y: START, t: 0, off: i / clients / rate * 1000 };
    watch(c);
    joined.push(c);
  } catch (err) {
    const reason = err?.code ? `code ${err.code}` : (err?.name ?? "Error");
    failures[reason] = (failures[reason] ?? 0) + 1;
  }
}
const members = {};
for (const c of joined) members[c.roomKey] = (members[c.roomKey] ?? 0) + 1;

// -- the schedule: slot k of client i is due at start + i/(clients·rate) + (k−1)/rate -----

const periodMs = 1000 / rate;
const base = performance.now() + START_DELAY_MS;
const windowStart = base + warmup * 1000;
const windowEnd = windowStart + duration * 1000;
tWindow.start = performance.timeOrigin + windowStart;
tWindow.end = performance.timeOrigin + windowEnd;
const sentInWindow = {};
let sentTotal = 0;
const sendLag = [];
const clamp = (v) => Math.min(1000, Math.max(0, v));
const step = () => Math.floor(Math.random() * (2 * STEP + 1)) - STEP;

async function sendLoop() {
  const plan = [...joined].sort((a, b) => a.off - b.off);
  for (let k = 1; ; k += 1) {
    const slot = base + (k - 1) * periodMs;
    if (slot >= windowEnd) return;
    for (const c of plan) {
      const due = slot + c.off;
      if (due >= windowEnd) continue;
      const wait = due - performance.now();
      if (wait > 0.5) await sleep(wait);
      sendLag.push(Math.max(0, performance.now() - due));
      c.x = clamp(c.x + step());
      c.y = clamp(c.y + step());
      c.t = nowMs();
      c.room.send("move", { x: c.x, y: c.y, t: c.t });
      sentTotal += 1;
      if (due >= windowStart) sentInWindow[c.roomKey] = (sentInWindow[c.roomKey] ?? 0) + 1;
    }
  }
}

function markNow() {
  let wire = 0;
  for (const c of joined) wire += c.room.connection.transport.ws._socket?.bytesRead ?? 0;
  return mark(counters, wire, pid);
}

let start = null;
let end = null;
setTimeout(() => { start = markNow(); inWindow = true; }, windowStart - performance.now());
setTimeout(() => { end = markNow(); inWindow = false; }, windowEnd - performance.now());
await sendLoop();
while (end === null) await sleep(10);

// -- drain, then convergence: every client holds what each member sent last -----------

const drainUntil = performance.now() + drain * 1000;
while (performance.now() < drainUntil && performance.now() - lastMessageAt < quietMs) await sleep(quietMs / 3);
const quiet = performance.now() - lastMessageAt >= quietMs;
const sent = Object.fromEntries(joined.map((c) => [c.room.sessionId, c]));
const byRoom = {};
for (const c of joined) (byRoom[c.roomKey] ??= []).push(c);
let converged = 0;
for (const list of Object.values(byRoom)) {
  const ok = list.every((c) => c.room.state.players.size === list.length && list.every((m) => {
    const p = c.room.state.players.get(m.room.sessionId);
    const want = sent[m.room.sessionId];
    return p && p.x === want.x && p.y === want.y && p.t === want.t;
  }));
  if (ok) converged += 1;
}

// -- the result, in bench.load's shape ------------------------------------------------

const report = windowReport(start, end, joined.length, pid);
const { seconds, cpu } = report;
const toolPct = report.tool.cpu_pct;
const expected = Object.entries(sentInWindow).reduce((sum, [room, moves]) => sum + moves * members[room], 0);
const result = {
  bench: "colyseus-bench-load",
  peer: `@colyseus/core ${CORE_VERSION}`,
  mode: "load",
  config: {
    url, clients, rooms, rate, payload: "xyt", room_type: "freeform", duration, warmup, drain,
    pids: pid === null ? [] : [pid], procs: 1, room_prefix: prefix, encoding: "colyseus-schema",
  },
  clients: joined.length,
  rooms: Object.keys(members).length,
  sent: Object.values(sentInWindow).reduce((a, b) => a + b, 0),
  sent_total: sentTotal,
  expected_deliveries: expected,
  deliveries: null,
  observed: counters.observed,
  superseded: null,
  resynced: null,
  delivery_ratio: null,
  deliveries_per_s: round(expected / seconds),
  changes_rx_per_s: round((end.changes - start.changes) / seconds),
  ...report.rates,
  bytes_tx_per_client_per_s: null,
  latency_ms: percentiles(latencies),
  send_lag_ms: percentiles(sendLag),
  connect_ms: percentiles(connectMs),
  connect_failures: failures,
  gaps: null,
  duplicates: counters.duplicates,
  disconnects: counters.disconnects,
  errors: counters.errors ? { room: counters.errors } : {},
  tool_errors: 0,
  quiet_at_end: quiet,
  server: {
    ...report.server,
    cpu_s_per_1000_deliveries: cpu === null || !expected ? null : round((1000 * cpu) / expected, 4),
  },
  tool: report.tool,
  machine: report.machine,
  rooms_total: Object.keys(byRoom).length,
  rooms_converged: converged,
  all_converged: joined.length > 0 && converged === Object.keys(byRoom).length,
  views: null,
  idle: null,
  events: null,
};

if (!args["json-only"]) {
  const lat = result.latency_ms;
  console.log([
    `Colyseus bench  ${url}  ${result.clients} clients, ${result.rooms} rooms, ${rate} Hz, xyt, ${duration} s after ${warmup} s warm-up`,
    `  latency send->seen  p50 ${lat.p50}  p90 ${lat.p90}  p99 ${lat.p99}  max ${lat.max} ms  (n=${lat.count})`,
    `  bytes/client/s      rx ${result.bytes_rx_per_client_per_s} (wire ${result.wire_bytes_rx_per_client_per_s})`,
    `  server              cpu ${result.server.cpu_pct} %, ${result.server.cpu_s_per_1000_deliveries} s per 1000 deliveries (expected ${expected})`,
    `  rooms converged     ${converged}/${result.rooms_total}${quiet ? "" : "  (traffic still arriving at the end)"}`,
    `  tool                cpu ${toolPct} %`,
  ].join("\n"));
}
console.log((args["json-only"] ? "" : "BENCH_RESULT ") + JSON.stringify(result));
closing = true;
await Promise.all(joined.map((c) => c.room.leave().catch(() => {})));
process.exit(0);
