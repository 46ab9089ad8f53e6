"""The browser demo in real headless Chromium against a live server.

Pages are real (lobby, room, spectator view); what a test checks is read from
the page's client state (``window.kasagiDemo``) or the DOM, never from pixels.
Screenshots go to the ``artifacts_dir`` and are checked to be non-blank.
"""

from __future__ import annotations

import os
from itertools import pairwise
from pathlib import Path

import pytest

from tests.api.livehttp import create_users
from tests.browser.conftest import wait_joined
from tests.browser.png import assert_not_blank

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}

RECORD_SENT_MOVES = """() => {
  window.sentMoves = [];
  window.kasagiDemo.client.on("message", ({direction, message}) => {
    if (direction === "out" && message.type === "STATE_UPDATE" && !message.entityId) {
      window.sentMoves.push(performance.now());
    }
  });
}"""


def player_id(page) -> str:
    return page.evaluate("() => window.kasagiDemo.client.playerId")


def players(page) -> dict:
    return page.evaluate("() => window.kasagiDemo.client.state.players")


def wait_player(page, pid: str, condition: str) -> None:
    """Wait until ``condition`` (JS, over ``p``: the player in this page's mirror) holds."""
    page.wait_for_function(
        "(id) => { const p = window.kasagiDemo.client.state?.players?.[id]; "
        f"return {condition}; }}",
        arg=pid,
    )


def wait_player_at(page, pid: str, x: int, y: int) -> None:
    wait_player(page, pid, f"!!p && p.x === {x} && p.y === {y}")


def screenshot(page, artifacts_dir: Path, name: str, **options) -> Path:
    path = artifacts_dir / "browser" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), **options)
    assert_not_blank(path)
    return path


def test_moving_in_one_page_moves_the_player_in_the_other(browse, room_id, artifacts_dir):
    profile = browse()  # one browser profile: same cookies, one tab per player
    page1, page2 = profile.room(room_id), profile.room(room_id)
    id1, id2 = player_id(page1), player_id(page2)
    assert id1 and id2 and id1 != id2, "two tabs of one profile are two players"
    wait_player(page2, id1, "!!p")
    assert page1.evaluate("() => window.kasagiDemo.config.roomType") == "arena"

    # the mouse: the dot walks to the pointer; page 2 sees it arrive
    box = page1.locator("#arena").bounding_box()
    page1.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.25)
    target = page1.evaluate("() => window.kasagiDemo.target")
    x, y = round(target["x"]), round(target["y"])
    assert 700 < x < 900 and 150 < y < 350
    wait_player_at(page2, id1, x, y)
    assert page2.locator(f'#players-list li[data-player-id="{id1}"]').is_visible()

    # the keyboard: hold an arrow key until page 2 sees the dot well down
    page1.evaluate(RECORD_SENT_MOVES)
    page1.locator("#arena").focus()
    page1.keyboard.down("ArrowDown")
    try:
        wait_player(page2, id1, f"!!p && p.y >= {y + 150} && p.x === {x}")
    finally:
        page1.keyboard.up("ArrowDown")
    # one player update per tick at most: sent moves are a tick apart or more
    sent, tick = page1.evaluate("() => [window.sentMoves, window.kasagiDemo.config.tickMs]")
    gaps = [b - a for a, b in pairwise(sent)]
    assert len(sent) >= 3 and min(gaps) >= tick - 1, gaps  # 1 ms: the clock's coarseness

    # and the other way round, through the page's own API
    page2.evaluate("() => window.kasagiDemo.moveTo(150, 850)")
    wait_player_at(page1, id2, 150, 850)

    # the arena room type kept every move legal: no refusals
    for page in (page1, page2):
        assert page.evaluate("() => window.kasagiDemo.client.stats.gaps") == 0
    screenshot(page1, artifacts_dir, "room-page1")
    screenshot(page2, artifacts_dir, "room-page2")


def test_shared_note_typed_in_one_page_appears_in_the_other(browse, room_id, artifacts_dir):
    profile = browse()
    page1, page2 = profile.room(room_id), profile.room(room_id)

    page1.click("#note")
    page1.keyboard.type("Hello from page one 🌸")
    page2.wait_for_function(
        "() => document.getElementById('note').value === 'Hello from page one 🌸'"
    )

    page2.click("#note")
    page2.keyboard.press("Control+End")
    page2.keyboard.type(" + two")
    expected = "Hello from page one 🌸 + two"
    page1.wait_for_function(f"() => document.getElementById('note').value === {expected!r}")
    # the note is the room's Yjs document (§16), not an entity of the JSON state
    assert page1.evaluate("() => window.kasagiDemo.client.state.entities.note") is None
    assert page1.evaluate("() => window.kasagiDemo.note.text.toString()") == expected

    # live cursors: page 2's caret is drawn in page 1's note, in page 2's name
    name2 = players(page2)[player_id(page2)]["playerName"]
    page1.wait_for_selector(f'#note-backdrop .caret-mark[data-name="{name2}"]')
    screenshot(page1, artifacts_dir, "note-page1")
    screenshot(page2, artifacts_dir, "note-page2")


