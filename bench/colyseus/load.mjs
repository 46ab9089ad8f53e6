// Load peer for the Colyseus server: the same workload as bench.load's xyt moves
// (x, y integers random-walking ±5 in 0..1000, t the send time in epoch ms as a
// float), counting the bytes of every message each client receives (WebSocket
// message payloads, as bench.load counts them) and the server's CPU over the window.
// Usage: node load.mjs --url ws://127.0.0.1:2567 --clients 400 --rooms 20 --rate 20
//          [--duration 10] [--warmup 2] [--pid <server pid>]
import { readFileSync } from "node:fs";
import { Client } from "colyseus.js";

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) => {
  if (arg.startsWith("--")) pairs.push([arg.slice(2), all[i + 1]]);
  return pairs;
}, []));
const url = args.url ?? "ws://127.0.0.1:2567";
const clients = Number(args.clients ?? 50);
const rooms = Number(args.rooms ?? 5);
const rate = Number(args.rate ?? 2);
const duration = Number(args.duration ?? 10);
const warmup = Number(args.warmup ?? 2);
const pid = args.pid ? Number(args.pid) : null;
const TICK = 100; // clock ticks per second (/proc)

function cpuSeconds() {
  if (pid === null) return null;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

let bytes = 0;
let messages = 0;
let patches = 0;
const joined = [];
const client = new Client(url);
for (let i = 0; i < clients; i += 1) {
  const room = await client.joinOrCreate("bench", { room: `r${i % rooms}`, x: 500, y: 500 });
  const ws = room.connection.transport.ws;
  ws.addEventListener("message", (event) => {
    bytes += event.data.byteLength ?? event.data.length;
    messages += 1;
  });
  room.onStateChange(() => { patches += 1; });
  joined.push({ room, x: 500, y: 500 });
}

const period = 1000 / rate;
const clamp = (v) => Math.min(1000, Math.max(0, v));
const timers = joined.map((c, i) => setTimeout(() => {
  c.timer = setInterval(() => {
    c.x = clamp(c.x + Math.round(Math.random() * 10 - 5));
    c.y = clamp(c.y + Math.round(Math.random() * 10 - 5));
    c.room.send("move", { x: c.x, y: c.y, t: performance.timeOrigin + performance.now() });
  }, period);
}, (i / clients) * period));

await new Promise((resolve) => setTimeout(resolve, warmup * 1000));
const start = { bytes, messages, patches, cpu: cpuSeconds(), at: performance.now() };
await new Promise((resolve) => setTimeout(resolve, duration * 1000));
const end = { bytes, messages, patches, cpu: cpuSeconds(), at: performance.now() };
const seconds = (end.at - start.at) / 1000;
const perRoom = clients / rooms;
const deliveries = clients * rate * perRoom * seconds; // each move reaches every member
const cpu = start.cpu === null ? null : end.cpu - start.cpu;
const result = {
  server: "colyseus-0.16", clients, rooms, rate, seconds: Number(seconds.toFixed(2)),
  bytes_rx_per_client_per_s: Number(((end.bytes - start.bytes) / seconds / clients).toFixed(1)),
  messages_rx_per_client_per_s: Number(((end.messages - start.messages) / seconds / clients).toFixed(1)),
  server_cpu_percent: cpu === null ? null : Number((100 * cpu / seconds).toFixed(1)),
  server_cpu_s_per_1k_deliveries: cpu === null ? null : Number((1000 * cpu / deliveries).toFixed(5)),
};
for (const c of joined) clearInterval(c.timer);
timers.forEach(clearTimeout);
console.log("BENCH_RESULT " + JSON.stringify(result));
await Promise.all(joined.map((c) => c.room.leave().catch(() => {})));
process.exit(0);
