"""Load, latency and memory benchmark of a Kasagi Sync server over real WebSockets.

Every simulated client is one WebSocket speaking the wire contract: it joins a
room, sends STATE_UPDATEs on a fixed schedule with its send time ``t`` (epoch
microseconds, ``time.time_ns() // 1000``, shared by all processes of the tool)
and a sequence number ``s`` in its own player object, and mirrors its room by
applying FULL_STATE and then every DELTA_UPDATE / PLAYER_JOINED / PLAYER_LEFT
in order. ``--payload xyt`` sends the issue-17 workload instead, exactly ``{x, y, t}``
(t in epoch milliseconds, a float; no sequence number), as bench/colyseus/load.mjs
does against Colyseus. With ``--messages-per-second N`` each client also sends N MESSAGEs a
second (§11, kind ``bench.ping``, its send time ``t`` and sequence number ``s``
in ``data``) that the room relays as EVENTs to its other members, which measure
send → EVENT-seen latency the same way. The per-frame path is raw
``websockets`` + ``orjson`` because the tool shares two cores with the server
it measures; ``--procs`` spreads the clients over worker processes and the
parent merges their results.

The parent process holds no client: it starts the workers, picks the common
start time, samples the server's /proc (CPU seconds, RSS), joins one spectator
per room at the end to check that every mirror converged, and prints a table
and, as the last line of stdout, one JSON object (``BENCH_RESULT {...}``, or
the bare object with ``--json-only``). See bench/README.md for every number.

It connects only to ``--url``: keep that on the loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import multiprocessing
import os
import random
import resource
import sys
import time
import traceback
from array import array
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import msgpack
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from bench import world
from sync.core import bin_codec

RESULT_PREFIX = "BENCH_RESULT "
NAME_PREFIX = "bench-"
PING_KIND = "bench.ping"
PLAYERS_PER_IDLE_ROOM = 50
QUIET_SECONDS = 0.3
WRITE_BUFFER_LIMIT = 1 << 20
START_DELAY_SECONDS = 0.5
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")

loads = orjson.loads
dumps = orjson.dumps
time_ns = time.time_ns
MSGPACK_SUBPROTOCOL = "kasagi.msgpack"
XYT = "xyt"
XYT_STEP = 5
XYT_START = 500
#: encoding name -> (encode, decode, frames are text)
WIRE = {
    "json": (orjson.dumps, orjson.loads, True),
    # json-deflate: JSON whose sockets offer permessage-deflate (see open_socket)
    "json-deflate": (orjson.dumps, orjson.loads, True),
    "msgpack": (msgpack.packb, msgpack.unpackb, False),
    # bin1: clients send table-free frames; each socket decodes with its own Decoder
    "bin1": (bin_codec.encode, bin_codec.Decoder().decode, False),
}
SUBPROTOCOLS = {"msgpack": [MSGPACK_SUBPROTOCOL], "bin1": [bin_codec.SUBPROTOCOL]}


# --------------------------------------------------------------------------
# Configuration and the shared schedule
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    url: str = "ws://127.0.0.1:8080/sync"
    clients: int = 50
    rooms: int = 5
    rate: float = 10.0
    payload: str = "move"
    room_type: str = "freeform"
    duration: float = 10.0
    warmup: float = 2.0
    drain: float = 5.0
    pids: tuple[int, ...] = ()
    idle: int = 0
    procs: int = 1
    room_prefix: str = "bench"
    connect_concurrency: int = 50
    join_timeout: float = 30.0
    encoding: str = "json"
    messages_per_second: float = 0.0
    #: --room-type world: side of the square each room's players are spread over (0: the
    #: density of 1,000 players on the whole world; bench/world.py)
    world_spread: float = 0.0
    #: every ``observe``-th client mirrors its room and measures (latency, deliveries,
    #: gaps, convergence); the others only receive and count bytes, so the tool's own
    #: CPU does not set the latency it reports on a small machine (the server's work
    #: is the same: it cannot tell them apart)
    observe: int = 1

    @property
    def idle_mode(self) -> bool:
        return self.idle > 0

    @property
    def client_count(self) -> int:
        return self.idle if self.idle_mode else self.clients

    @property
    def room_count(self) -> int:
        if self.idle_mode:
            return max(self.rooms, math.ceil(self.idle / PLAYERS_PER_IDLE_ROOM))
        return self.rooms

    @property
    def xyt(self) -> bool:
        return self.payload == XYT

    @property
    def blob_bytes(self) -> int:
        return int(self.payload.split(":", 1)[1]) if self.payload.startswith("blob:") else 0

    def room_id(self, index: int) -> str:
        return f"{self.room_prefix}-{index}"

    def room_of(self, client: int) -> str:
        return self.room_id(client % self.room_count)

    def send_offset(self, client: int) -> float:
        """When this client sends, in seconds after the start: staggered over one period."""
        if self.idle_mode:
            return 0.0
        return client / self.client_count / self.rate

    def seq_window(self, client: int) -> tuple[int, int]:
        """First and last sequence numbers of this client that fall in the measured window.

        Update ``k`` (1-based) is scheduled at ``start + offset + (k - 1) / rate``; the
        warm-up holds the slots before ``start + warmup``; sending stops before
        ``start + warmup + duration``. Every process computes the same numbers, so a
        receiver knows which of a sender's sequence numbers count without asking it.
        """
        if self.idle_mode:
            return 1, 0
        return self._window(self.send_offset(client), self.rate)

    def message_offset(self, client: int) -> float:
        """When this client sends its MESSAGEs: staggered, half a slot after its updates'."""
        return (client + 0.5) / self.client_count / self.messages_per_second

    def message_window(self, client: int) -> tuple[int, int]:
        """As :meth:`seq_window`, for the client's MESSAGEs (empty without them)."""
        if self.idle_mode or self.messages_per_second <= 0:
            return 1, 0
        return self._window(self.message_offset(client), self.messages_per_second)

    def _window(self, off: float, rate: float) -> tuple[int, int]:
        first = max(1, math.ceil((self.warmup - off) * rate) + 1)
        last = math.ceil((self.warmup + self.duration - off) * rate)
        return first, last


def overlap(low: int, high: int, window: tuple[int, int]) -> int:
    """How many sequence numbers of ``(low, high]`` lie in the inclusive ``window``."""
    lo = low + 1 if low + 1 > window[0] else window[0]
    hi = high if high < window[1] else window[1]
    return hi - lo + 1 if hi >= lo else 0


