"""The rooms REST API in-process (Django's test client): shapes, permissions, validation.

PROTOCOL.md §10: camelCase room objects, DRF pagination, ``{"detail": ...}``
errors; §7 visibility: public / login / private, owner or staff closes.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from rooms.models import Room, RoomSnapshot
from rooms.services import room_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("engine")]

ROOM_FIELDS = {
    "roomId", "name", "roomType", "visibility", "maxPlayers", "playerCount", "version",
    "createdAt",
}


@pytest.fixture
def users(django_user_model: Any, settings: Any) -> dict[str, Any]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast tests
    make = django_user_model.objects.create_user
    return {
        "ann": make(username="ann", password="pw-ann-123"),
        "bob": make(username="bob", password="pw-bob-123"),
        "staff": make(username="staff", password="pw-staff-123", is_staff=True),
    }


@pytest.fixture
def rooms(users: dict[str, Any]) -> dict[str, Room]:
    ann = users["ann"]
    made = {
        "pub": room_create(by=ann, room_id="pub", visibility="public"),
        "log": room_create(by=ann, room_id="log", visibility="login"),
        "priv": room_create(by=ann, room_id="priv", visibility="private"),
        "club": room_create(by=users["staff"], room_id="club", visibility="private"),
    }
    made["club"].members.add(users["bob"])
    return made


def as_user(user: Any | None) -> Client:
    """A client authenticated with the user's token, as a game or SDK would be."""
    if user is None:
        return Client()
    token, _ = Token.objects.get_or_create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def ids(answer: Any) -> set[str]:
    return {room["roomId"] for room in answer.json()["results"]}


# -- list -----------------------------------------------------------------------


def test_list_is_paginated_camel_case_rooms(rooms: dict[str, Room]) -> None:
    answer = Client().get("/api/rooms/")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 1 and body["next"] is None and body["previous"] is None
    room = body["results"][0]
    assert set(room) == ROOM_FIELDS
    assert room["roomId"] == "pub"
    assert room["roomType"] == "freeform"
    assert room["visibility"] == "public"
    assert room["maxPlayers"] == 64
    assert room["playerCount"] == 0 and room["version"] == 0
    assert room["createdAt"].endswith("Z")


@pytest.mark.parametrize(
    ("who", "visible"),
    [
        (None, {"pub"}),
        ("ann", {"pub", "log", "priv"}),
        ("bob", {"pub", "log", "club"}),
        ("staff", {"pub", "log", "priv", "club"}),
    ],
)
def test_list_shows_the_rooms_this_user_may_see(
    users: dict[str, Any], rooms: dict[str, Room], who: str | None, visible: set[str]
) -> None:
    answer = as_user(users.get(who)).get("/api/rooms/")
    assert answer.status_code == 200
    assert ids(answer) == visible


def test_session_login_works_like_a_token(users: dict[str, Any], rooms: dict[str, Room]) -> None:
    client = Client()
    client.force_login(users["bob"])
    assert ids(client.get("/api/rooms/")) == {"pub", "log", "club"}


def test_closed_rooms_are_gone_from_the_api(users: dict[str, Any], rooms: dict[str, Room]) -> None:
    assert as_user(users["ann"]).delete("/api/rooms/pub/").status_code == 204
    assert "pub" not in ids(as_user(users["staff"]).get("/api/rooms/"))
    assert as_user(users["ann"]).get("/api/rooms/pub/").status_code == 404


def test_list_pages(users: dict[str, Any]) -> None:
    for n in range(5):
        room_create(by=users["ann"], room_id=f"many-{n}")
    body = Client().get("/api/rooms/?pageSize=2").json()
    assert body["count"] == 5 and len(body["results"]) == 2
    assert "page=2" in body["next"]
    last = Client().get("/api/rooms/?pageSize=2&page=3").json()
    assert len(last["results"]) == 1 and last["next"] is None and last["previous"]


