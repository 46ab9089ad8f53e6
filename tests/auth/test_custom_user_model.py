"""Kasagi inside a site with its own user model (``AUTH_USER_MODEL = "members.Member"``).

A real daphne runs ``tests.auth.site.settings`` on a database migrated with
it: users sign in with an email, tokens come from ``POST /api/auth/token/``,
sockets carry them, rooms and the admin work with those users. Nothing in
``sync`` or ``rooms`` may assume ``auth.User``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.livehttp import HttpClient, LiveUser, admin_room_pk, create_users
from tests.live import ROOT, LiveServer, server_env
from tests.wsclient import Conn

pytestmark = pytest.mark.timeout(120)

SITE_SETTINGS = "tests.auth.site.settings"

#: Unique per run: a Redis-backed server (CI's second pass) keeps closed rooms.
ROOM = f"site-private-{os.getpid()}"


def site_env(database_url: str) -> dict[str, str]:
    return server_env(database_url, DJANGO_SETTINGS_MODULE=SITE_SETTINGS)


@pytest.fixture(scope="module")
def site_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('site-db') / 'db.sqlite3'}"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env=site_env(url), check=True,
    )
    return url


@pytest.fixture(scope="module")
def site_server(
    site_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("site-daphne") / "daphne.log"
    server = LiveServer(site_env(site_database), Path(log)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def members(site_database: str) -> dict[str, LiveUser]:
    specs = [
        {"username": "ann@example.com", "password": "ann-pw-1",
         "extra": {"display_name": "Ann"}},
        {"username": "bob@example.com", "password": "bob-pw-1"},
        {"username": "ops@example.com", "password": "ops-pw-1", "staff": True,
         "superuser": True},
    ]
    made = create_users(site_database, specs, settings=SITE_SETTINGS)
    return {email.split("@")[0]: user for email, user in made.items()}


def test_the_site_settings_pass_django_checks(site_database: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT, env=site_env(site_database), capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT, env=site_env(site_database), capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def test_tokens_rooms_and_sockets_with_the_site_users(
    site_server: LiveServer, members: dict[str, LiveUser]
) -> None:
    ann, bob = members["ann"], members["bob"]
    anonymous = HttpClient(site_server.http_url)
    fetched = await asyncio.to_thread(
        anonymous.post, "/api/auth/token/",
        json_body={"username": "ann@example.com", "password": "ann-pw-1"},
    )
    assert fetched.status == 200, fetched.text
    assert fetched.json() == {"token": ann.token}

    as_ann = HttpClient(site_server.http_url, token=ann.token)
    made = await asyncio.to_thread(
        as_ann.post, "/api/rooms/", json_body={"roomId": ROOM, "visibility": "private"}
    )
    assert made.status == 201, made.text

    player = await Conn.open(site_server.ws_url,
                             additional_headers={"Authorization": f"Token {ann.token}"})
    full = await player.join(ROOM, playerName="Ann")
    me = full["payload"]["playerId"]
    assert full["payload"]["state"]["players"][me] == {
        "playerName": "Ann", "userId": ann.pk, "username": "ann@example.com",
    }
    stranger = await Conn.open(f"{site_server.ws_url}?token={bob.token}")
    await stranger.send({"type": "JOIN_ROOM", "roomId": ROOM, "payload": {}})
    assert (await stranger.expect("ERROR"))["payload"]["code"] == "FORBIDDEN"

    as_bob = HttpClient(site_server.http_url, token=bob.token)
    refused = await asyncio.to_thread(as_bob.delete, f"/api/rooms/{ROOM}/")
    assert refused.status == 404
    state = await asyncio.to_thread(as_ann.get, f"/api/rooms/{ROOM}/state/")
    assert state.json()["state"]["players"][me]["userId"] == ann.pk

    closed = await asyncio.to_thread(as_ann.delete, f"/api/rooms/{ROOM}/")
    assert closed.status == 204
    assert (await player.expect("PLAYER_LEFT"))["payload"]["reason"] == "closed"
    await player.close()
    await stranger.close()


async def test_admin_and_login_page_with_the_site_users(
    site_server: LiveServer, members: dict[str, LiveUser]
) -> None:
    ops = members["ops"]
    as_ops = HttpClient(site_server.http_url, token=ops.token)
    made = await asyncio.to_thread(as_ops.post, "/api/rooms/", json_body={"roomId": "site-open"})
    assert made.status == 201, made.text
    player = await Conn.open(site_server.ws_url,
                             additional_headers={"Authorization": f"Token {members['bob'].token}"})
    me = (await player.join("site-open"))["payload"]["playerId"]

    admin = HttpClient(site_server.http_url)
    await asyncio.to_thread(admin.login, "/admin/login/", "ops@example.com", "ops-pw-1", "/admin/")
    pk = await asyncio.to_thread(admin_room_pk, admin, "site-open")
    search = await asyncio.to_thread(admin.get, "/admin/rooms/room/?q=ops@example.com")
    assert "site-open" in search.text
    sessions = await asyncio.to_thread(admin.get, "/admin/rooms/playersession/?q=bob@example")
    assert sessions.status == 200
    page = await asyncio.to_thread(admin.get, f"/admin/rooms/room/{pk}/change/")
    assert "bob@example.com" in page.text
    done = await asyncio.to_thread(
        admin.post_form, f"/admin/rooms/room/{pk}/live/kick/", {"player_id": me}
    )
    assert done.status == 302
    assert (await player.expect("PLAYER_LEFT"))["payload"] == {"playerId": me, "reason": "kicked"}
    await player.close()

    browser = HttpClient(site_server.http_url)
    await asyncio.to_thread(browser.login, "/accounts/login/", "ann@example.com", "ann-pw-1")
    page = await asyncio.to_thread(browser.get, "/accounts/login/")
    assert "logged in as <strong>ann@example.com</strong>" in page.text
    # the browser's session cookie identifies its socket (no token)
    cookies = "; ".join(f"{c.name}={c.value}" for c in browser.jar)
    socket = await Conn.open(site_server.ws_url, additional_headers={"Cookie": cookies})
    full = await socket.join("site-open")
    mine = full["payload"]["state"]["players"][full["payload"]["playerId"]]
    assert mine["username"] == "ann@example.com"
    await socket.close()
