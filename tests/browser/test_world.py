"""The world demo page (``/world/<roomId>/``) in real headless Chromium.

Two players far apart do not see each other; one walks into range and the
other's view (its client's state mirror, the "in view" counter) gets it, whole;
it walks out again and is gone. The room counter still counts both. Each page
shows its own secret colour (a private ``_secret`` field); the other page never
holds it. What a test checks is read from ``window.kasagiWorld`` or the DOM.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import WAIT_MS
from tests.browser.test_demo import screenshot

pytestmark = pytest.mark.browser


def world_page(profile, room_id: str, x: int, y: int):
    page = profile.page(f"/world/{room_id}/?x={x}&y={y}")
    page.wait_for_function(
        "() => window.kasagiWorld && window.kasagiWorld.client.version !== null"
        " && window.kasagiWorld.position !== null", timeout=WAIT_MS)
    return page


def in_view(page) -> list[str]:
    return page.evaluate("() => window.kasagiWorld.inView()")


def test_walking_into_range_brings_the_other_player_and_walking_out_removes_it(
    browse, room_id, artifacts_dir,
):
    page_a = world_page(browse(), room_id, 500, 500)
    page_b = world_page(browse(), room_id, 2150, 500)  # two cells east: out of range
    id_a = page_a.evaluate("() => window.kasagiWorld.client.playerId")
    id_b = page_b.evaluate("() => window.kasagiWorld.client.playerId")
    assert page_a.evaluate("() => window.kasagiWorld.config.roomType") == "world"
    assert in_view(page_a) == [id_a] and in_view(page_b) == [id_b]

    # the room holds both: the counter reads "1 in view / 2 in room"
    page_a.evaluate("() => window.kasagiWorld.pollRoom()")
    page_a.wait_for_function("() => document.getElementById('in-room').textContent === '2'")
    page_a.wait_for_function("() => document.getElementById('in-view').textContent === '1'")

    # b walks west into a's neighbourhood: a's view gets b whole (name, colour, position)
    page_b.evaluate("() => window.kasagiWorld.moveTo(1850, 500)")
    page_a.wait_for_function(
        "(id) => { const p = window.kasagiWorld.client.state.players[id];"
        " return !!p && p.x === 1850 && p.y === 500; }", arg=id_b)
    other = page_a.evaluate("(id) => window.kasagiWorld.client.state.players[id]", id_b)
    assert other["playerName"] and other["color"].startswith("#")
    assert not [key for key in other if key.startswith("_")]  # no private field
    page_b.wait_for_function(
        "(id) => !!window.kasagiWorld.client.state.players[id]", arg=id_a)
    page_a.wait_for_function("() => document.getElementById('in-view').textContent === '2'")

    # each page shows its own secret, which the other page never received
    secret_a = page_a.evaluate("() => window.kasagiWorld.secret")
    secret_b = page_b.evaluate("() => window.kasagiWorld.secret")
    page_a.wait_for_function(
        "(s) => document.getElementById('secret-code').textContent === s", arg=secret_a)
    assert "only you" in page_a.locator("#secret-note").inner_text()
    assert page_a.evaluate(
        "(id) => window.kasagiWorld.client.state.players[id]._secret", id_a) == secret_a
    assert secret_b not in page_a.content() and secret_a not in page_b.content()
    screenshot(page_a, artifacts_dir, "world-in-range")

    # b walks back east: it leaves a's view (and a leaves b's)
    page_b.evaluate("() => window.kasagiWorld.moveTo(2150, 500)")
    page_a.wait_for_function(
        "(id) => !window.kasagiWorld.client.state.players[id]", arg=id_b)
    page_b.wait_for_function(
        "(id) => !window.kasagiWorld.client.state.players[id]", arg=id_a)
    page_a.wait_for_function("() => document.getElementById('in-view').textContent === '1'")
    for page in (page_a, page_b):
        assert page.evaluate("() => window.kasagiWorld.client.stats.gaps") == 0
    screenshot(page_b, artifacts_dir, "world-out-of-range")


def test_the_room_page_of_a_world_room_opens_the_world_page(browse, room_id):
    profile = browse()
    world_page(profile, room_id, 5000, 5000).close()  # the room is now a world room
    page = profile.page(f"/rooms/{room_id}/")
    page.wait_for_url(f"**/world/{room_id}/")
    page.wait_for_function("() => window.kasagiWorld && window.kasagiWorld.client.version !== null")