def test_version_and_players_come_from_the_latest_snapshot_when_not_live(
    rooms: dict[str, Room],
) -> None:
    RoomSnapshot.objects.create(room=rooms["pub"], version=3, state={"players": {}})
    RoomSnapshot.objects.create(
        room=rooms["pub"], version=7,
        state={"players": {"p-1": {"x": 1}, "p-2": {}}, "entities": {}},
    )
    room = Client().get("/api/rooms/pub/").json()
    assert (room["version"], room["playerCount"]) == (7, 2)
    state = Client().get("/api/rooms/pub/state/").json()
    assert state == {
        "roomId": "pub", "version": 7,
        "state": {"players": {"p-1": {"x": 1}, "p-2": {}}, "entities": {}},
    }


# -- create -----------------------------------------------------------------------


def test_create_needs_a_user(rooms: dict[str, Room]) -> None:
    answer = Client().post("/api/rooms/", {"roomId": "x"}, content_type="application/json")
    assert answer.status_code == 401
    assert "detail" in answer.json()


def test_create_returns_the_room_owned_by_the_caller(users: dict[str, Any]) -> None:
    answer = as_user(users["bob"]).post(
        "/api/rooms/",
        {"roomId": "bobs.room-1", "name": "Bob's", "roomType": "arena",
         "visibility": "private", "maxPlayers": 4},
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert set(body) == ROOM_FIELDS
    assert {k: body[k] for k in ("roomId", "name", "roomType", "visibility", "maxPlayers",
                                 "playerCount", "version")} == {
        "roomId": "bobs.room-1", "name": "Bob's", "roomType": "arena",
        "visibility": "private", "maxPlayers": 4, "playerCount": 0, "version": 0,
    }
    room = Room.objects.get(room_id="bobs.room-1")
    assert room.owner == users["bob"]
    assert as_user(users["bob"]).get("/api/rooms/bobs.room-1/").status_code == 200
    assert as_user(users["ann"]).get("/api/rooms/bobs.room-1/").status_code == 404


def test_create_defaults(users: dict[str, Any]) -> None:
    body = as_user(users["ann"]).post(
        "/api/rooms/", {"roomId": "plain"}, content_type="application/json"
    ).json()
    assert (body["name"], body["roomType"], body["visibility"], body["maxPlayers"]) == (
        "plain", "freeform", "public", 64)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"roomId": "bad id"}, "roomId"),
        ({"roomId": "bad/id"}, "roomId"),
        ({"roomId": "x" * 65}, "roomId"),
        ({"roomId": ""}, "roomId"),
        ({"roomId": "ok\n"}, "roomId"),
        ({}, "roomId"),
        ({"roomId": "ok", "roomType": "chess"}, "roomType"),
        ({"roomId": "ok", "visibility": "secret"}, "visibility"),
        ({"roomId": "ok", "maxPlayers": 0}, "maxPlayers"),
        ({"roomId": "ok", "maxPlayers": "many"}, "maxPlayers"),
        ({"roomId": "pub"}, "roomId"),  # duplicate
    ],
)
def test_create_refuses_bad_input_with_400(
    users: dict[str, Any], rooms: dict[str, Room], body: dict[str, Any], field: str
) -> None:
    answer = as_user(users["ann"]).post("/api/rooms/", body, content_type="application/json")
    assert answer.status_code == 400
    errors = answer.json()
    assert field in errors, errors
    assert isinstance(errors["detail"], str) and errors["detail"].startswith(field)


def test_a_closed_room_id_stays_taken(users: dict[str, Any], rooms: dict[str, Room]) -> None:
    as_user(users["ann"]).delete("/api/rooms/pub/")
    answer = as_user(users["ann"]).post(
        "/api/rooms/", {"roomId": "pub"}, content_type="application/json"
    )
    assert answer.status_code == 400


# -- detail, state, close -----------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "room", "status"),
    [
        (None, "pub", 200), (None, "log", 404), (None, "priv", 404),
        ("bob", "log", 200), ("bob", "priv", 404), ("bob", "club", 200),
        ("ann", "priv", 200), ("staff", "priv", 200), (None, "nope", 404),
    ],
)
def test_detail_for_who_may_see_it(
    users: dict[str, Any], rooms: dict[str, Room], who: str | None, room: str, status: int
) -> None:
    answer = as_user(users.get(who)).get(f"/api/rooms/{room}/")
    assert answer.status_code == status
    if status == 200:
        assert set(answer.json()) == ROOM_FIELDS
    else:
        assert "detail" in answer.json()


