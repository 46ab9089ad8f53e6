"""Collaborative typing on Yjs documents (§16): keystroke-to-other-editors latency,
bytes per client, server CPU, and what the document costs to store.

``--rooms`` rooms of ``--editors`` editors each; every editor is a pycrdt document
on its own socket (JSON), types one character ``--rate`` times a second (one Yjs
update, one DOC_UPDATE each: an insertion somewhere in the text, sometimes a
deletion) for ``--seconds``. The latency of a keystroke is the time from its
DOC_UPDATE being sent to the moment each other editor of the room receives the
relayed bytes (the server relays the same bytes, so they identify the
keystroke). Then every editor syncs once more, the texts of each room must be
equal, and a late joiner's DOC_SYNC answer (the server's whole merged document,
what persistence stores) is compared with the text's length.

``--server-pid`` reads the server process's CPU time (``/proc``) before and
after. Prints a table and, as the last line, one JSON object (``BENCH_RESULT``).
It connects only to ``--url``: keep that on the loopback. The bench client is a
single Python process: past a few thousand relayed frames a second it, not the
server, is what is measured (the table says how far behind it ran).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from pycrdt import Doc, Text
from websockets.asyncio.client import ClientConnection

from bench.load import RESULT_PREFIX, fmt, open_socket


@dataclass(frozen=True)
class Config:
    url: str = "ws://127.0.0.1:8080/sync"
    rooms: int = 20
    editors: int = 10
    rate: float = 5.0
    seconds: float = 20.0
    room: str = "bench-docs"
    server_pid: int | None = None
    seed: int = 1


@dataclass
class Editor:
    ws: ClientConnection
    room_id: str
    doc: Doc = field(default_factory=Doc)
    received_bytes: int = 0
    sent_bytes: int = 0
    answers: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)

    @property
    def text(self) -> Text:
        return self.doc.get("note", type=Text)

    async def send(self, frame: dict[str, Any]) -> None:
        data = orjson.dumps(frame)
        self.sent_bytes += len(data)
        await self.ws.send(data.decode())

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        request_id = f"r{len(self.answers)}-{random.random()}"
        future = self.answers[request_id] = asyncio.get_running_loop().create_future()
        await self.send({**frame, "roomId": self.room_id, "requestId": request_id})
        return await asyncio.wait_for(future, 60)

    async def sync(self) -> dict[str, Any]:
        vector = base64.b64encode(self.doc.get_state()).decode()
        return await self.request({"type": "DOC_SYNC",
                                   "payload": {"docId": "note", "stateVector": vector}})


class Run:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        #: update bytes → when they were sent (a keystroke's identity)
        self.sent_at: dict[bytes, float] = {}
        self.latencies: list[float] = []
        self.keystrokes = 0
        self.behind = 0.0

    async def read(self, editor: Editor) -> None:
        async for raw in editor.ws:
            editor.received_bytes += len(raw)
            frame = orjson.loads(raw)
            kind = frame.get("type")
            if kind in ("DOC_UPDATE", "DOC_SYNC"):
                update = base64.b64decode(frame["payload"]["update"])
                if kind == "DOC_UPDATE":
                    sent = self.sent_at.get(update)
                    if sent is not None:
                        self.latencies.append(time.perf_counter() - sent)
                editor.doc.apply_update(update)
            future = editor.answers.pop(frame.get("requestId"), None)
            if future is not None and not future.done():
                future.set_result(frame)

    async def type(self, editor: Editor, rng: random.Random, until: float) -> None:
        period = 1.0 / self.cfg.rate
        next_at = time.perf_counter() + rng.random() * period
        while next_at < until:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            self.behind = max(self.behind, time.perf_counter() - next_at)
            before = editor.doc.get_state()
            text = editor.text
            length = len(text)
            if length > 10 and rng.random() < 0.15:
                del text[rng.randrange(length)]
            else:
                text.insert(rng.randint(max(0, length - 20), length), rng.choice("etaoin "))
            update = editor.doc.get_update(before)
            self.sent_at[update] = time.perf_counter()
            self.keystrokes += 1
            await editor.send({"type": "DOC_UPDATE", "roomId": editor.room_id,
                               "payload": {"docId": "note",
                                           "update": base64.b64encode(update).decode()}})
            next_at += period


def cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench(cfg: Config) -> dict[str, Any]:
    run = Run(cfg)
    rng = random.Random(cfg.seed)
    suffix = os.urandom(3).hex()
    rooms = [f"{cfg.room}-{suffix}-{n}" for n in range(cfg.rooms)]
    editors: list[Editor] = []
    readers = []
    for room_id in rooms:
        for n in range(cfg.editors):
            editor = Editor(await open_socket(cfg.url, 30.0), room_id)
            await editor.send({"type": "JOIN_ROOM", "roomId": room_id,
                               "payload": {"playerName": f"e{n}"}, "requestId": "join"})
            editor.answers["join"] = asyncio.get_running_loop().create_future()
            readers.append(asyncio.create_task(run.read(editor)))
            await asyncio.wait_for(editor.answers["join"], 30)
            editors.append(editor)
    await asyncio.gather(*(e.sync() for e in editors))
    cpu_before, started = cpu_seconds(cfg.server_pid), time.perf_counter()
    until = started + cfg.seconds
    await asyncio.gather(*(run.type(e, random.Random(rng.random()), until) for e in editors))
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds(cfg.server_pid)
    await asyncio.gather(*(e.request({"type": "PING"}) for e in editors))
    for _ in range(2):
        await asyncio.gather(*(e.sync() for e in editors))
    converged = True
    texts: list[int] = []
    states: list[int] = []
    for room_id in rooms:
        members = [e for e in editors if e.room_id == room_id]
        converged &= len({str(e.text) for e in members}) == 1
        late = Editor(await open_socket(cfg.url, 30.0), room_id)
        readers.append(asyncio.create_task(run.read(late)))
        late.answers["join"] = asyncio.get_running_loop().create_future()
        await late.send({"type": "JOIN_ROOM", "roomId": room_id, "requestId": "join",
                         "payload": {"spectate": True}})
        await asyncio.wait_for(late.answers["join"], 30)
        answer = await late.sync()
        states.append(len(base64.b64decode(answer["payload"]["update"])))
        texts.append(len(str(members[0].text)))
        converged &= str(late.text) == str(members[0].text)
        await late.ws.close()
    for editor in editors:
        await editor.ws.close()
    for reader in readers:
        reader.cancel()
    lat = sorted(run.latencies)
    expected = run.keystrokes * (cfg.editors - 1)
    pct = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2)) if lat else (
        lambda q: None)
    return {
        "bench": "kasagi-bench-documents",
        "config": asdict(cfg),
        "keystrokes": run.keystrokes,
        "keystrokes_per_second": round(run.keystrokes / elapsed, 1),
        "relays_expected": expected,
        "relays_seen": len(lat),
        "latency_ms": {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99),
                       "max": round(lat[-1] * 1000, 2) if lat else None,
                       "mean": round(statistics.fmean(lat) * 1000, 2) if lat else None},
        "client_behind_ms": round(run.behind * 1000, 1),
        "received_bytes_per_client_per_second": round(
            sum(e.received_bytes for e in editors) / len(editors) / elapsed),
        "sent_bytes_per_client_per_second": round(
            sum(e.sent_bytes for e in editors) / len(editors) / elapsed),
        "server_cpu_seconds": None if cpu_before is None or cpu_after is None
        else round(cpu_after - cpu_before, 2),
        "elapsed_seconds": round(elapsed, 2),
        "text_chars_mean": round(statistics.fmean(texts), 1),
        "document_bytes_mean": round(statistics.fmean(states), 1),
        "converged": converged,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=Config.url)
    parser.add_argument("--rooms", type=int, default=Config.rooms)
    parser.add_argument("--editors", type=int, default=Config.editors)
    parser.add_argument("--rate", type=float, default=Config.rate)
    parser.add_argument("--seconds", type=float, default=Config.seconds)
    parser.add_argument("--room", default=Config.room)
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--seed", type=int, default=Config.seed)
    args = parser.parse_args(argv)
    cfg = Config(**vars(args))
    result = asyncio.run(bench(cfg))
    rows = [
        ("keystrokes (per second)",
         f"{result['keystrokes']:,} ({result['keystrokes_per_second']})"),
        ("relays seen / expected", f"{result['relays_seen']:,} / {result['relays_expected']:,}"),
        ("latency p50 / p99 / max", " / ".join(
            fmt(result["latency_ms"][k], " ms") for k in ("p50", "p99", "max"))),
        ("bytes in per client", fmt(result["received_bytes_per_client_per_second"], " B/s")),
        ("server CPU", fmt(result["server_cpu_seconds"], " s")),
        ("text / document", f"{result['text_chars_mean']} chars / "
                            f"{result['document_bytes_mean']} bytes"),
        ("client behind (max)", fmt(result["client_behind_ms"], " ms")),
        ("converged", str(result["converged"])),
    ]
    for name, value in rows:
        print(f"{name:<26} {value}")
    print(RESULT_PREFIX + orjson.dumps(result).decode())
    return 0 if result["converged"] else 1


if __name__ == "__main__":
    sys.exit(main())
