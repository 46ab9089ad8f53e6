"""What a short drop costs a member of a big room: recovery by version (§14) against FULL_STATE.

A writer fills a room with a drawing of about ``--state-kb`` kB (strokes: shared
entities of ~10 kB of points each), a member joins it and holds the state. Then,
``--runs`` times: the member's TCP connection is cut (no close handshake: a lost
network), the writer makes ``--changes`` small changes (cursor moves, a stroke
recoloured, a small stroke added), and the member resumes with its session
token. Each cycle is measured twice, alternating:

- **resumed**: the JOIN_ROOM names the state held (``sinceVersion``, ``epoch``),
  as both SDKs do; the answer is RESUMED then the missed changes. Counted: every
  byte received from the JOIN_ROOM until the member's version is the writer's.
- **full**: the same resume without ``sinceVersion`` (a 1.0 client); the
  answer is a FULL_STATE of the whole room. Counted the same way.

At the end a spectator's FULL_STATE checks that the member's mirror (FULL_STATE
plus every frame applied) is exactly the room. Prints a table and, as the last
line, one JSON object (``BENCH_RESULT {...}``, or bare with ``--json-only``).

It connects only to ``--url``: keep that on the loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection

from bench.load import RESULT_PREFIX, WIRE, fmt, merge_patch, open_socket, state_digest

STROKE_BYTES = 10_000
STATE_TYPES = ("DELTA_UPDATE", "PLAYER_JOINED", "PLAYER_LEFT")


@dataclass(frozen=True)
class Config:
    url: str = "ws://127.0.0.1:8080/sync"
    state_kb: int = 500
    changes: int = 20
    runs: int = 5
    room: str = "recovery"
    encoding: str = "json"
    timeout: float = 30.0


class Peer:
    """One socket speaking the wire contract, counting the bytes it receives."""

    def __init__(self, cfg: Config, ws: ClientConnection) -> None:
        self.cfg = cfg
        self.ws = ws
        self.encode, self.decode, self.text = WIRE[cfg.encoding]
        self.bytes_rx = 0
        self.frames_rx = 0

    @classmethod
    async def open(cls, cfg: Config) -> Peer:
        return cls(cfg, await open_socket(cfg.url, cfg.timeout, cfg.encoding))

    async def send(self, msg: dict[str, Any]) -> None:
        await self.ws.send(self.encode(msg), text=self.text)

    async def recv(self) -> dict[str, Any]:
        data = await asyncio.wait_for(self.ws.recv(decode=False), self.cfg.timeout)
        self.bytes_rx += len(data)
        self.frames_rx += 1
        return self.decode(data)

    async def expect(self, *types: str) -> dict[str, Any]:
        while True:
            msg = await self.recv()
            if msg.get("type") in types:
                return msg
            if msg.get("type") == "ERROR":
                raise RuntimeError(f"the server refused: {msg}")

    def cut(self) -> None:
        """Abort the TCP connection: the server sees a lost network, not a close."""
        self.ws.transport.abort()


class Member:
    """The member that drops and comes back: its mirror, token, epoch and version."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.peer: Peer | None = None
        self.state: dict[str, Any] = {}
        self.version = 0
        self.epoch: str | None = None
        self.token: str | None = None
        self.player_id: str | None = None

    def load(self, msg: dict[str, Any]) -> None:
        payload = msg["payload"]
        self.state = payload["state"]
        self.version = msg["version"]
        self.epoch = payload.get("epoch")
        self.token = payload.get("sessionToken") or self.token
        self.player_id = payload.get("playerId")

    def apply(self, msg: dict[str, Any]) -> None:
        if msg["baseVersion"] != self.version:
            raise RuntimeError(
                f"gap: at {self.version}, got {msg['baseVersion']}->{msg['version']}")
        payload = msg["payload"]
        if msg["type"] == "DELTA_UPDATE":
            self.state = merge_patch(self.state, payload)
        elif msg["type"] == "PLAYER_JOINED":
            self.state.setdefault("players", {})[payload["playerId"]] = payload["state"]
        else:
            self.state.setdefault("players", {}).pop(payload["playerId"], None)
        self.version = msg["version"]

    async def join(self) -> int:
        self.peer = await Peer.open(self.cfg)
        await self.peer.send({"type": "JOIN_ROOM", "roomId": self.cfg.room, "requestId": "join",
                              "payload": {"playerName": "member"}})
        self.load(await self.peer.expect("FULL_STATE"))
        return self.peer.bytes_rx

    async def resume(self, until: int, *, by_version: bool) -> dict[str, Any]:
        """Reconnect with the token; bytes and frames received until the mirror is at ``until``."""
        assert self.token is not None
        payload: dict[str, Any] = {"playerName": "member", "sessionToken": self.token}
        if by_version and self.epoch is not None:
            payload.update(sinceVersion=self.version, epoch=self.epoch)
        started = time.perf_counter()
        self.peer = peer = await Peer.open(self.cfg)
        await peer.send({"type": "JOIN_ROOM", "roomId": self.cfg.room, "requestId": "back",
                         "payload": payload})
        answer = await peer.expect("FULL_STATE", "RESUMED")
        answer_bytes = peer.bytes_rx
        if answer["type"] == "FULL_STATE":
            self.load(answer)
        else:
            if answer["version"] != self.version:
                raise RuntimeError(
                    f"RESUMED at {answer['version']}, the mirror is at {self.version}")
            self.token = answer["payload"].get("sessionToken") or self.token
        frames = 0
        while self.version < until:
            msg = await peer.recv()
            if msg.get("type") in STATE_TYPES:
                self.apply(msg)
                frames += 1
        return {
            "answer": answer["type"],
            "bytes": peer.bytes_rx,
            "answer_bytes": answer_bytes,
            "frames": frames,
            "ms": (time.perf_counter() - started) * 1000,
        }

    def drop(self) -> None:
        assert self.peer is not None
        self.peer.cut()