@pytest.mark.parametrize(
    ("who", "room", "status"),
    [
        (None, "pub", 200), (None, "priv", 404),
        ("bob", "priv", 404), ("bob", "club", 200), ("staff", "priv", 200), ("ann", "priv", 200),
    ],
)
def test_state_for_who_may_join(
    users: dict[str, Any], rooms: dict[str, Room], who: str | None, room: str, status: int
) -> None:
    answer = as_user(users.get(who)).get(f"/api/rooms/{room}/state/")
    assert answer.status_code == status
    if status == 200:
        assert answer.json() == {
            "roomId": room, "version": 0, "state": {"players": {}, "entities": {}}
        }


def test_state_follows_kasagi_allow_anonymous(
    settings: Any, users: dict[str, Any], rooms: dict[str, Room]
) -> None:
    settings.KASAGI = {**settings.KASAGI, "allow_anonymous": False}
    assert Client().get("/api/rooms/pub/state/").status_code == 401
    assert as_user(users["bob"]).get("/api/rooms/pub/state/").status_code == 200


@pytest.mark.parametrize(
    ("who", "room", "status"),
    [
        (None, "pub", 401), (None, "priv", 404), ("bob", "pub", 403), ("bob", "club", 403),
        ("bob", "priv", 404), ("ann", "priv", 204), ("staff", "pub", 204),
        ("staff", "club", 204),
    ],
)
def test_close_is_for_the_owner_or_staff(
    users: dict[str, Any], rooms: dict[str, Room], who: str | None, room: str, status: int
) -> None:
    answer = as_user(users.get(who)).delete(f"/api/rooms/{room}/")
    assert answer.status_code == status
    closed = Room.objects.get(room_id=room).closed_at is not None
    assert closed is (status == 204)
    if status != 204:
        assert "detail" in answer.json()


def test_a_bad_token_is_refused(rooms: dict[str, Room]) -> None:
    answer = Client(HTTP_AUTHORIZATION="Token nope").get("/api/rooms/")
    assert answer.status_code == 401
    assert "detail" in answer.json()


# -- tokens and schema ---------------------------------------------------------------


def test_token_for_username_and_password(users: dict[str, Any]) -> None:
    first = Client().post(
        "/api/auth/token/", {"username": "ann", "password": "pw-ann-123"},
        content_type="application/json",
    )
    assert first.status_code == 200
    assert set(first.json()) == {"token"}
    again = Client().post("/api/auth/token/", {"username": "ann", "password": "pw-ann-123"})
    assert again.json() == first.json()
    assert Token.objects.get(user=users["ann"]).key == first.json()["token"]
    # a stale token header does not stand in the way of a login
    stale = Client(HTTP_AUTHORIZATION="Token stale").post(
        "/api/auth/token/", {"username": "ann", "password": "pw-ann-123"},
        content_type="application/json",
    )
    assert stale.status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"username": "ann", "password": "wrong"}, {"username": "ann"}, {}],
)
def test_token_refuses_bad_credentials(users: dict[str, Any], body: dict[str, str]) -> None:
    answer = Client().post("/api/auth/token/", body, content_type="application/json")
    assert answer.status_code == 400
    assert isinstance(answer.json()["detail"], str)


def test_openapi_schema_describes_the_api() -> None:
    answer = Client().get("/api/schema/?format=json")
    assert answer.status_code == 200
    schema = answer.json()
    paths = schema["paths"]
    for route in ("/api/rooms/", "/api/rooms/{roomId}/", "/api/rooms/{roomId}/state/",
                  "/api/auth/token/"):
        assert route in paths, sorted(paths)
    assert set(paths["/api/rooms/{roomId}/"]) >= {"get", "delete"}
    room = schema["components"]["schemas"]["Room"]["properties"]
    assert set(room) == ROOM_FIELDS
    assert Client().get("/api/docs/").status_code == 200
