"""``sync.api`` from a process with no server (a management command, a worker).

With ``REDIS_URL`` the rooms are shared, so a separate Python process that
calls the sync API reaches the players of a live daphne: its calls share one
event loop of the API's (the store's Redis connections outlive each call).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from tests.live import ROOT, server_env
from tests.services import need_redis
from tests.wsclient import Conn

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]

COMMAND = """
import sys
import django
django.setup()
from sync import api
room, player = sys.argv[1], sys.argv[2]
first = api.update_entity(room, "board", {"headline": "from a command"})
second = api.update_player(room, player, {"score": 10})
assert second == first + 1, (first, second)
assert api.room_state(room).state["players"][player]["score"] == 10
api.kick_player(room, player)
print("DONE", first, second)
"""


async def test_a_command_process_reaches_the_players(
    start_server: Any, live_database_url: str, room_id: str
) -> None:
    redis_url = need_redis().rsplit("/", 1)[0] + "/12"
    server = start_server(REDIS_URL=redis_url)
    player = await Conn.open(server.ws_url)
    me = (await player.join(room_id, playerName="P"))["payload"]["playerId"]

    env = server_env(live_database_url, REDIS_URL=redis_url)
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", COMMAND, room_id, me],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    _, first, second = done.stdout.split()[-3:]

    delta = await player.expect("DELTA_UPDATE")
    assert delta["payload"] == {"entities": {"board": {"headline": "from a command"}}}
    assert delta["version"] == int(first)
    delta = await player.expect("DELTA_UPDATE")
    assert delta["payload"] == {"players": {me: {"score": 10}}}
    assert delta["version"] == int(second)
    left = await player.expect("PLAYER_LEFT")
    assert left["payload"] == {"playerId": me, "reason": "kicked"}
    await player.close()