def test_simultaneous_typing_in_two_places_keeps_both(browse, room_id):
    profile = browse()
    page1, page2 = profile.room(room_id), profile.room(room_id)
    page1.click("#note")
    page1.keyboard.type("[start|end]")
    page2.wait_for_function("() => document.getElementById('note').value === '[start|end]'")
    page1.keyboard.press("Control+Home")
    page2.click("#note")
    page2.keyboard.press("Control+End")
    for _ in range(12):  # both pages hold unsent edits at once, tick after tick
        page1.keyboard.type("a")
        page2.keyboard.type("b")
    expected = "a" * 12 + "[start|end]" + "b" * 12
    try:
        for page in (page1, page2):
            page.wait_for_function(
                f"() => document.getElementById('note').value === {expected!r}"
            )
    except Exception:
        seen = [page.evaluate("() => document.getElementById('note').value")
                for page in (page1, page2)]
        pytest.fail(f"the notes did not converge on {expected!r}: {seen}")
    latecomer = profile.room(room_id)  # and a new page gets it all from the server
    latecomer.wait_for_function(f"() => document.getElementById('note').value === {expected!r}")


def test_typing_at_the_same_place_at_once_keeps_every_keystroke_and_a_reload_keeps_it(
    browse, room_id,
):
    profile = browse()
    page1, page2 = profile.room(room_id), profile.room(room_id)
    page1.click("#note")
    page1.keyboard.type("<>")
    page2.wait_for_function("() => document.getElementById('note').value === '<>'")
    for page in (page1, page2):  # both carets between the brackets
        page.click("#note")
        page.keyboard.press("Control+Home")
        page.keyboard.press("ArrowRight")
    for _ in range(15):  # the same place, at the same time, without waiting
        page1.keyboard.type("a")
        page2.keyboard.type("b")
    expected_letters = sorted("<>" + "a" * 15 + "b" * 15)
    page1.wait_for_function(
        "() => { const v = document.getElementById('note').value;"
        " return v.length === 32 && v === window.kasagiDemo.note.text.toString(); }")
    text = page1.evaluate("() => document.getElementById('note').value")
    page2.wait_for_function(f"() => document.getElementById('note').value === {text!r}")
    assert sorted(text) == expected_letters  # every keystroke of both pages kept
    assert text[0] == "<" and text[-1] == ">"
    page1.reload()
    wait_joined(page1)
    page1.wait_for_function(f"() => document.getElementById('note').value === {text!r}")


def test_reload_resumes_the_same_player(browse, room_id):
    profile = browse()
    page1, page2 = profile.room(room_id), profile.room(room_id)
    id1 = player_id(page1)
    page1.evaluate("() => window.kasagiDemo.moveTo(123, 456)")
    wait_player_at(page2, id1, 123, 456)
    version = page2.evaluate("() => window.kasagiDemo.client.version")

    page1.reload()
    wait_joined(page1)

    assert player_id(page1) == id1
    assert page1.evaluate("() => window.kasagiDemo.client.resumed") is True
    assert page1.evaluate("() => window.kasagiDemo.position") == {"x": 123, "y": 456}
    assert page1.locator("#demo").get_attribute("data-resumed") == "true"
    # the other page saw nothing: the player never left
    assert set(players(page2)) == {id1, player_id(page2)}
    page1.evaluate("() => window.kasagiDemo.moveTo(200, 456)")
    wait_player_at(page2, id1, 200, 456)
    assert page2.evaluate("() => window.kasagiDemo.client.stats.gaps") == 0
    assert page2.evaluate("() => window.kasagiDemo.client.version") > version


def test_page_reconnects_and_resumes_after_a_server_restart(browse, start_server, room_id):
    server = start_server()
    profile = browse(server=server, tolerate=("WebSocket connection to",))
    page = profile.room(room_id)
    pid = player_id(page)
    page.evaluate("() => window.kasagiDemo.moveTo(321, 654)")
    wait_player_at(page, pid, 321, 654)

    server.restart()  # SIGTERM: the room and the session token are saved, then it starts again

    page.wait_for_function(
        "() => window.kasagiDemo.client.stats.reconnects >= 1 && window.kasagiDemo.client.synced"
    )
    assert player_id(page) == pid
    assert page.evaluate("() => window.kasagiDemo.client.resumed") is True
    page.evaluate("() => window.kasagiDemo.moveTo(400, 654)")
    wait_player_at(page, pid, 400, 654)