class Writer:
    """The member that stays and makes the changes; it waits for each one's DELTA."""

    def __init__(self, cfg: Config, peer: Peer) -> None:
        self.cfg = cfg
        self.peer = peer
        self.version = 0
        self.count = 0

    async def write(self, payload: dict[str, Any], entity: str | None = None) -> int:
        msg: dict[str, Any] = {"type": "STATE_UPDATE", "roomId": self.cfg.room, "payload": payload}
        if entity is not None:
            msg["entityId"] = entity
        await self.peer.send(msg)
        self.version = (await self.peer.expect("DELTA_UPDATE"))["version"]
        return self.version

    async def fill(self) -> None:
        """Strokes of ~STROKE_BYTES each until the room holds about ``state_kb`` kB."""
        per_point = len(orjson.dumps([999, 999])) + 1
        points = STROKE_BYTES // per_point
        for k in range(max(1, self.cfg.state_kb * 1000 // STROKE_BYTES)):
            stroke = [[(k * 37 + i * 7) % 1000, (k * 91 + i * 13) % 1000] for i in range(points)]
            await self.write({"kind": "stroke", "color": "#336699", "width": 3,
                              "points": stroke}, entity=f"stroke-{k}")

    async def changes(self, n: int) -> int:
        """``n`` small changes of three kinds, one version each."""
        for _ in range(n):
            self.count += 1
            i = self.count
            match i % 3:
                case 0:
                    await self.write({"color": f"#{(i * 2654435761) % 0xFFFFFF:06x}"},
                                     entity=f"stroke-{i % 10}")
                case 1:
                    await self.write({"x": (i * 17) % 1000, "y": (i * 29) % 1000})
                case _:
                    await self.write({"kind": "stroke", "color": "#aa3300", "width": 2,
                                      "points": [[i % 1000, j * 10] for j in range(12)]},
                                     entity=f"note-{i}")
        return self.version


async def spectator_digest(cfg: Config) -> tuple[int, str, int]:
    peer = await Peer.open(cfg)
    await peer.send({"type": "JOIN_ROOM", "roomId": cfg.room, "payload": {"spectate": True}})
    full = await peer.expect("FULL_STATE")
    await peer.ws.close()
    return full["version"], state_digest(full["payload"]["state"]), peer.bytes_rx


async def measure(cfg: Config) -> dict[str, Any]:
    writer = Writer(cfg, await Peer.open(cfg))
    await writer.peer.send({"type": "JOIN_ROOM", "roomId": cfg.room, "payload": {"x": 0, "y": 0}})
    writer.version = (await writer.peer.expect("FULL_STATE"))["version"]
    await writer.fill()
    member = Member(cfg)
    join_bytes = await member.join()
    await writer.peer.expect("PLAYER_JOINED")
    writer.version = member.version
    state_bytes = len(orjson.dumps(member.state))

    samples: dict[str, list[dict[str, Any]]] = {"resumed": [], "full": []}
    for _ in range(cfg.runs):
        for mode in ("resumed", "full"):
            member.drop()
            await asyncio.sleep(0.05)  # the server notices the lost socket (grace starts)
            until = await writer.changes(cfg.changes)
            samples[mode].append(await member.resume(until, by_version=mode == "resumed"))

    version, digest, spectator_bytes = await spectator_digest(cfg)
    converged = version == member.version and digest == state_digest(member.state)
    assert member.peer is not None
    await asyncio.gather(member.peer.ws.close(), writer.peer.ws.close(), return_exceptions=True)

    def summary(rows: list[dict[str, Any]], expected: str) -> dict[str, Any]:
        return {
            "used": sum(row["answer"] == expected for row in rows),
            "answers": [row["answer"] for row in rows],
            "bytes": round(statistics.median(row["bytes"] for row in rows)),
            "bytes_max": max(row["bytes"] for row in rows),
            "answer_bytes": round(statistics.median(row["answer_bytes"] for row in rows)),
            "frames": round(statistics.median(row["frames"] for row in rows)),
            "ms": round(statistics.median(row["ms"] for row in rows), 2),
            "ms_max": round(max(row["ms"] for row in rows), 2),
        }

    resumed, full = summary(samples["resumed"], "RESUMED"), summary(samples["full"], "FULL_STATE")
    return {
        "bench": "kasagi-bench-recovery",
        "config": asdict(cfg),
        "state_bytes": state_bytes,
        "join_full_state_bytes": join_bytes,
        "spectator_full_state_bytes": spectator_bytes,
        "resumed": resumed,
        "full_state": full,
        "bytes_ratio": round(resumed["bytes"] / full["bytes"], 5) if full["bytes"] else None,
        "bytes_saved_pct": round(100 * (1 - resumed["bytes"] / full["bytes"]), 2)
        if full["bytes"] else None,
        "converged": converged,
        "final_version": member.version,
    }


def table(result: dict[str, Any]) -> str:
    cfg, res, full = result["config"], result["resumed"], result["full_state"]
    lines = [
        f"Kasagi recovery bench  {cfg['url']}  room {cfg['room']} ({cfg['encoding']})",
        f"  room state          {fmt(result['state_bytes'])} B of JSON; a fresh join's FULL_STATE "
        f"{fmt(result['join_full_state_bytes'])} B",
        f"  each resume         after a cut TCP connection and {cfg['changes']} changes by another "
        f"member; {cfg['runs']} runs per mode, medians",
        "",
        f"  {'mode':<22}{'answer':<14}{'bytes received':>16}{'frames':>8}{'ms':>10}",
        f"  {'sinceVersion + epoch':<22}{'RESUMED':<14}{fmt(res['bytes']):>16}"
        f"{res['frames']:>8}{fmt(res['ms']):>10}   ({res['used']}/{cfg['runs']} RESUMED)",
        f"  {'token only (1.0)':<22}{'FULL_STATE':<14}{fmt(full['bytes']):>16}"
        f"{full['frames']:>8}{fmt(full['ms']):>10}   ({full['used']}/{cfg['runs']} FULL_STATE)",
        "",
        f"  recovery costs      {fmt(100 * (result['bytes_ratio'] or 0), ' %')} of a full state "
        f"({fmt(result['bytes_saved_pct'], ' %')} fewer bytes)",
        f"  mirror converged    {'yes' if result['converged'] else 'NO'} (version "
        f"{result['final_version']})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8080/sync")
    parser.add_argument("--state-kb", type=int, default=500, help="size of the room's state")
    parser.add_argument("--changes", type=int, default=20, help="changes missed per drop")
    parser.add_argument("--runs", type=int, default=5, help="drops per mode (medians reported)")
    parser.add_argument("--room", default=None, help="room id (default: recovery-<time>-<pid>)")
    parser.add_argument("--encoding", choices=sorted(WIRE), default="json")
    parser.add_argument("--json-only", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    if args.state_kb < 1 or args.changes < 1 or args.runs < 1:
        parser.error("--state-kb, --changes and --runs must be positive")
    cfg = Config(url=args.url, state_kb=args.state_kb, changes=args.changes, runs=args.runs,
                 room=args.room or f"recovery-{int(time.time()) % 1000000}-{os.getpid()}",
                 encoding=args.encoding)
    result = asyncio.run(measure(cfg))
    line = orjson.dumps(result).decode()
    if not args.json_only:
        print(table(result))
    print(line if args.json_only else RESULT_PREFIX + line)
    return 0 if result["converged"] else 1


if __name__ == "__main__":
    sys.exit(main())
