"""The rooms admin in-process (Django's test client with a real superuser login).

Pages, lists, filters and the confirmation pages; the live actions on real
sockets are in test_admin_live.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from rooms.models import PlayerSession, Room, RoomSnapshot
from rooms.services import room_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("engine")]


@pytest.fixture
def room(admin_user: Any) -> Room:
    room = room_create(by=admin_user, room_id="lobby-1", name="Lobby", room_type="arena",
                       visibility="login")
    for version in range(1, 14):
        RoomSnapshot.objects.create(
            room=room, version=version,
            state={"players": {"p-1": {"playerName": "Ann"}}, "entities": {"ball": {"x": version}}},
        )
    return room


def test_room_list_shows_live_columns(admin_client: Client, room: Room) -> None:
    page = admin_client.get("/admin/rooms/room/")
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("lobby-1", "Lobby", "arena", "login", "13", "(saved)"):
        assert text in html, text
    for column in ("column-live_players", "column-live_version", "column-last_activity_at"):
        assert column in html


@pytest.mark.parametrize(
    "query",
    ["q=lobby", "q=admin", "visibility__exact=login", "room_type__exact=arena", "status=open"],
)
def test_room_list_search_and_filters(admin_client: Client, room: Room, query: str) -> None:
    html = admin_client.get(f"/admin/rooms/room/?{query}").content.decode()
    assert "lobby-1" in html


def test_room_list_filters_out(admin_client: Client, room: Room) -> None:
    for query in ("q=nothing-like-it", "status=closed", "visibility__exact=public"):
        html = admin_client.get(f"/admin/rooms/room/?{query}").content.decode()
        assert ">lobby-1<" not in html, query


def test_room_page_shows_state_players_snapshots_and_links(
    admin_client: Client, room: Room
) -> None:
    page = admin_client.get(f"/admin/rooms/room/{room.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/rooms/lobby-1/?spectate=1" in html
    assert "&quot;ball&quot;" in html  # the pretty JSON state (escaped)
    assert "p-1" in html and "Ann" in html
    assert "version <strong>13</strong>" in html
    assert f"/admin/rooms/room/{room.pk}/live/reset/" in html
    assert f"/admin/rooms/room/{room.pk}/live/close/" in html
    # recent snapshots: the latest ten, read-only
    versions = re.findall(r'<td class="field-version">\s*<p>(\d+)</p>', html)
    assert versions == [str(v) for v in range(13, 3, -1)]


def test_add_room_page(admin_client: Client) -> None:
    assert admin_client.get("/admin/rooms/room/add/").status_code == 200
    answer = admin_client.post("/admin/rooms/room/add/", {
        "room_id": "made-in-admin", "name": "", "room_type": "freeform",
        "visibility": "private", "max_players": "", "owner": "", "members": "",
        "snapshots-TOTAL_FORMS": "0", "snapshots-INITIAL_FORMS": "0",
    })
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert Room.objects.get(room_id="made-in-admin").visibility == "private"


def test_add_room_refuses_a_bad_room_id(admin_client: Client) -> None:
    answer = admin_client.post("/admin/rooms/room/add/", {
        "room_id": "bad id!", "name": "", "room_type": "freeform", "visibility": "public",
        "max_players": "", "owner": "", "members": "",
        "snapshots-TOTAL_FORMS": "0", "snapshots-INITIAL_FORMS": "0",
    })
    assert answer.status_code == 200
    assert "A–Z a–z 0–9 _ . - only" in answer.content.decode()
    assert not Room.objects.filter(room_id="bad id!").exists()


def test_confirmation_pages(admin_client: Client, room: Room) -> None:
    for action, text in (("reset", "Yes, reset the state"), ("close", "Yes, close the room"),
                         ("kick", '<option value="p-1" selected>Ann (p-1)</option>')):
        page = admin_client.get(f"/admin/rooms/room/{room.pk}/live/{action}/?player=p-1")
        assert page.status_code == 200
        assert text in page.content.decode(), action
    room.refresh_from_db()
    assert room.closed_at is None  # a GET changes nothing


def test_kick_page_of_an_empty_room(admin_client: Client, admin_user: Any) -> None:
    empty = room_create(by=admin_user, room_id="empty-1")
    page = admin_client.get(f"/admin/rooms/room/{empty.pk}/live/kick/")
    assert "no players in this room" in page.content.decode()


def test_close_from_the_room_page(admin_client: Client, room: Room) -> None:
    answer = admin_client.post(f"/admin/rooms/room/{room.pk}/live/close/")
    assert answer.status_code == 302
    room.refresh_from_db()
    assert room.closed_at is not None
    page = admin_client.get(answer["Location"]).content.decode()
    assert "Room lobby-1 was closed." in page
    assert "/live/close/" not in page  # no live actions on a closed room


@pytest.mark.django_db(transaction=True)  # no test transaction: the reset runs at once
def test_reset_of_a_room_that_is_not_live_says_why(admin_client: Client, room: Room) -> None:
    answer = admin_client.post(f"/admin/rooms/room/{room.pk}/live/reset/", follow=True)
    assert "Not reset" in answer.content.decode()


def test_bulk_close_asks_first(admin_client: Client, room: Room) -> None:
    form = {"action": "close_rooms", "_selected_action": [str(room.pk)]}
    confirm = admin_client.post("/admin/rooms/room/", form)
    assert confirm.status_code == 200
    assert "Yes, close them" in confirm.content.decode()
    room.refresh_from_db()
    assert room.closed_at is None
    done = admin_client.post("/admin/rooms/room/", {**form, "confirm": "yes"})
    assert done.status_code == 302
    room.refresh_from_db()
    assert room.closed_at is not None


def test_kick_action_needs_one_room(admin_client: Client, room: Room, admin_user: Any) -> None:
    other = room_create(by=admin_user, room_id="lobby-2")
    many = admin_client.post("/admin/rooms/room/", {
        "action": "kick_player", "_selected_action": [str(room.pk), str(other.pk)]
    }, follow=True)
    assert "Select exactly one room" in many.content.decode()
    one = admin_client.post("/admin/rooms/room/", {
        "action": "kick_player", "_selected_action": [str(room.pk)]
    })
    assert one["Location"] == f"/admin/rooms/room/{room.pk}/live/kick/"


def test_live_actions_need_change_permission(room: Room, django_user_model: Any) -> None:
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    client = Client()
    client.force_login(viewer)
    assert client.get(f"/admin/rooms/room/{room.pk}/live/close/").status_code == 403
    assert client.post(f"/admin/rooms/room/{room.pk}/live/close/").status_code == 403
    room.refresh_from_db()
    assert room.closed_at is None


def test_live_actions_need_staff(room: Room) -> None:
    answer = Client().post(f"/admin/rooms/room/{room.pk}/live/close/")
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]


def test_player_sessions_are_read_only(admin_client: Client, room: Room, admin_user: Any) -> None:
    session = PlayerSession.objects.create(
        token_hash="f" * 64, room=room, player_id="p-1", user=admin_user
    )
    listing = admin_client.get("/admin/rooms/playersession/")
    assert listing.status_code == 200
    assert "p-1" in listing.content.decode()
    detail = admin_client.get(f"/admin/rooms/playersession/{session.pk}/change/")
    assert detail.status_code == 200
    assert "f" * 64 not in detail.content.decode()
    assert admin_client.get("/admin/rooms/playersession/add/").status_code == 403
    assert admin_client.post(
        f"/admin/rooms/playersession/{session.pk}/delete/", {"post": "yes"}
    ).status_code == 403
    for query in ("q=p-1", "q=admin", "ended_at__isempty=1"):
        assert "p-1" in admin_client.get(f"/admin/rooms/playersession/?{query}").content.decode()
