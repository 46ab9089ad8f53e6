// What both Node load generators share (load.mjs for Colyseus, kasagi-load.mjs for
// Kasagi): their command line, the server's CPU and RSS from /proc, the machine's busy
// share, and percentiles in bench.load's shape.
import { readFileSync } from "node:fs";
import { cpus } from "node:os";

const CLOCK_TICKS = 100; // USER_HZ on Linux: /proc/<pid>/stat counts in 1/100 s

/** `--name value` options over `defaults` (and `flags`, which take no value). */
export function parseArgs(argv, defaults, flags, tool) {
  const out = { ...defaults };
  for (const flag of flags) out[flag] = false;
  for (let i = 0; i < argv.length; i += 1) {
    const name = argv[i].replace(/^--/, "");
    if (!argv[i].startsWith("--") || !(name in out)) fail(tool, `unknown option ${argv[i]}`);
    if (flags.has(name)) out[name] = true;
    else {
      if (i + 1 >= argv.length) fail(tool, `${argv[i]} needs a value`);
      out[name] = argv[(i += 1)];
    }
  }
  return out;
}

export function fail(tool, message) {
  console.error(`${tool}: ${message}`);
  process.exit(2);
}

export function serverCpuSeconds(pid) {
  if (pid === null) return null;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

export function serverRssMb(pid) {
  if (pid === null) return null;
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  return line ? Number((Number(line.split(/\s+/)[1]) / 1024).toFixed(1)) : null;
}

export function machineTicks() {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - fields[3] - (fields[4] ?? 0), total };
}

export function percentiles(values) {
  const data = Float64Array.from(values).sort();
  const n = data.length;
  if (!n) return { count: 0, p50: null, p90: null, p99: null, max: null };
  const pick = (q) => Number(data[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))].toFixed(3));
  return { count: n, p50: pick(0.5), p90: pick(0.9), p99: pick(0.99), max: Number(data[n - 1].toFixed(3)) };
}

export const round = (v, digits = 1) => (v === null ? null : Number(v.toFixed(digits)));

/** A point in the run: the counters, the sockets' bytes read, and the CPU so far. */
export function mark(counters, wire, pid) {
  return {
    ...counters, wire, cpu: serverCpuSeconds(pid), tool: process.cpuUsage(),
    machine: machineTicks(), at: performance.now(),
  };
}

/** The measured window between two marks, in bench.load's shape: the receive rates
 * (``counters.messages``/``bytes`` and the wire), the server's and the tool's CPU. */
export function windowReport(start, end, clients, pid) {
  const seconds = (end.at - start.at) / 1000;
  const n = Math.max(clients, 1);
  const cpu = start.cpu === null ? null : end.cpu - start.cpu;
  const toolCpu = (end.tool.user + end.tool.system - start.tool.user - start.tool.system) / 1e6;
  const busy = end.machine.total > start.machine.total
    ? (end.machine.busy - start.machine.busy) / (end.machine.total - start.machine.total) : null;
  const toolPct = round((100 * toolCpu) / seconds);
  return {
    seconds,
    cpu,
    rates: {
      frames_rx_per_s: round((end.messages - start.messages) / seconds),
      bytes_rx_per_client_per_s: round((end.bytes - start.bytes) / seconds / n),
      wire_bytes_rx_per_client_per_s: round((end.wire - start.wire) / seconds / n),
    },
    server: {
      pids: pid === null ? [] : [pid],
      cpu_s: round(cpu, 3),
      cpu_pct: cpu === null ? null : round((100 * cpu) / seconds),
      rss_mb: serverRssMb(pid),
    },
    tool: { procs: 1, cpu_pct: toolPct, max_proc_cpu_pct: toolPct },
    machine: { cores: cpus().length, busy_pct: busy === null ? null : round(100 * busy) },
  };
}
