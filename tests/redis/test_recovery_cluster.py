"""§14 recovery by version on two daphne processes sharing one Redis: the room's log is
the stream every process reads, so a player recovers on the other process, and after
the process it was on was killed."""

from __future__ import annotations

import signal

import pytest

from tests.e2e.test_recovery import apply, drop, frames_until, resume, spectator_state, update
from tests.wsclient import Conn

pytestmark = [pytest.mark.redis, pytest.mark.asyncio]


async def missed_changes(b: Conn, url: str, room_id: str) -> int:
    """Deltas, a join and a leave (on ``url``'s process), then deltas; the version."""
    for x in range(4):
        await update(b, room_id, x=x)
    c = await Conn.open(url)
    await c.join(room_id, name="C")
    await b.expect("PLAYER_JOINED")
    await c.send({"type": "LEAVE_ROOM", "roomId": room_id})
    await b.expect("PLAYER_LEFT")
    for x in range(4, 7):
        current = await update(b, room_id, x=x)
    return current


async def test_resume_on_the_other_process(cluster, redis_url, room_id):
    first, second = cluster(2, REDIS_URL=redis_url)
    a, b = await Conn.open(first.ws_url), await Conn.open(second.ws_url)
    full = await a.join(room_id, name="A")
    await b.join(room_id, name="B")
    joined = await a.expect("PLAYER_JOINED")
    held, since = apply(full["payload"]["state"], joined), joined["version"]
    epoch = full["payload"]["epoch"]
    await drop(a)
    current = await missed_changes(b, second.ws_url, room_id)

    back, answer = await resume(second.ws_url, room_id, full["payload"]["sessionToken"],
                                sinceVersion=since, epoch=epoch)
    assert answer["type"] == "RESUMED" and answer["version"] == since, answer
    assert answer["payload"]["epoch"] == epoch  # one epoch for the room on every process
    frames = await frames_until(back, current, since)
    assert [f["type"] for f in frames] == [
        "DELTA_UPDATE", "PLAYER_JOINED", "PLAYER_LEFT", "DELTA_UPDATE"]
    for frame in frames:
        held = apply(held, frame)
    fresh = await spectator_state(first.ws_url, room_id)
    assert fresh["version"] == current and held == fresh["payload"]["state"]
    await b.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 50}})
    nxt = await back.expect("DELTA_UPDATE")
    assert (nxt["baseVersion"], nxt["version"]) == (current, current + 1)


async def test_resume_after_the_process_was_killed(cluster, redis_url, room_id):
    victim, survivor = cluster(2, REDIS_URL=redis_url)
    a, b = await Conn.open(victim.ws_url), await Conn.open(survivor.ws_url)
    full = await a.join(room_id, name="A")
    await b.join(room_id, name="B")
    joined = await a.expect("PLAYER_JOINED")
    held, since = apply(full["payload"]["state"], joined), joined["version"]
    await update(a, room_id, y=1)
    held = apply(held, a.seen[-1])
    since = a.seen[-1]["version"]
    victim.stop(signal.SIGKILL)  # A's process dies with its socket
    current = await missed_changes(b, survivor.ws_url, room_id)

    back, answer = await resume(survivor.ws_url, room_id, full["payload"]["sessionToken"],
                                sinceVersion=since, epoch=full["payload"]["epoch"])
    assert answer["type"] == "RESUMED" and answer["version"] == since, answer
    for frame in await frames_until(back, current, since):
        held = apply(held, frame)
    fresh = await spectator_state(survivor.ws_url, room_id)
    assert fresh["version"] == current and held == fresh["payload"]["state"]
    assert held["players"][full["payload"]["playerId"]]["y"] == 1
    # The recovered player writes as before, and B sees it.
    await back.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"y": 2}})
    assert (await b.expect("DELTA_UPDATE"))["baseVersion"] == current


async def test_wrong_epoch_or_a_trimmed_log_falls_back_to_full_state(
    cluster, redis_url, room_id
):
    first, second = cluster(2, REDIS_URL=redis_url, KASAGI_RECOVERY_LOG="5")
    a, b = await Conn.open(first.ws_url), await Conn.open(second.ws_url)
    full = await a.join(room_id)
    await b.join(room_id)
    since = (await a.expect("PLAYER_JOINED"))["version"]
    await drop(a)
    for x in range(400):  # the stream is trimmed in whole nodes of 100 entries
        current = await update(b, room_id, x=x)
    token = full["payload"]["sessionToken"]
    back, answer = await resume(second.ws_url, room_id, token,
                                sinceVersion=since, epoch=full["payload"]["epoch"])
    assert answer["type"] == "FULL_STATE" and answer["version"] == current
    assert answer["payload"]["resumed"] is True
    await drop(back)
    token = answer["payload"]["sessionToken"]
    _, answer = await resume(first.ws_url, room_id, token, sinceVersion=current, epoch="e-x")
    assert answer["type"] == "FULL_STATE" and answer["payload"]["epoch"] == full["payload"][
        "epoch"]
