"""deploy/nginx.conf in front of two daphnes sharing one Redis, end to end.

The shipped conf.d snippet is rendered into a private nginx (free port, the
two test daphnes as upstreams, every path inside tmp_path) and run in the
foreground. Clients through nginx and clients straight to each daphne share
one room: every version chain is gapless and ends in a fresh spectator's state.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.e2e.test_protocol import replay
from tests.live import ROOT, LiveServer, free_port
from tests.redis.local_cluster import flush, is_cluster
from tests.services import REQUIRE_SERVICES, need_redis
from tests.wsclient import Conn

pytestmark = pytest.mark.redis

NGINX = "/usr/sbin/nginx"
CONF = ROOT / "deploy" / "nginx.conf"
#: This test's Redis database (the cluster tests use 9, live servers in CI 14).
REDIS_DB = 13
UPDATES = 4


def render(template: str, *, listen: int, upstreams: tuple[int, int], tmp: Path) -> str:
    """The shipped snippet with test ports, wrapped in a main config rooted in ``tmp``."""

    def swap(text: str, old: str, new: str, count: int) -> str:
        assert text.count(old) == count, f"deploy/nginx.conf no longer has {count}× {old!r}"
        return text.replace(old, new)

    snippet = swap(template, "listen 80;", f"listen 127.0.0.1:{listen};", 1)
    snippet = swap(snippet, "server 127.0.0.1:8081 ", f"server 127.0.0.1:{upstreams[0]} ", 2)
    snippet = swap(snippet, "server 127.0.0.1:8082 ", f"server 127.0.0.1:{upstreams[1]} ", 2)
    temp = "\n".join(
        f"    {kind}_temp_path {tmp / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach tmp_path
    return (
        f"{user}worker_processes 1;\npid {tmp / 'nginx.pid'};\n"
        f"error_log {tmp / 'error.log'} info;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n    access_log {tmp / 'access.log'};\n{temp}\n{snippet}\n}}\n"
    )


class Nginx:
    def __init__(self, conf: Path, tmp: Path, port: int) -> None:
        self.conf, self.tmp, self.port = conf, tmp, port
        self.proc: subprocess.Popen | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/sync"

    def log(self) -> str:
        try:
            return (self.tmp / "error.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self) -> Nginx:
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.tmp), "-e", str(self.tmp / "error.log"),
             "-c", str(self.conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen on {self.port}:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)  # graceful; TERM/INT would be fast shutdown
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def redis_db13() -> str:
    url = need_redis()
    if not is_cluster(url):  # a cluster has database 0 only
        url = urlparse(url)._replace(path=f"/{REDIS_DB}").geturl()
    flush(url)
    return url


@pytest.fixture
def nginx_cluster(
    start_server: Callable[..., LiveServer], redis_db13: str, tmp_path: Path
) -> Iterator[tuple[Nginx, list[LiveServer]]]:
    if not os.access(NGINX, os.X_OK):
        reason = f"{NGINX} not installed (apt-get install nginx)"
        if REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)
    servers = [start_server(REDIS_URL=redis_db13) for _ in range(2)]
    root = tmp_path / "nginx"
    root.mkdir()
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(render(CONF.read_text(), listen=port,
                           upstreams=(servers[0].port, servers[1].port), tmp=root))
    proxy = Nginx(conf, root, port).start()
    yield proxy, servers
    proxy.stop()


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


async def test_nginx_fronts_two_daphnes_one_room_converges(nginx_cluster, room_id):
    proxy, servers = nginx_cluster
    status, body = await asyncio.to_thread(get, f"http://127.0.0.1:{proxy.port}/healthz")
    assert status == 200, body
    assert b'"redis": "ok"' in body or b'"redis":"ok"' in body, body

    room_url = f"{proxy.ws_url}?room={room_id}"
    urls = [room_url] * 6 + [s.ws_url + f"?room={room_id}" for s in servers for _ in range(2)]
    clients: list[Conn] = []
    for i, url in enumerate(urls):
        conn = await Conn.open(url)
        await conn.join(room_id, playerName=f"P{i}")
        clients.append(conn)
    # Joins were one after another: the last joiner's FULL_STATE is the room after all joins.
    joined_version = clients[-1].seen[0]["version"]
    final_version = joined_version + UPDATES * len(clients)

    async def write(index: int, conn: Conn) -> None:
        for n in range(1, UPDATES + 1):
            message = {"type": "STATE_UPDATE", "roomId": room_id, "payload": {"n": n}}
            if n % 2 == 0:
                message.update(entityId="board", payload={f"c{index}": n, "last": index})
            await conn.send(message)

    await asyncio.gather(*(write(i, c) for i, c in enumerate(clients)))

    async def drain(conn: Conn) -> tuple[int, dict]:
        while conn.seen[-1].get("version") != final_version:
            frame = await conn.recv(15)
            assert frame["type"] != "ERROR", frame
        return replay(conn.seen)  # asserts the chain is gapless

    results = await asyncio.gather(*(drain(c) for c in clients))

    spectator = await Conn.open(room_url)
    truth = await spectator.join(room_id, spectate=True)
    assert truth["version"] == final_version
    state = truth["payload"]["state"]
    for i, (version, mirrored) in enumerate(results):
        assert version == final_version, i
        assert mirrored == state, i
    assert sorted(p["n"] for p in state["players"].values()) == [UPDATES - 1] * len(clients)
    assert all(state["entities"]["board"][f"c{i}"] == UPDATES for i in range(len(clients)))
    for conn in [*clients, spectator]:
        await conn.close()
