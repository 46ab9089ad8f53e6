"""The admin's room history (§15) driven in headless Chromium against a live daphne.

Staff log in through the Django admin's login form; players make real changes
over real WebSockets (one of them logged in by token, so "who" has a
username); the test reads the room page's history table, opens "state at
version N", restores an earlier version through its confirmation page (the
connected player gets the DELTA_UPDATE, REST ``/state/`` shows it) and lists one
user's changes across two rooms with the change list's filter.

The sockets live on an asyncio loop of their own thread: Playwright's sync API
holds this thread's loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from tests.api.livehttp import HttpClient, LiveUser, create_users
from tests.browser.conftest import WAIT_MS, Browsing
from tests.live import LiveServer
from tests.wsclient import Conn

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

T = TypeVar("T")
TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


class SocketLoop:
    """An asyncio loop on a thread of its own, for the test's WebSocket clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.conns: list[Conn] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def open(self, url: str, **options: Any) -> Conn:
        conn = self.run(Conn.open(url, **options))
        self.conns.append(conn)
        return conn

    def close(self) -> None:
        for conn in self.conns:
            self.run(conn.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def sockets() -> Iterator[SocketLoop]:
    loop = SocketLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def people(live_database_url: str) -> dict[str, LiveUser]:
    tag = os.getpid()
    made = create_users(live_database_url, [
        {"username": f"bhistop-{tag}", "password": "bhistop-pw-1", "staff": True,
         "superuser": True},
        {"username": f"bhistplayer-{tag}", "password": "bhistplayer-pw-1"},
    ])
    return {name.split("-")[0]: user for name, user in made.items()}


def make_room(server: LiveServer, operator: LiveUser, room_id: str) -> None:
    answer = HttpClient(server.http_url, token=operator.token).post(
        "/api/rooms/", json_body={"roomId": room_id})
    assert answer.status == 201, answer.text


def update(sockets: SocketLoop, conn: Conn, room_id: str, **message: Any) -> dict[str, Any]:
    """Send a STATE_UPDATE and wait for its DELTA_UPDATE (the change is committed)."""
    sockets.run(conn.send({"type": "STATE_UPDATE", "roomId": room_id, **message}))
    return sockets.run(conn.expect("DELTA_UPDATE"))


def admin_login(profile: Browsing, user: LiveUser) -> Any:
    page = profile.page("/admin/login/?next=/admin/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", user.password)
    page.click("form [type=submit]")
    page.wait_for_url(profile.server.http_url + "/admin/")
    return page


def open_room(page: Any, server: LiveServer, room_id: str) -> None:
    """The room's admin page, found the way an operator does: search the room list."""
    page.goto(server.http_url + "/admin/rooms/room/")
    page.fill("#searchbar", room_id)
    page.press("#searchbar", "Enter")
    page.locator("#result_list").get_by_role("link", name=room_id, exact=True).click()
    page.wait_for_url(re.compile(r"/change/"))


def history_rows(page: Any, newest: int) -> list[list[str]]:
    """The history table's rows (cells as text), newest first, once it holds version
    ``newest``: the background writer records changes a little after they are made."""
    deadline = time.monotonic() + WAIT_MS / 1000
    rows = page.locator(".field-history_table table tbody tr")
    while not (rows.count() and rows.first.locator("td").first.inner_text() == str(newest)):
        assert time.monotonic() < deadline, f"the history never showed version {newest}"
        page.wait_for_timeout(200)
        page.reload()
    return [[cell.strip() for cell in row.locator("td").all_inner_texts()] for row in rows.all()]


def history_row(page: Any, version: int) -> Any:
    """The history table's row of one version (a locator)."""
    first = page.locator("td:first-child", has_text=re.compile(rf"^{version}$"))
    return page.locator(".field-history_table tbody tr").filter(has=first)


def row_of(rows: list[list[str]], version: int) -> list[str]:
    found = [row for row in rows if row[0] == str(version)]
    assert len(found) == 1, rows
    return found[0]


def test_history_state_at_a_version_restore_and_changes_by_one_user(
    browse: Any, kasagi_server: LiveServer, people: dict[str, LiveUser], room_id: str,
    sockets: SocketLoop,
) -> None:
    operator, player = people["bhistop"], people["bhistplayer"]
    other_room = room_id + "-b"
    for room in (room_id, other_room):
        make_room(kasagi_server, operator, room)
    rest = HttpClient(kasagi_server.http_url, token=operator.token)

    # Room A: the logged-in player writes a draft, an anonymous griefer overwrites it.
    token = {"additional_headers": {"Authorization": f"Token {player.token}"}}
    mine = sockets.open(kasagi_server.ws_url, **token)
    me = sockets.run(mine.join(room_id, playerName="P"))["payload"]["playerId"]  # v1
    update(sockets, mine, room_id, entityId="doc", payload={"text": "first draft"})  # v2
    griefer = sockets.open(kasagi_server.ws_url)
    anon = sockets.run(griefer.join(room_id, playerName="Anon"))["payload"]["playerId"]  # v3
    sockets.run(mine.expect("PLAYER_JOINED"))
    update(sockets, griefer, room_id, entityId="doc", payload={"text": "vandalised"})  # v4
    update(sockets, griefer, room_id, payload={"x": 3})  # v5
    for version in (4, 5):  # the player has seen the griefer's changes
        assert sockets.run(mine.expect("DELTA_UPDATE"))["version"] == version
    # Room B: the same user, and someone else.
    mine_b = sockets.open(kasagi_server.ws_url, **token)
    sockets.run(mine_b.join(other_room, playerName="P"))  # v1
    update(sockets, mine_b, other_room, entityId="note", payload={"text": "hello"})  # v2
    other_b = sockets.open(kasagi_server.ws_url)
    sockets.run(other_b.join(other_room, playerName="Other"))  # v3

    profile = browse()
    page = admin_login(profile, operator)
    open_room(page, kasagi_server, room_id)

    # The history table: newest first, version, time, who, kind, a readable diff.
    rows = history_rows(page, newest=5)
    assert [row[0] for row in rows] == ["5", "4", "3", "2", "1"], rows
    assert all(TIME.match(row[1]) for row in rows), rows
    assert [row[3] for row in rows] == [
        "Player update", "Entity update", "Joined", "Entity update", "Joined"]
    assert row_of(rows, 1)[2] == f"{player.username} (player)"
    assert row_of(rows, 2)[2] == f"{player.username} (player)"
    assert row_of(rows, 4)[2] == f"player {anon}"
    assert row_of(rows, 2)[4] == 'entity doc: text = "first draft"'
    assert row_of(rows, 4)[4] == 'entity doc: text = "vandalised"'
    assert row_of(rows, 5)[4] == f"player {anon}: x = 3"
    assert f'player {me}: playerName = "P"' in row_of(rows, 1)[4].splitlines()

    # State at version 2: the draft, before the griefer came (not the current state).
    history_row(page, 2).get_by_role("link", name="state", exact=True).click()
    page.wait_for_url("**/history/state/?version=2")
    assert page.locator("h2", has_text="State right after version 2").is_visible()
    at_2 = json.loads(page.locator("#state-at").inner_text())
    assert at_2["entities"] == {"doc": {"text": "first draft"}}
    assert list(at_2["players"]) == [me] and at_2["players"][me]["playerName"] == "P"
    now = rest.get(f"/api/rooms/{room_id}/state/").json()
    assert now["version"] == 5 and now["state"]["entities"]["doc"]["text"] == "vandalised"

    # Restore version 2: a confirmation page first, which changes nothing.
    page.get_by_role("link", name="Restore this version…").click()
    page.wait_for_url("**/live/restore/?version=2")
    assert page.input_value("input[name=version]") == "2"
    sockets.run(mine.nothing(0.3))
    assert rest.get(f"/api/rooms/{room_id}/state/").json()["version"] == 5
    page.get_by_role("button", name="Yes, restore this version").click()
    page.wait_for_url(re.compile(r"/change/"))
    assert "was set back to version 2 (now version 6)" in page.locator(".messagelist").inner_text()

    delta = sockets.run(mine.expect("DELTA_UPDATE"))
    assert (delta["baseVersion"], delta["version"]) == (5, 6)
    assert delta["payload"] == {"entities": {"doc": {"text": "first draft"}}}
    now = rest.get(f"/api/rooms/{room_id}/state/").json()
    assert now["version"] == 6 and now["state"]["entities"]["doc"] == {"text": "first draft"}
    assert set(now["state"]["players"]) == {me, anon}  # nobody added or removed

    rows = history_rows(page, newest=6)
    restore = row_of(rows, 6)
    assert restore[3] == "Restore" and restore[2] == f"{operator.username} (admin)"
    assert restore[4] == 'entity doc: text = "first draft"'

    # "Changes by this user": the change list's filter, across both rooms.
    page.goto(kasagi_server.http_url + "/admin/rooms/roomchange/")
    by_user = page.locator('#changelist-filter details[data-filter-title="changes by this user"]')
    by_user.get_by_role("link", name=player.username, exact=True).click()
    page.wait_for_url(re.compile(rf"user__id__exact={player.pk}"))
    listed = page.locator("#result_list tbody tr")
    changes = sorted(
        (row.locator(".field-room").inner_text(), int(row.locator(".field-version").inner_text()))
        for row in listed.all()
    )
    assert changes == sorted([(room_id, 1), (room_id, 2), (other_room, 1), (other_room, 2)])
    assert set(listed.locator(".field-who").all_inner_texts()) == {f"{player.username} (player)"}

    # The "who" link of the room page leads to the same list.
    open_room(page, kasagi_server, room_id)
    history_row(page, 1).get_by_role("link", name=player.username, exact=True).click()
    page.wait_for_url(re.compile(rf"/admin/rooms/roomchange/\?user__id__exact={player.pk}$"))
    assert page.locator("#result_list tbody tr").count() == 4