def test_the_note_survives_a_server_restart(browse, start_server, room_id):
    # an interval far longer than the test: only the clean stop's flush can save it
    server = start_server(KASAGI_SNAPSHOT_INTERVAL="300")
    profile = browse(server=server, tolerate=("WebSocket connection to",))
    writer = profile.room(room_id)
    writer.click("#note")
    writer.keyboard.type("kept across a restart ✓")
    expected = "kept across a restart ✓"
    reader = profile.room(room_id)  # its DOC_SYNC answer: the server holds the text
    reader.wait_for_function(f"() => document.getElementById('note').value === {expected!r}")
    writer.close()
    reader.close()  # no page holds the text any more: only the server can bring it back

    server.restart()  # SIGTERM: the document is saved, then it starts again

    page = profile.room(room_id)
    page.wait_for_function(f"() => document.getElementById('note').value === {expected!r}")
    assert page.evaluate("() => window.kasagiDemo.client.docs") == ["note"]


def test_lobby_shows_the_room_with_two_players(browse, room_id, artifacts_dir):
    profile = browse()
    profile.room(room_id)
    profile.room(room_id)
    lobby = profile.page("/")
    row = lobby.locator(f'#rooms-body tr[data-room-id="{room_id}"]')
    lobby.locator(f'#rooms-body tr[data-room-id="{room_id}"] td[data-player-count="2"]').wait_for()
    assert "arena" in row.inner_text()
    screenshot(lobby, artifacts_dir, "lobby")

    # join by name from the lobby: the third player of the room
    lobby.fill("#join-room", room_id)
    lobby.click("#join-form [type=submit]")
    lobby.wait_for_url(f"**/rooms/{room_id}/")
    wait_joined(lobby)
    assert len(players(lobby)) == 3


def test_create_a_room_from_the_lobby(browse, live_database_url):
    suffix = os.getpid()
    user = create_users(
        live_database_url, [{"username": f"maker-{suffix}", "password": "pw-maker-1"}]
    )
    profile = browse()
    profile.login(user[f"maker-{suffix}"].username, "pw-maker-1")
    lobby = profile.page("/")
    room_id = f"made-{suffix}"
    lobby.fill("#create-name", "Made in the lobby")
    lobby.fill("#create-room-id", room_id)
    lobby.select_option("#create-visibility", "login")
    lobby.click("#create-form [type=submit]")
    lobby.wait_for_url(f"**/rooms/{room_id}/")
    wait_joined(lobby)
    me = players(lobby)[player_id(lobby)]
    assert me["playerName"] == f"maker-{suffix}"  # a logged-in player is named after the login
    assert me["username"] == f"maker-{suffix}"
    assert "Made in the lobby" in lobby.locator("#room-title").inner_text()

    # a login room: an anonymous profile may not join it, and is told so
    anonymous = browse().page(f"/rooms/{room_id}/")
    anonymous.locator("#banner").wait_for()
    assert "may not join" in anonymous.locator("#banner").inner_text()


def test_staff_spectator_view(browse, room_id, live_database_url, artifacts_dir):
    suffix = os.getpid()
    users = create_users(
        live_database_url,
        [
            {"username": f"spy-{suffix}", "password": "pw-spy-1", "staff": True},
            {"username": f"plain-{suffix}", "password": "pw-plain-1"},
        ],
    )
    player = browse().room(room_id)
    pid = player_id(player)
    player.click("#note")
    player.keyboard.type("watched")

    staff = browse()
    staff.login(users[f"spy-{suffix}"].username, "pw-spy-1")
    watch = staff.room(room_id, "?spectate=1")
    assert watch.evaluate("() => window.kasagiDemo.client.playerId") is None
    assert watch.locator("#note").get_attribute("readonly") is not None
    watch.wait_for_function("() => document.getElementById('note').value === 'watched'")
    player.evaluate("() => window.kasagiDemo.moveTo(640, 360)")
    wait_player_at(watch, pid, 640, 360)
    assert list(players(player)) == [pid], "a spectator is not a player"
    assert watch.locator("#state-json").inner_text().count(pid) >= 1
    screenshot(watch, artifacts_dir, "spectator", full_page=True)

    # not for everyone: anonymous users are sent to log in, other users refused
    anonymous = browse().page(f"/rooms/{room_id}/?spectate=1")
    assert "/accounts/login/" in anonymous.url
    plain = browse()
    plain.login(users[f"plain-{suffix}"].username, "pw-plain-1")
    answer = plain.context.request.get(f"{plain.server.http_url}/rooms/{room_id}/?spectate=1")
    assert answer.status == 403