def state_digest(state: Any) -> str:
    return hashlib.blake2b(dumps(state, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch; updates ``target`` in place when it is an object."""
    if type(patch) is not dict:
        return patch
    if type(target) is not dict:
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = merge_patch(target.get(key), value)
    return target


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class FrameCounter:
    """A passive client's receiving once it joined: the server's frames are counted
    (frames, payload bytes) from their headers and skipped, not parsed into messages.

    Why: with ``--observe N`` most clients only receive, and parsing their ~50 MB/s
    through the websockets library took a whole core of the two the server shares
    (the world benchmark), starving the server it measures. Control frames (ping,
    close) still go to the library, whole, so the server's pings are answered and a
    close is a close. Server frames are unmasked and never fragmented (Kasagi sends
    each message as one frame); a header that says otherwise stops the counting
    (``broken``) and the rest is only counted as wire bytes."""

    __slots__ = ("_control", "_head", "_skip", "broken", "worker")

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._head = bytearray()
        self._skip = 0  # payload bytes of the current frame still to come
        self._control: bytearray | None = None  # the control frame being collected
        self.broken = False

    def feed(self, data: bytes) -> list[bytes]:
        """Count the frames in ``data``; the control frames completed in it, whole."""
        out: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end and not self.broken:
            if self._skip:
                n = min(self._skip, end - pos)
                if self._control is not None:
                    self._control += data[pos:pos + n]
                pos += n
                self._skip -= n
                if not self._skip and self._control is not None:
                    out.append(bytes(self._control))
                    self._control = None
                continue
            head = self._head
            need = 2
            if len(head) >= 2:
                marker = head[1] & 0x7F
                need = 2 if marker < 126 else 4 if marker == 126 else 10
            take = min(need - len(head), end - pos)
            head += data[pos:pos + take]
            pos += take
            if len(head) < need or (need == 2 and (head[1] & 0x7F) >= 126):
                continue  # more header to come
            opcode, fin, masked = head[0] & 0x0F, head[0] & 0x80, head[1] & 0x80
            length = head[1] & 0x7F
            if length >= 126:
                length = int.from_bytes(head[2:], "big")
            if masked or not fin or opcode not in (1, 2, 8, 9, 10):
                self.broken = True
                break
            if opcode >= 8:
                self._control = bytearray(head)
                if not length:
                    out.append(bytes(self._control))
                    self._control = None
            else:
                self.worker.frames += 1
                self.worker.bytes_rx += length
            self._skip = length
            self._head = bytearray()
        return out


class CountingConnection(ClientConnection):
    """A client connection that counts what its socket received: wire bytes (WebSocket
    framing and permessage-deflate included, the HTTP handshake answer too), where
    ``recv`` only sees message payloads after decompression. A passive client asks
    for a :class:`FrameCounter` (``want_counter``) once joined; it takes over at the
    first frame boundary (nothing of a frame left in the library's buffer)."""

    wire_rx = 0
    counter: FrameCounter | None = None
    want_counter: FrameCounter | None = None

    def data_received(self, data: bytes) -> None:
        self.wire_rx += len(data)
        counter = self.counter
        if counter is not None:
            for control in counter.feed(data):
                super().data_received(control)
            return
        super().data_received(data)
        if self.want_counter is not None and not self.protocol.reader.buffer:
            self.counter, self.want_counter = self.want_counter, None


async def open_socket(url: str, timeout: float, encoding: str = "json") -> ClientConnection:
    """One lean client socket: no client pings (the server pings), no size cap, and no
    compression unless ``encoding`` is ``json-deflate`` (it then offers permessage-deflate
    as a browser does)."""
    return await connect(
        url,
        subprotocols=SUBPROTOCOLS.get(encoding),
        compression="deflate" if encoding == "json-deflate" else None,
        create_connection=CountingConnection,
        ping_interval=None,
        max_size=None,
        max_queue=256,
        write_limit=WRITE_BUFFER_LIMIT,
        open_timeout=timeout,
        close_timeout=2,
    )


def send_now(ws: ClientConnection, data: bytes, text: bool = True) -> bool:
    """Write one frame without awaiting; False when the socket is not open.

    ``await ws.send()`` spends most of a small frame's cost in its async context
    manager; here the Sans-I/O protocol frames the message and the transport
    buffers it. The caller falls back to ``await ws.send()`` (which waits for the
    buffer to drain) once more than WRITE_BUFFER_LIMIT bytes are pending.
    """
    if ws.protocol.state is not State.OPEN:
        return False
    if text:
        ws.protocol.send_text(data)
    else:
        ws.protocol.send_binary(data)
    ws.send_data()
    return True


# --------------------------------------------------------------------------
# Server sampling (/proc)
# --------------------------------------------------------------------------


def proc_cpu_seconds(pids: tuple[int, ...]) -> float | None:
    """utime + stime of the given processes, in seconds; None if one cannot be read."""
    total = 0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None
    return total / CLOCK_TICKS if pids else None


def machine_cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def proc_rss_bytes(pids: tuple[int, ...]) -> int | None:
    total = 0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return None
    return total if pids else None


# --------------------------------------------------------------------------
# Worker process: the clients
# --------------------------------------------------------------------------


class JoinRefused(Exception):
    pass


class Client:
    __slots__ = (
        "first",
        "idx",
        "joined",
        "last",
        "msg_last",
        "msg_off",
        "observer",
        "off",
        "pid",
        "resyncing",
        "room",
        "state",
        "version",
        "vx",
        "vy",
        "ws",
        "x",
        "y",
    )

    def __init__(self, cfg: Config, idx: int) -> None:
        self.idx = idx
        # every Nth member of each room (client i is in room i % rooms)
        self.observer = (idx // cfg.room_count) % max(cfg.observe, 1) == 0
        self.room = cfg.room_of(idx)
        self.off = cfg.send_offset(idx)
        self.first, self.last = cfg.seq_window(idx)
        self.msg_off = cfg.message_offset(idx) if cfg.messages_per_second > 0 else 0.0
        self.msg_last = cfg.message_window(idx)[1]
        self.ws: ClientConnection | None = None
        self.pid: str | None = None
        self.state: dict[str, Any] | None = None
        self.version: int | None = None
        self.resyncing = False
        self.joined: asyncio.Future[None] | None = None
        # move payload: a slow bounce inside 0..1000 (arena allows 1000 units/s)
        self.x = 100 + (idx * 37) % 800
        self.y = 100 + (idx * 91) % 800
        if cfg.xyt:  # a random walk from the middle, as load.mjs's Colyseus clients
            self.x = self.y = XYT_START
        self.vx = (1 + idx % 3) * (1 if idx % 2 else -1)
        self.vy = (1 + (idx // 3) % 3) * (1 if (idx // 2) % 2 else -1)
        if cfg.room_type == world.WORLD:  # spread evenly over the room's square
            per_room = math.ceil(cfg.client_count / cfg.room_count)
            side = world.world_side(per_room, cfg.world_spread)
            self.x, self.y = world.world_spot(idx // cfg.room_count, per_room, side)


class Worker:
    """Runs a share of the clients in one event loop and reports to the parent over a pipe."""

    def __init__(self, cfg: Config, indices: list[int], conn: Any) -> None:
        self.cfg = cfg
        self.conn = conn
        self.encode, self.decode, self.text = WIRE[cfg.encoding]
        self.clients = [Client(cfg, i) for i in indices]
        self.windows: dict[str, tuple[int, int]] = {}  # playerId -> its seq window
        self.msg_windows: dict[str, tuple[int, int]] = {}  # playerId -> its MESSAGE window
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closing = False
        self.in_window = False
        self.t_window = (0.0, 0.0)  # xyt: the window in epoch ms (a received t inside counts)
        self.rng = random.Random(indices[0] if indices else 0)
        n = cfg.blob_bytes
        self.blob_base = ("abcdefghijklmnopqrstuvwxyz0123456789" * (2 * n // 36 + 2))[: 2 * n]
        #: moves bounce inside 0..bound (a world room: its players' square)
        self.bound = 1000.0 if cfg.room_type != world.WORLD else world.world_side(
            math.ceil(cfg.client_count / cfg.room_count), cfg.world_spread)
        # counters (whole run unless named *_window)
        self.frames = self.bytes_rx = self.frames_tx = self.bytes_tx = 0
        self.gaps = self.duplicates = self.disconnects = self.tool_errors = 0
        self.delivered = self.observed = self.resynced = self.rx_deliveries = 0
        self.errors: Counter[str] = Counter()
        self.connect_failures: Counter[str] = Counter()
        self.tool_error_sample = ""
        self.latency_us = array("q")
        self.event_latency_us = array("q")
        self.events_delivered = self.events_rx = self.messages_tx = 0
        self.send_lag_us = array("q")
        self.connect_us = array("q")
        self.open_start = self.open_end = 0.0
        self.marks: dict[str, tuple[int, int, int, int, float, int]] = {}
        self.handlers = {
            "FULL_STATE": self.on_full_state,
            "DELTA_UPDATE": self.on_delta_xyt if cfg.xyt else self.on_delta,
            "PLAYER_JOINED": self.on_player_joined,
            "PLAYER_LEFT": self.on_player_left,
            "ERROR": self.on_error,
            "EVENT": self.on_event,
        }

    # -- pipe to the parent ---------------------------------------------

    async def receive(self) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)

    # -- lifecycle --------------------------------------------------------

    async def run(self) -> None:
        self.open_start = time.time()
        sem = asyncio.Semaphore(max(1, self.cfg.connect_concurrency // self.cfg.procs))
        await asyncio.gather(*(self.open_client(c, sem) for c in self.clients))
        self.open_end = time.time()
        self.conn.send({"kind": "joined", **self.join_report()})

        go = await self.receive()
        loop = asyncio.get_running_loop()
        base = loop.time() + (go["t0"] - time.time())
        cfg = self.cfg
        start_ms = (go["t0"] + cfg.warmup) * 1000
        self.t_window = (start_ms, start_ms + cfg.duration * 1000)
        loop.call_at(base + cfg.warmup, self.mark, "start")
        loop.call_at(base + cfg.warmup + cfg.duration, self.mark, "end")
        if not cfg.idle_mode:
            await asyncio.gather(self.send_loop(base), self.message_loop(base))
        await asyncio.sleep(max(0.0, base + cfg.warmup + cfg.duration - loop.time()))
        drained = await self.wait_quiet(cfg.drain)
        self.conn.send({"kind": "drained", "quiet": drained})

        await self.receive()  # the parent has its spectators' states: report ours
        quiet = await self.wait_quiet(cfg.drain)
        self.conn.send({"kind": "final", "quiet": quiet, **self.final_report()})
        self.closing = True
        await asyncio.gather(
            *(c.ws.close() for c in self.clients if c.ws is not None), return_exceptions=True
        )

    def mark(self, name: str) -> None:
        self.in_window = name == "start"
        self.marks[name] = (
            self.frames,
            self.bytes_rx,
            self.frames_tx,
            self.bytes_tx,
            time.process_time(),
            sum(c.ws.wire_rx for c in self.clients if isinstance(c.ws, CountingConnection)),
        )

    async def open_client(self, c: Client, sem: asyncio.Semaphore) -> None:
        async with sem:
            started = time.perf_counter()
            try:
                c.ws = await open_socket(self.cfg.url, self.cfg.join_timeout, self.cfg.encoding)
                c.joined = asyncio.get_running_loop().create_future()
                self.spawn(self.read_loop(c))
                await c.ws.send(
                    self.encode(
                        {
                            "type": "JOIN_ROOM",
                            "roomId": c.room,
                            "requestId": f"join-{c.idx}",
                            "payload": self.join_payload(c),
                        }
                    ),
                    text=self.text,
                )
                await asyncio.wait_for(c.joined, self.cfg.join_timeout)
            except Exception as exc:  # counted, reported, and the client is left out
                reason = str(exc) if isinstance(exc, JoinRefused) else type(exc).__name__
                status = getattr(getattr(exc, "response", None), "status_code", None)
                if status is not None:
                    reason = f"{reason} {status}"
                self.connect_failures[reason] += 1
                if c.ws is not None:
                    self.spawn(c.ws.close())
                c.ws = None
                return
            self.connect_us.append(int((time.perf_counter() - started) * 1e6))

    def join_payload(self, c: Client) -> dict[str, Any]:
        payload: dict[str, Any] = {"playerName": f"{NAME_PREFIX}{c.idx}"}
        if self.cfg.payload in ("move", XYT):
            payload["x"], payload["y"] = c.x, c.y
        return payload

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def wait_quiet(self, limit: float) -> bool:
        """Wait until no frame arrived for QUIET_SECONDS and no RESYNC is pending."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        seen = -1
        while loop.time() < deadline:
            if self.frames == seen and not any(c.resyncing for c in self.clients):
                return True
            seen = self.frames
            await asyncio.sleep(QUIET_SECONDS)
        return False

    # -- sending ----------------------------------------------------------

    async def send_loop(self, base: float) -> None:
        """The STATE_UPDATEs: every client's slots, send lag measured."""
        make = (
            self.make_blob if self.cfg.blob_bytes else self.make_xyt if self.cfg.xyt
            else self.make_move
        )

        def build(c: Client, k: int) -> dict[str, Any]:
            return {"type": "STATE_UPDATE", "roomId": c.room, "payload": make(c, k)}

        await self.paced(base, self.cfg.rate, lambda c: (c.off, c.last), build, self.send_lag_us)

    async def message_loop(self, base: float) -> None:
        """The MESSAGEs (``--messages-per-second``), relayed by the room as EVENTs (§11)."""
        if self.cfg.messages_per_second <= 0:
            return

        def build(c: Client, k: int) -> dict[str, Any]:
            self.messages_tx += 1
            return {"type": "MESSAGE", "roomId": c.room,
                    "payload": {"kind": PING_KIND, "data": {"t": time_ns() // 1000, "s": k}}}

        await self.paced(base, self.cfg.messages_per_second, lambda c: (c.msg_off, c.msg_last),
                         build, None)

    async def paced(
        self,
        base: float,
        rate: float,
        slots: Any,
        build: Any,
        lag: array | None,
    ) -> None:
        """Send every due slot in time order from one task (no sleep drift, no per-client timer).

        ``slots(c)`` gives a client's offset and last slot number; ``build(c, k)``
        its message for slot ``k``.
        """
        loop = asyncio.get_running_loop()
        period = 1.0 / rate
        clients = sorted((c for c in self.clients if c.ws is not None), key=lambda c: slots(c)[0])
        if not clients:
            return
        plan = [(c, *slots(c)) for c in clients]
        encode, text = self.encode, self.text
        for k in range(1, max(last for _, _, last in plan) + 1):
            slot = base + (k - 1) * period
            for c, off, last in plan:
                ws = c.ws
                if k > last or ws is None:
                    continue
                due = slot + off
                now = loop.time()
                if due > now + 0.0005:
                    await asyncio.sleep(due - now)
                    now = loop.time()
                if lag is not None:
                    lag.append(int((now - due) * 1e6))
                data = encode(build(c, k))
                if ws.transport.get_write_buffer_size() < WRITE_BUFFER_LIMIT:
                    if not send_now(ws, data, text):
                        continue
                else:
                    try:
                        await ws.send(data, text=text)
                    except ConnectionClosed:
                        continue
                self.frames_tx += 1
                self.bytes_tx += len(data)

    def make_move(self, c: Client, seq: int) -> dict[str, Any]:
        bound = self.bound
        x = c.x + c.vx
        if not 0 <= x <= bound:
            c.vx = -c.vx
            x = c.x + c.vx
        y = c.y + c.vy
        if not 0 <= y <= bound:
            c.vy = -c.vy
            y = c.y + c.vy
        c.x, c.y = x, y
        return {"x": x, "y": y, "t": time_ns() // 1000, "s": seq}

    def make_xyt(self, c: Client, seq: int) -> dict[str, Any]:
        """Exactly ``{x, y, t}``: integers random-walking ±5 inside 0..bound, and the send
        time in epoch ms as a float (as Node's ``performance.timeOrigin + performance.now()``).
        No ``s``: Colyseus's peer sends none, and its bytes would skew the comparison."""
        step, bound = self.rng.randint, int(self.bound)
        x = min(bound, max(0, c.x + step(-XYT_STEP, XYT_STEP)))
        y = min(bound, max(0, c.y + step(-XYT_STEP, XYT_STEP)))
        c.x, c.y = x, y
        return {"x": x, "y": y, "t": time_ns() / 1e6}

    def make_blob(self, c: Client, seq: int) -> dict[str, Any]:
        n = self.cfg.blob_bytes
        start = seq % n
        return {"b": self.blob_base[start : start + n], "t": time_ns() // 1000, "s": seq}

    # -- receiving --------------------------------------------------------

    async def read_loop(self, c: Client) -> None:
        ws = c.ws
        assert ws is not None
        recv = ws.recv
        handlers = self.handlers
        # bin1 keeps names per socket: one decoder per connection
        decode = bin_codec.Decoder().decode if self.cfg.encoding == "bin1" else self.decode
        try:
            while not c.observer:  # a passive client: it decodes only until its join
                data = await recv(decode=False)
                self.frames += 1
                self.bytes_rx += len(data)
                if c.state is None:
                    msg = decode(data)
                    if msg.get("type") in ("FULL_STATE", "ERROR"):
                        handlers[msg["type"]](c, msg)
                    if c.state is not None and isinstance(ws, CountingConnection):
                        ws.want_counter = FrameCounter(self)  # the rest: counted only
            while True:
                data = await recv(decode=False)
                self.frames += 1
                self.bytes_rx += len(data)
                try:
                    msg = decode(data)
                    handler = handlers.get(msg.get("type"))
                    if handler is not None:
                        handler(c, msg)
                except Exception:
                    self.tool_errors += 1
                    self.tool_error_sample = self.tool_error_sample or traceback.format_exc()
        except ConnectionClosed:
            if not self.closing and c.state is not None:
                self.disconnects += 1
            if c.joined is not None and not c.joined.done():
                c.joined.set_exception(JoinRefused("closed before FULL_STATE"))

    def in_chain(self, c: Client, msg: dict[str, Any]) -> bool:
        """Check the per-connection version chain; on a gap count it and RESYNC as clients do."""
        if c.resyncing or c.state is None:
            return False
        if msg.get("baseVersion") != c.version:
            self.gaps += 1
            c.resyncing = True
            if c.ws is not None:
                self.spawn(c.ws.send(self.encode({"type": "RESYNC", "roomId": c.room}),
                                     text=self.text))
            return False
        c.version = msg.get("version")
        return True

    def learn(self, pid: str, player: Any) -> None:
        """Map a bench player's id to its seq window, from the playerName it joined with."""
        if pid in self.windows or type(player) is not dict:
            return
        name = player.get("playerName")
        if (
            type(name) is str
            and name.startswith(NAME_PREFIX)
            and name[len(NAME_PREFIX) :].isdigit()
        ):
            index = int(name[len(NAME_PREFIX) :])
            self.windows[pid] = self.cfg.seq_window(index)
            self.msg_windows[pid] = self.cfg.message_window(index)

    def on_full_state(self, c: Client, msg: dict[str, Any]) -> None:
        payload = msg.get("payload") or {}
        state = payload.get("state") or {}
        old = c.state
        c.state = state
        c.version = msg.get("version")
        c.resyncing = False
        players = state.get("players") or {}
        for pid, player in players.items():
            self.learn(pid, player)
        if old is None:  # the answer to our JOIN_ROOM
            c.pid = payload.get("playerId")
            me = players.get(c.pid)
            if (
                type(me) is dict
                and type(me.get("x")) in (int, float)
                and type(me.get("y")) in (int, float)
            ):
                c.x, c.y = me["x"], me["y"]
            if c.joined is not None and not c.joined.done():
                c.joined.set_result(None)
            return
        # A RESYNC answer: updates it jumped over were recovered, not delivered.
        old_players = old.get("players") or {}
        for pid, player in players.items():
            window = self.windows.get(pid)
            if window is None or pid == c.pid or type(player) is not dict:
                continue
            before = old_players.get(pid)
            low = before.get("s", 0) if type(before) is dict else 0
            high = player.get("s", 0)
            if high > low:
                self.resynced += overlap(low, high, window)

    def on_delta(self, c: Client, msg: dict[str, Any]) -> None:
        """Apply a DELTA_UPDATE to the mirror and count what it delivered.

        The hot path of the tool (one pass per player patch, everything inlined).
        A receiver that sees sender ``pid`` go from seq ``low`` to ``high`` got every
        seq in between: those were superseded by the newer state (delivered, no
        latency sample) and ``high`` itself was observed (one latency sample).
        """
        if not self.in_chain(c, msg):
            return
        state = c.state
        assert state is not None
        payload = msg.get("payload") or {}
        changes = payload.get("players")
        for key, value in payload.items():
            if key != "players" or type(value) is not dict:
                merged = merge_patch(state.get(key), value)
                if merged is None:
                    state.pop(key, None)
                else:
                    state[key] = merged
        if type(changes) is not dict:
            return
        players = state.get("players")
        if type(players) is not dict:
            players = state["players"] = {}
        me, windows, in_window, latency = c.pid, self.windows, self.in_window, self.latency_us
        now_us = time_ns() // 1000
        delivered = observed = received = duplicates = 0
        for pid, patch in changes.items():
            if type(patch) is not dict:
                if patch is None:
                    players.pop(pid, None)
                else:
                    players[pid] = patch
                continue
            old = players.get(pid)
            if type(old) is dict:
                low = old.get("s", 0)
                for field, v in patch.items():
                    if v is None:
                        old.pop(field, None)
                    elif type(v) is dict:
                        old[field] = merge_patch(old.get(field), v)
                    else:
                        old[field] = v
            else:
                low = 0
                players[pid] = merge_patch(None, patch)
            high = patch.get("s")
            if high is None or pid == me:
                continue
            if high <= low:
                duplicates += 1
                continue
            if in_window:
                received += high - low
            window = windows.get(pid)
            if window is None:
                continue
            first, last = window
            lo = low + 1 if low >= first else first
            hi = high if high < last else last
            if hi >= lo:
                delivered += hi - lo + 1
            if first <= high <= last:
                sent_us = patch.get("t")
                if type(sent_us) is int:
                    observed += 1
                    latency.append(now_us - sent_us)
        self.delivered += delivered
        self.observed += observed
        self.rx_deliveries += received
        self.duplicates += duplicates

    def on_delta_xyt(self, c: Client, msg: dict[str, Any]) -> None:
        """``--payload xyt``: apply a DELTA_UPDATE and count what it carried.

        Without sequence numbers a receiver cannot tell how many moves a patch
        superseded, so there is no delivered count: delivery shows as convergence.
        Each patch of another member whose ``t`` is newer than the mirror's is one
        change received (``rx_deliveries`` while in the window); when that ``t`` falls
        inside the window it is *observed* and gives one latency sample (now − t).
        A ``t`` not newer than the mirror's is a duplicate.
        """
        if not self.in_chain(c, msg):
            return
        state = c.state
        assert state is not None
        payload = msg.get("payload") or {}
        changes = payload.get("players")
        if type(changes) is dict:
            players = state.get("players")
            if type(players) is not dict:
                players = {}
            start, end = self.t_window
            now_ms = time_ns() / 1e6
            received = observed = duplicates = 0
            latency = self.latency_us
            for pid, patch in changes.items():
                if pid == c.pid or type(patch) is not dict:
                    continue
                t = patch.get("t")
                if type(t) is not float and type(t) is not int:
                    continue
                old = players.get(pid)
                before = old.get("t") if type(old) is dict else None
                if before is not None and t <= before:
                    duplicates += 1
                    continue
                received += 1
                if start <= t < end:
                    observed += 1
                    latency.append(int((now_ms - t) * 1000))
            self.observed += observed
            if self.in_window:
                self.rx_deliveries += received
            self.duplicates += duplicates
        c.state = merge_patch(state, payload)

    def on_player_joined(self, c: Client, msg: dict[str, Any]) -> None:
        if not self.in_chain(c, msg):
            return
        payload = msg.get("payload") or {}
        pid, player = payload.get("playerId"), payload.get("state") or {}
        c.state.setdefault("players", {})[pid] = player  # type: ignore[union-attr]
        self.learn(pid, player)

    def on_player_left(self, c: Client, msg: dict[str, Any]) -> None:
        if not self.in_chain(c, msg):
            return
        pid = (msg.get("payload") or {}).get("playerId")
        c.state.setdefault("players", {}).pop(pid, None)  # type: ignore[union-attr]

    def on_event(self, c: Client, msg: dict[str, Any]) -> None:
        """An EVENT relayed from another member's ``bench.ping``: count it, time it."""
        payload = msg.get("payload") or {}
        data = payload.get("data")
        if payload.get("kind") != PING_KIND or type(data) is not dict:
            return
        if self.in_window:
            self.events_rx += 1
        window = self.msg_windows.get(payload.get("from"))  # type: ignore[arg-type]
        seq, sent_us = data.get("s"), data.get("t")
        if window is None or type(seq) is not int or not window[0] <= seq <= window[1]:
            return
        self.events_delivered += 1
        if type(sent_us) is int:
            self.event_latency_us.append(time_ns() // 1000 - sent_us)

    def on_error(self, c: Client, msg: dict[str, Any]) -> None:
        code = str((msg.get("payload") or {}).get("code"))
        self.errors[code] += 1
        if c.state is None and c.joined is not None and not c.joined.done():
            c.joined.set_exception(JoinRefused(code))

    # -- reports ----------------------------------------------------------

    def join_report(self) -> dict[str, Any]:
        joined: Counter[str] = Counter()
        observers: Counter[str] = Counter()
        window_sends: Counter[str] = Counter()
        observer_sends: Counter[str] = Counter()
        window_messages: Counter[str] = Counter()
        for c in self.clients:
            if c.ws is not None:
                joined[c.room] += 1
                window_sends[c.room] += max(0, c.last - c.first + 1)
                if c.observer:
                    observers[c.room] += 1
                    observer_sends[c.room] += max(0, c.last - c.first + 1)
                first, last = self.cfg.message_window(c.idx)
                window_messages[c.room] += max(0, last - first + 1)
        return {
            "members": dict(joined),
            "observers": dict(observers),
            "window_sends": dict(window_sends),
            "observer_sends": dict(observer_sends),
            "window_messages": dict(window_messages),
            "connect_us": self.connect_us.tobytes(),
            "connect_failures": dict(self.connect_failures),
            "open_start": self.open_start,
            "open_end": self.open_end,
        }

    def final_report(self) -> dict[str, Any]:
        start = self.marks.get("start")
        end = self.marks.get("end")
        window = (
            [b - a for a, b in zip(start, end, strict=True)]
            if start and end
            else [0, 0, 0, 0, 0.0, 0]
        )
        return {
            "frames_window": window[0],
            "bytes_rx_window": window[1],
            "frames_tx_window": window[2],
            "bytes_tx_window": window[3],
            "cpu_window": window[4],
            "wire_rx_window": window[5],
            "frames_total": self.frames,
            "sent_total": self.frames_tx,
            "delivered": self.delivered,
            "observed": self.observed,
            "resynced": self.resynced,
            "rx_deliveries": self.rx_deliveries,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "disconnects": self.disconnects,
            "errors": dict(self.errors),
            "tool_errors": self.tool_errors,
            "tool_error_sample": self.tool_error_sample,
            "latency_us": self.latency_us.tobytes(),
            "event_latency_us": self.event_latency_us.tobytes(),
            "events_delivered": self.events_delivered,
            "events_rx_window": self.events_rx,
            "messages_sent_total": self.messages_tx,
            "send_lag_us": self.send_lag_us.tobytes(),
            "mirrors": [
                (c.room, c.version, state_digest(c.state))
                for c in self.clients
                if c.ws is not None and c.state is not None and c.observer
            ],
        }


def worker_main(cfg: Config, indices: list[int], conn: Any) -> None:
    raise_open_files_limit()
    try:
        asyncio.run(Worker(cfg, indices, conn).run())
    except BaseException:
        conn.send({"kind": "crashed", "traceback": traceback.format_exc()})
        raise


# --------------------------------------------------------------------------
# Parent: coordination, spectators, the report
# --------------------------------------------------------------------------


class WorkerFailed(RuntimeError):
    pass


async def gather_from(conns: list[Any], kind: str) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    messages = await asyncio.gather(*(loop.run_in_executor(None, c.recv) for c in conns))
    for message in messages:
        if message.get("kind") != kind:
            raise WorkerFailed(message.get("traceback") or f"expected {kind}, got {message}")
    return messages


async def sleep_until(epoch: float) -> None:
    await asyncio.sleep(max(0.0, epoch - time.time()))


async def spectate(cfg: Config, room: str) -> tuple[int | None, str | None]:
    """Join ``room`` as a spectator and return the version and digest of its FULL_STATE."""
    try:
        ws = await open_socket(cfg.url, cfg.join_timeout)
    except Exception:
        return None, None
    try:
        await ws.send(
            dumps({"type": "JOIN_ROOM", "roomId": room, "payload": {"spectate": True}}), text=True
        )
        async with asyncio.timeout(cfg.join_timeout):
            while True:
                msg = loads(await ws.recv(decode=False))
                if msg.get("type") == "FULL_STATE":
                    return msg.get("version"), state_digest(msg["payload"]["state"])
                if msg.get("type") == "ERROR":
                    return None, None
    except Exception:
        return None, None
    finally:
        await ws.close()


def percentiles(values: array, scale: float) -> dict[str, Any]:
    data = sorted(values)
    n = len(data)
    if not n:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}

    def pick(q: float) -> float:
        return round(data[min(n - 1, max(0, math.ceil(q * n) - 1))] * scale, 3)

    return {
        "count": n,
        "p50": pick(0.5),
        "p90": pick(0.9),
        "p99": pick(0.99),
        "max": round(data[-1] * scale, 3),
    }


def merged_array(reports: list[dict[str, Any]], key: str) -> array:
    out = array("q")
    for report in reports:
        out.frombytes(report[key])
    return out


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


async def coordinate(cfg: Config, conns: list[Any]) -> dict[str, Any]:
    rss_before = proc_rss_bytes(cfg.pids)
    joined = await gather_from(conns, "joined")
    if cfg.idle_mode:
        await asyncio.sleep(1.0)  # let the server settle after the join storm
    rss_joined = proc_rss_bytes(cfg.pids)
    if not cfg.idle_mode:
        # the server's first HTTP request (Django's lazy setup) stalls its loop for
        # ~0.2 s: make it now, not in the window where /metrics is read
        await asyncio.to_thread(world.view_counters, cfg.url)

    t0 = time.time() + START_DELAY_SECONDS
    for conn in conns:
        conn.send({"kind": "go", "t0": t0})
    await sleep_until(t0 + cfg.warmup)
    cpu_start, machine_start = proc_cpu_seconds(cfg.pids), machine_cpu_ticks()
    # (read beside the window: a busy server may answer /metrics late)
    views_start = asyncio.ensure_future(asyncio.to_thread(world.view_counters, cfg.url))
    await sleep_until(t0 + cfg.warmup + cfg.duration)
    cpu_end, machine_end = proc_cpu_seconds(cfg.pids), machine_cpu_ticks()
    views = world.views_report(
        await views_start, await asyncio.to_thread(world.view_counters, cfg.url))
    rss_end = proc_rss_bytes(cfg.pids)

    drained = await gather_from(conns, "drained")
    rooms = [cfg.room_id(i) for i in range(cfg.room_count)]
    spectators = dict(
        zip(rooms, await asyncio.gather(*(spectate(cfg, r) for r in rooms)), strict=True)
    )
    for conn in conns:
        conn.send({"kind": "report"})
    finals = await gather_from(conns, "final")

    server_cpu = None if cpu_start is None or cpu_end is None else cpu_end - cpu_start
    machine_busy = None
    if machine_start and machine_end and machine_end[1] > machine_start[1]:
        machine_busy = (machine_end[0] - machine_start[0]) / (machine_end[1] - machine_start[1])
    result = build_result(
        cfg,
        joined,
        drained,
        finals,
        spectators,
        server_cpu,
        {"before": rss_before, "joined": rss_joined, "end": rss_end},
    )
    result["machine"] = {
        "cores": os.cpu_count(),
        "busy_pct": rounded(machine_busy * 100, 1) if machine_busy is not None else None,
    }
    result["views"] = views
    if cfg.room_type == world.WORLD:
        # a member's mirror is its view (its neighbours), not the spectator's whole room,
        # and an update reaches its sender's neighbours only: neither check applies
        result["all_converged"] = None
        result["delivery_ratio"] = None
    return result


def build_result(
    cfg: Config,
    joined: list[dict[str, Any]],
    drained: list[dict[str, Any]],
    finals: list[dict[str, Any]],
    spectators: dict[str, tuple[int | None, str | None]],
    server_cpu: float | None,
    rss: dict[str, int | None],
) -> dict[str, Any]:
    duration = cfg.duration
    members: Counter[str] = Counter()
    observers: Counter[str] = Counter()
    observer_sends: Counter[str] = Counter()
    window_sends: Counter[str] = Counter()
    window_messages: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for report in joined:
        members.update(report["members"])
        observers.update(report["observers"])
        observer_sends.update(report["observer_sends"])
        window_sends.update(report["window_sends"])
        window_messages.update(report["window_messages"])
        failures.update(report["connect_failures"])
    clients = sum(members.values())
    # xyt: moves × members, as load.mjs counts for Colyseus (both servers send every
    # member the room's patch, its sender included); otherwise to the other members
    # (with --observe, to the observers only: each gets every send of its room but
    # its own)
    others = 0 if cfg.xyt else 1
    expected = sum(window_sends[room] * observers[room] - others * observer_sends[room]
                   for room in members)

    def total(key: str) -> int:
        return sum(report[key] for report in finals)

    errors: Counter[str] = Counter()
    for report in finals:
        errors.update(report["errors"])

    # convergence: every mirror equals its room's spectator FULL_STATE
    mirrors: dict[str, list[tuple[int, str]]] = {}
    for report in finals:
        for room, version, digest in report["mirrors"]:
            mirrors.setdefault(room, []).append((version, digest))
    unconverged = sorted(
        room
        for room, seen in mirrors.items()
        if spectators.get(room, (None, None))[1] is None
        or any((v, d) != spectators[room] for v, d in seen)
    )

    delivered = total("delivered")
    observed = total("observed")
    rx_deliveries = total("rx_deliveries")
    cpu_per_proc = [report["cpu_window"] for report in finals]
    if cfg.xyt:  # no sequence numbers: per delivery means per expected delivery
        delivered_or_none: int | None = None
        per_delivery = expected
    else:
        delivered_or_none, per_delivery = delivered, rx_deliveries
    # --observe: the server delivered to every client, the observers counted theirs
    per_delivery = per_delivery * clients // max(sum(observers.values()), 1)
    result: dict[str, Any] = {
        "bench": "kasagi-bench-load",
        "mode": "idle" if cfg.idle_mode else "load",
        "config": {**asdict(cfg), "pids": list(cfg.pids)},
        "clients": clients,
        "observers": sum(observers.values()),
        "rooms": len(members),
        "sent": sum(window_sends.values()),
        "sent_total": total("sent_total"),
        "expected_deliveries": expected,
        "deliveries": delivered_or_none,
        "observed": observed,
        "superseded": None if cfg.xyt else delivered - observed,
        "resynced": None if cfg.xyt else total("resynced"),
        "delivery_ratio": rounded(delivered / expected, 4) if expected and not cfg.xyt else None,
        "deliveries_per_s": rounded(per_delivery / duration, 1),
        "changes_rx_per_s": rounded(rx_deliveries / duration, 1) if cfg.xyt else None,
        "frames_rx_per_s": rounded(total("frames_window") / duration, 1),
        "bytes_rx_per_client_per_s": rounded(
            total("bytes_rx_window") / duration / max(clients, 1), 1
        ),
        "wire_bytes_rx_per_client_per_s": rounded(
            total("wire_rx_window") / duration / max(clients, 1), 1
        ),
        "bytes_tx_per_client_per_s": rounded(
            total("bytes_tx_window") / duration / max(clients, 1), 1
        ),
        "latency_ms": percentiles(merged_array(finals, "latency_us"), 0.001),
        "send_lag_ms": percentiles(merged_array(finals, "send_lag_us"), 0.001),
        "connect_ms": percentiles(merged_array(joined, "connect_us"), 0.001),
        "connect_failures": dict(failures),
        "gaps": total("gaps"),
        "duplicates": total("duplicates"),
        "disconnects": total("disconnects"),
        "errors": dict(errors),
        "tool_errors": total("tool_errors"),
        "quiet_at_end": all(r["quiet"] for r in drained) and all(r["quiet"] for r in finals),
        "server": {
            "pids": list(cfg.pids),
            "cpu_s": rounded(server_cpu),
            "cpu_pct": rounded(server_cpu / duration * 100, 1) if server_cpu is not None else None,
            "cpu_s_per_1000_deliveries": (
                rounded(server_cpu / per_delivery * 1000, 4)
                if server_cpu is not None and per_delivery
                else None
            ),
            "rss_mb": rounded(rss["end"] / 2**20, 1) if rss["end"] is not None else None,
            "rss_mb_before": rounded(rss["before"] / 2**20, 1)
            if rss["before"] is not None
            else None,
        },
        "tool": {
            "procs": cfg.procs,
            "cpu_pct": rounded(sum(cpu_per_proc) / duration * 100, 1),
            "max_proc_cpu_pct": rounded(max(cpu_per_proc, default=0.0) / duration * 100, 1),
        },
        "rooms_total": len(mirrors),
        "rooms_converged": len(mirrors) - len(unconverged),
        "all_converged": bool(mirrors) and not unconverged,
        "unconverged_rooms": unconverged[:10],
        "idle": None,
        "events": None,
    }
    if cfg.messages_per_second > 0:
        expected_events = sum(window_messages[room] * (members[room] - 1) for room in members)
        delivered_events = total("events_delivered")
        result["events"] = {
            "messages_per_second": cfg.messages_per_second,
            "kind": PING_KIND,
            "sent": sum(window_messages.values()),
            "sent_total": total("messages_sent_total"),
            "expected": expected_events,
            "delivered": delivered_events,
            "delivery_ratio": rounded(delivered_events / expected_events, 4)
            if expected_events else None,
            "events_per_s": rounded(total("events_rx_window") / duration, 1),
            "latency_ms": percentiles(merged_array(finals, "event_latency_us"), 0.001),
        }
    sample = next((r["tool_error_sample"] for r in finals if r["tool_error_sample"]), "")
    if sample:
        result["tool_error_sample"] = sample[-2000:]
    if cfg.idle_mode:
        opened = max(r["open_end"] for r in joined) - min(r["open_start"] for r in joined)
        delta = (
            rss["joined"] - rss["before"]
            if rss["joined"] is not None and rss["before"] is not None
            else None
        )
        result["idle"] = {
            "connections": clients,
            "open_s": round(opened, 3),
            "connections_per_s": round(clients / opened, 1) if opened > 0 else None,
            "rss_mb_before": rounded(rss["before"] / 2**20, 1)
            if rss["before"] is not None
            else None,
            "rss_mb_joined": rounded(rss["joined"] / 2**20, 1)
            if rss["joined"] is not None
            else None,
            "rss_kb_per_connection": round(delta / 1024 / clients, 2)
            if delta and clients
            else None,
        }
    return result


def run(cfg: Config) -> dict[str, Any]:
    """Start the workers, coordinate them, and return the merged result."""
    raise_open_files_limit()
    ctx = multiprocessing.get_context("spawn")
    procs = max(1, min(cfg.procs, cfg.client_count))
    if cfg.room_type == world.WORLD:
        world.create_world_rooms(cfg.url, [cfg.room_id(i) for i in range(cfg.room_count)])
    cfg = Config(**{**asdict(cfg), "procs": procs})
    conns, workers = [], []
    for w in range(procs):
        parent_end, child_end = ctx.Pipe()
        indices = list(range(w, cfg.client_count, procs))
        proc = ctx.Process(target=worker_main, args=(cfg, indices, child_end), daemon=True)
        proc.start()
        child_end.close()
        conns.append(parent_end)
        workers.append(proc)
    try:
        result = asyncio.run(coordinate(cfg, conns))
    except BaseException:
        for proc in workers:
            proc.kill()
        raise
    for proc in workers:
        proc.join(timeout=15)
        if proc.is_alive():
            proc.kill()
    return result


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def parse_result(stdout: str) -> dict[str, Any]:
    """The result object from the tool's stdout (its last JSON line, prefixed or bare)."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith(RESULT_PREFIX):
            line = line[len(RESULT_PREFIX) :]
        if line.startswith("{"):
            return orjson.loads(line)
    raise ValueError("no result line in the output")


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        text = f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.1f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text}{unit}"


def event_lines(result: dict[str, Any]) -> list[str]:
    """The table's lines about MESSAGE/EVENT (none without ``--messages-per-second``)."""
    events = result.get("events")
    if not events:
        return []
    lat = events["latency_ms"]
    return [
        f"  messages sent       {fmt(events['sent'])} in window ({fmt(events['sent_total'])} "
        f"total), {events['messages_per_second']:g}/s per client, kind {events['kind']}",
        f"  events delivered    {fmt(events['delivered'])} of {fmt(events['expected'])} expected"
        f" ({fmt(100 * (events['delivery_ratio'] or 0), ' %')}); {fmt(events['events_per_s'])}/s",
        f"  events send->seen   p50 {fmt(lat['p50'])}  p90 {fmt(lat['p90'])}  "
        f"p99 {fmt(lat['p99'])}  max {fmt(lat['max'])} ms  (n={fmt(lat['count'])})",
    ]


def delivery_lines(result: dict[str, Any]) -> list[str]:
    """The table's delivery lines: counted by sequence number, or (xyt) expected only."""
    if result["config"]["payload"] == XYT:
        return [
            f"  deliveries          {fmt(result['expected_deliveries'])} expected (moves x "
            f"members; xyt has no seq: delivery shows as convergence); "
            f"observed {fmt(result['observed'])} in-window t of others",
            f"  deliveries/s        {fmt(result['deliveries_per_s'])} expected, changes "
            f"received {fmt(result['changes_rx_per_s'])}/s",
        ]
    return [
        f"  deliveries          {fmt(result['deliveries'])} of "
        f"{fmt(result['expected_deliveries'])}"
        f" expected ({fmt(100 * (result['delivery_ratio'] or 0), ' %')}); "
        f"observed {fmt(result['observed'])}, superseded {fmt(result['superseded'])}, "
        f"resynced {fmt(result['resynced'])}",
        f"  deliveries/s        {fmt(result['deliveries_per_s'])}",
    ]


def table(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lat, lag, con = result["latency_ms"], result["send_lag_ms"], result["connect_ms"]
    server, tool = result["server"], result["tool"]
    lines = [f"Kasagi bench  {cfg['url']}  ({result['mode']}, {tool['procs']} worker proc(s))"]
    if result["mode"] == "load":
        lines.append(
            f"  workload            {result['clients']} clients, {result['rooms']} rooms, "
            f"{cfg['rate']:g} Hz, payload {cfg['payload']}, room type {cfg['room_type']}, "
            f"{cfg['duration']:g} s measured after {cfg['warmup']:g} s warm-up"
        )
        if result["observers"] < result["clients"]:
            lines.append(f"  observers           {result['observers']} of the clients measure"
                         " (--observe): deliveries, latency, gaps and convergence are theirs")
    lines += [
        f"  connect+join        p50 {fmt(con['p50'], ' ms')}  p99 {fmt(con['p99'], ' ms')}  "
        f"failures {result['connect_failures'] or 0}",
    ]
    if result["mode"] == "load":
        lines += [
            f"  updates sent        {fmt(result['sent'])} in window ({fmt(result['sent_total'])} "
            f"total)  send lag p99 {fmt(lag['p99'], ' ms')}",
            *delivery_lines(result),
            f"  latency send->seen  p50 {fmt(lat['p50'])}  p90 {fmt(lat['p90'])}  "
            f"p99 {fmt(lat['p99'])}  max {fmt(lat['max'])} ms  (n={fmt(lat['count'])})",
            *event_lines(result),
            f"  frames received/s   {fmt(result['frames_rx_per_s'])}   bytes/client/s "
            f"rx {fmt(result['bytes_rx_per_client_per_s'])} "
            f"(wire {fmt(result['wire_bytes_rx_per_client_per_s'])})  "
            f"tx {fmt(result['bytes_tx_per_client_per_s'])}",
        ]
    lines += [
        f"  chain gaps          {result['gaps']}   duplicates {result['duplicates']}   "
        f"disconnects {result['disconnects']}   errors {result['errors'] or 0}",
        f"  server              cpu {fmt(server['cpu_pct'], ' %')} ({fmt(server['cpu_s'], ' s')}),"
        f" {fmt(server['cpu_s_per_1000_deliveries'], ' s')} per 1000 deliveries, "
        f"rss {fmt(server['rss_mb'], ' MB')}",
        f"  tool                cpu {fmt(tool['cpu_pct'], ' %')} "
        f"(busiest proc {fmt(tool['max_proc_cpu_pct'], ' %')})   machine busy "
        f"{fmt(result['machine']['busy_pct'], ' %')} of {result['machine']['cores']} cores",
        f"  rooms converged     {result['rooms_converged']}/{result['rooms_total']}"
        + ("" if result["all_converged"] is not None else " (views: not compared)")
        + ("" if result["quiet_at_end"] else "  (traffic still arriving at the end)"),
    ]
    views = result.get("views")
    if views:
        lines.append(
            f"  views               {fmt(views['encodings_per_flush'])} encodings per flush for "
            f"{fmt(views['members_per_flush'])} members ({fmt(views['members_per_encoding'])} "
            f"members per encoding, {fmt(views['flushes'])} flushes)")
    if result["idle"]:
        idle = result["idle"]
        lines.append(
            f"  idle                {idle['connections']} connections opened in "
            f"{fmt(idle['open_s'], ' s')}; server rss {fmt(idle['rss_mb_before'], ' MB')} -> "
            f"{fmt(idle['rss_mb_joined'], ' MB')} = {fmt(idle['rss_kb_per_connection'], ' KiB')}"
            " per connection"
        )
    if tool["max_proc_cpu_pct"] and tool["max_proc_cpu_pct"] > 85:
        lines.append(
            "  WARNING: a tool process was CPU-saturated; latencies and rates are bounds "
            "of the tool, not the server (try --procs 2)"
        )
    if result["tool_errors"]:
        lines.append(f"  WARNING: {result['tool_errors']} frames the tool could not process")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def payload_shape(text: str) -> str:
    if text in ("move", XYT):
        return text
    if text.startswith("blob:") and text[5:].isdigit() and int(text[5:]) > 0:
        return text
    raise argparse.ArgumentTypeError("payload is 'move', 'xyt' or 'blob:N' (N bytes)")


def pid_list(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.replace(",", " ").split())


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """The workload options, shared with bench.compare."""
    parser.add_argument("--clients", type=int, default=50, help="clients sending updates")
    parser.add_argument(
        "--rooms", type=int, default=5, help="rooms; client i joins room i %% rooms"
    )
    parser.add_argument("--rate", type=float, default=10.0, help="updates per second per client")
    parser.add_argument(
        "--payload",
        type=payload_shape,
        default="move",
        help="'move' (x, y in 0..1000, slow, with t and seq s), 'xyt' (exactly x, y"
        " random-walking ±5 and t in epoch ms: the Colyseus comparison) or 'blob:N'"
        " (an N-byte field)",
    )
    parser.add_argument(
        "--room-type",
        default="freeform",
        help="recorded in the report (rooms are auto-created); 'world' makes the rooms"
        " world rooms first (via /world/<roomId>/) and spreads their players evenly",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds sent before measuring")
    parser.add_argument(
        "--drain",
        type=float,
        default=5.0,
        help="max seconds to wait for in-flight frames at the end",
    )
    parser.add_argument(
        "--idle",
        type=int,
        default=0,
        help="idle mode: hold N joined connections, measure RSS per connection",
    )
    parser.add_argument("--procs", type=int, default=1, help="worker processes for the clients")
    parser.add_argument(
        "--connect-concurrency",
        type=int,
        default=50,
        help="handshakes in flight at once (all workers together)",
    )
    parser.add_argument(
        "--encoding",
        choices=sorted(WIRE),
        default="json",
        help="json text frames (json-deflate: offering permessage-deflate), or msgpack"
        " binary frames (subprotocol kasagi.msgpack), or bin1 binary frames (the compact"
        " codec, subprotocol kasagi.bin1)",
    )
    parser.add_argument(
        "--messages-per-second",
        type=float,
        default=0.0,
        help="MESSAGEs (kind bench.ping) per second per client, relayed to the room as EVENTs",
    )
    parser.add_argument(
        "--world-spread",
        type=float,
        default=0.0,
        help="--room-type world: side of the square a room's players are spread over "
        "(default: the density of 1,000 players on the 10,000-unit world)",
    )
    parser.add_argument(
        "--observe",
        type=int,
        default=None,
        help="every Nth client mirrors and measures (latency, deliveries, gaps); the "
        "others only receive (default 1: all; Kasagi only)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", default="ws://127.0.0.1:8080/sync")
    add_workload_arguments(parser)
    parser.add_argument(
        "--pids",
        type=pid_list,
        default=(),
        help="server pids (comma-separated) to sample CPU and RSS from /proc",
    )
    parser.add_argument(
        "--room-prefix",
        default=None,
        help="room id prefix, unique per run (default: bench-<time>-<pid>)",
    )
    parser.add_argument("--json-only", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    if args.idle <= 0 and (args.clients < 1 or args.rooms < 1 or args.rate <= 0):
        parser.error("--clients, --rooms and --rate must be positive")
    prefix = args.room_prefix or f"bench-{int(time.time()) % 1000000}-{os.getpid()}"
    cfg = Config(
        url=args.url,
        clients=args.idle if args.idle > 0 else args.clients,
        rooms=args.rooms,
        rate=args.rate,
        payload=args.payload,
        room_type=args.room_type,
        duration=args.duration,
        warmup=0.0 if args.idle > 0 else args.warmup,
        drain=args.drain,
        pids=args.pids,
        idle=args.idle,
        procs=args.procs,
        room_prefix=prefix,
        connect_concurrency=args.connect_concurrency,
        encoding=args.encoding,
        messages_per_second=args.messages_per_second,
        world_spread=args.world_spread,
        observe=args.observe or 1,
    )
    result = run(cfg)
    line = orjson.dumps(result).decode()
    if args.json_only:
        print(line)
    else:
        print(table(result))
        print(RESULT_PREFIX + line)
    return 0 if result["clients"] else 1  # no client could join: nothing was measured


if __name__ == "__main__":
    sys.exit(main())
