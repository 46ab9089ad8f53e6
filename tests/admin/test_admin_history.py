"""The admin's history (§15) against a real daphne: an operator logs in through
``/admin/login/``, reads who changed what on the room's page, looks at the state at
a version, restores it (the player sees one DELTA_UPDATE) and lists one user's
changes across rooms."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import time
from typing import Any

import pytest

from tests.admin.test_admin_live import admin_session, make_room
from tests.api.livehttp import HttpClient, LiveUser, admin_room_pk, create_users
from tests.wsclient import Conn

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def people(live_database_url: str) -> dict[str, LiveUser]:
    tag = os.getpid()
    made = create_users(live_database_url, [
        {"username": f"histop-{tag}", "password": "histop-pw-1", "staff": True,
         "superuser": True},
        {"username": f"histplayer-{tag}", "password": "histplayer-pw-1"},
    ])
    return {name.split("-")[0]: user for name, user in made.items()}


async def room_page(admin: HttpClient, pk: str, until: str) -> str:
    """The room's admin page once its history shows ``until`` (written in the background)."""
    deadline = time.monotonic() + 15
    while True:
        page = await asyncio.to_thread(admin.get, f"/admin/rooms/room/{pk}/change/")
        assert page.status == 200
        text = html.unescape(page.text)
        if until in text:
            return text
        assert time.monotonic() < deadline, "the history never showed " + until
        await asyncio.sleep(0.2)


async def test_history_table_state_at_a_version_restore_and_the_user_filter(
    kasagi_server: Any, people: dict[str, LiveUser], room_id: str,
) -> None:
    operator, player = people["histop"], people["histplayer"]
    await make_room(kasagi_server, operator, room_id)
    conn = await Conn.open(kasagi_server.ws_url,
                           additional_headers={"Authorization": f"Token {player.token}"})
    me = (await conn.join(room_id, playerName="P"))["payload"]["playerId"]
    for text in ("first draft", "vandalised"):
        await conn.send({"type": "STATE_UPDATE", "roomId": room_id, "entityId": "doc",
                         "payload": {"text": text}})
        await conn.expect("DELTA_UPDATE")

    admin = await admin_session(kasagi_server, operator)
    pk = await asyncio.to_thread(admin_room_pk, admin, room_id)
    page = await room_page(admin, pk, 'text = "vandalised"')
    assert 'entity doc: text = "first draft"' in page
    assert player.username in page and "Entity update" in page and "Joined" in page

    shown = await asyncio.to_thread(admin.get, f"/admin/rooms/room/{pk}/history/state/?version=2")
    assert shown.status == 200
    found = re.search(r'<pre id="state-at"[^>]*>(.*?)</pre>', shown.text, re.S)
    assert found, shown.text[:2000]
    state = json.loads(html.unescape(found.group(1)))
    assert state["entities"] == {"doc": {"text": "first draft"}}
    assert state["players"][me]["playerName"] == "P"

    confirm = await asyncio.to_thread(admin.get, f"/admin/rooms/room/{pk}/live/restore/?version=2")
    assert confirm.status == 200 and "Yes, restore this version" in confirm.text
    await conn.nothing(0.2)  # the confirmation page changes nothing
    done = await asyncio.to_thread(
        admin.post_form, f"/admin/rooms/room/{pk}/live/restore/", {"version": "2"})
    assert done.status == 302
    told = await asyncio.to_thread(admin.get, done.headers["Location"])
    assert "was set back to version 2 (now version 4)" in html.unescape(told.text)
    delta = await conn.expect("DELTA_UPDATE")
    assert (delta["baseVersion"], delta["version"]) == (3, 4)
    assert delta["payload"] == {"entities": {"doc": {"text": "first draft"}}}
    after = await room_page(admin, pk, "<td>Restore</td>")
    assert f"{operator.username}</a> (admin)" in after

    mine = await asyncio.to_thread(
        admin.get, f"/admin/rooms/roomchange/?user__id__exact={player.pk}")
    assert mine.status == 200 and "changes by this user" in mine.text
    rows = re.search(r'<table id="result_list">(.*?)</table>', mine.text, re.S)
    assert rows and room_id in rows.group(1)
    assert player.username in rows.group(1) and operator.username not in rows.group(1)