def test_room_page_fits_a_phone(browse, room_id, artifacts_dir):
    phone = browse(viewport=PHONE)
    page = phone.room(room_id)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    canvas = page.locator("#arena").bounding_box()
    assert 0 < canvas["width"] <= PHONE["width"] and abs(canvas["width"] - canvas["height"]) < 2
    # a tap moves the dot there
    page.locator("#arena").click(position={"x": canvas["width"] * 0.5, "y": canvas["height"] * 0.5})
    wait_player_at(page, player_id(page), 500, 500)
    screenshot(page, artifacts_dir, "room-phone", full_page=True)
    lobby = phone.page("/")
    assert lobby.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]


FIRST_COIN = """() => {
  const entities = window.kasagiDemo.client.state?.entities ?? {};
  return Object.keys(entities).some((id) => id.startsWith("coin-"));
}"""

# The coin farthest from every other coin and from the other players: a jump onto it takes
# that one only.
PICK_COIN = """(self) => {
  const state = window.kasagiDemo.client.state;
  const coins = Object.entries(state.entities)
    .filter(([id, c]) => id.startsWith("coin-") && c.kind === "coin")
    .map(([id, c]) => ({ id, x: c.x, y: c.y }));
  const others = Object.entries(state.players).filter(([id]) => id !== self).map(([, p]) => p);
  const room = (coin) => Math.min(1e9, ...[...coins.filter((c) => c !== coin), ...others]
    .map((o) => Math.hypot(o.x - coin.x, o.y - coin.y)));
  return coins.sort((a, b) => room(b) - room(a))[0];
}"""


def bubble_shows(page, pid: str, emoji: str) -> None:
    """Wait for the emote bubble ``emoji`` over ``pid``'s dot, in the DOM."""
    page.wait_for_function(
        "([id, emoji]) => document.querySelector("
        "`#bubbles .bubble[data-player-id=\"${id}\"]`)?.textContent === emoji",
        arg=[pid, emoji],
    )


def wait_score(page, pid: str, score: int) -> None:
    page.wait_for_function(
        "([id, score]) => document.querySelector("
        "`#scoreboard li[data-player-id=\"${id}\"]`)?.dataset.score === String(score)",
        arg=[pid, score],
    )


def test_arena_emotes_coins_scoreboard_and_toast(browse, room_id, artifacts_dir):
    profile = browse()
    page1, page2 = profile.room(room_id), profile.room(room_id)
    id1, id2 = player_id(page1), player_id(page2)
    wait_player(page2, id1, "!!p")
    wait_player(page1, id2, "!!p")
    emotes = page1.evaluate("() => [...document.querySelectorAll('#emotes button')]"
                            ".map((b) => b.dataset.emote)")
    assert len(emotes) == 5

    # key 3 on page 1: a bubble over page 1's dot on page 2, and at once on page 1 itself
    page1.locator("#arena").focus()
    page1.keyboard.press("3")
    bubble_shows(page2, id1, emotes[2])
    bubble_shows(page1, id1, emotes[2])
    # a touch button on page 2: the bubble over page 2's dot on page 1
    page2.click(f'#emotes button[data-emote="{emotes[4]}"]')
    bubble_shows(page1, id2, emotes[4])
    assert page1.evaluate("() => window.kasagiDemo.bubbles()")[id2] == emotes[4]

    # the server places coins: both pages have one, drawn from their mirrors
    page1.wait_for_function(FIRST_COIN)
    page2.wait_for_function(FIRST_COIN)
    assert page1.locator("#scores").is_visible()
    coin = page1.evaluate(PICK_COIN, id1)
    before = players(page1)[id1].get("score", 0)
    name1 = players(page2)[id1]["playerName"]

    # page 1's player jumps onto it through the page's client. Not a timing assertion: the
    # arena's speed rule allows a jump of any length once 0.85 s passed since the last move.
    page1.wait_for_timeout(1000)
    page1.evaluate("(c) => window.kasagiDemo.client.update({x: c.x, y: c.y})", coin)

    for page in (page1, page2):
        wait_score(page, id1, before + 1)
        page.wait_for_function("(id) => !(id in window.kasagiDemo.client.state.entities)",
                               arg=coin["id"])
    page2.wait_for_function(
        "(text) => [...document.querySelectorAll('#toasts .toast')]"
        ".some((t) => t.textContent === text)",
        arg=f"coin taken by {name1}",
    )
    top = page2.locator("#scoreboard li").first
    assert top.get_attribute("data-player-id") == id1  # the best score heads the board
    assert players(page2)[id1]["score"] == before + 1
    screenshot(page2, artifacts_dir, "arena-game-page2")
