"""The demo pages' server side, without a browser: what the views render and create."""

from __future__ import annotations

import json

import pytest

from rooms.models import Room

pytestmark = pytest.mark.django_db


def page_config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="kasagi-config" type="application/json">')
    body = html[html.index(">", start) + 1:html.index("</script>", start)]
    return json.loads(body)


def test_lobby_renders_for_anyone_and_offers_create_when_logged_in(client, django_user_model):
    anonymous = client.get("/")
    assert anonymous.status_code == 200
    assert b'id="create-form"' not in anonymous.content
    assert page_config(anonymous)["apiRooms"] == "/api/rooms/"

    client.force_login(django_user_model.objects.create_user("ann", password="pw"))
    logged_in = client.get("/")
    assert b'id="create-form"' in logged_in.content
    assert b'value="arena" selected' in logged_in.content
    assert page_config(logged_in)["username"] == "ann"


def test_first_visit_makes_an_arena_room(client):
    response = client.get("/rooms/fresh-room.1/")
    assert response.status_code == 200
    room = Room.objects.get(room_id="fresh-room.1")
    assert (room.room_type, room.visibility, room.owner) == ("arena", "public", None)
    config = page_config(response)
    assert config["roomId"] == "fresh-room.1" and config["roomType"] == "arena"
    assert config["spectate"] is False and config["tickMs"] > 0
    assert config["speed"] < 1000  # under the arena's limit


def test_an_existing_room_keeps_its_type(client, django_user_model):
    owner = django_user_model.objects.create_user("owner", password="pw")
    Room.objects.create(room_id="plain", room_type="freeform", owner=owner)
    client.force_login(django_user_model.objects.create_user("bob", password="pw"))
    response = client.get("/rooms/plain/")
    assert page_config(response)["roomType"] == "freeform"
    assert Room.objects.get(room_id="plain").owner == owner


@pytest.mark.parametrize("path", ["/rooms/bad!id/", "/rooms/" + "x" * 65 + "/", "/rooms//"])
def test_room_ids_follow_the_protocol(client, path):
    assert client.get(path).status_code == 404
    assert not Room.objects.exists()


def test_spectator_view_is_for_staff(client, django_user_model):
    anonymous = client.get("/rooms/watched/?spectate=1")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]

    client.force_login(django_user_model.objects.create_user("plain", password="pw"))
    assert client.get("/rooms/watched/?spectate=1").status_code == 403

    client.force_login(django_user_model.objects.create_user("staff", password="pw", is_staff=True))
    response = client.get("/rooms/watched/?spectate=1")
    assert response.status_code == 200
    assert page_config(response)["spectate"] is True
    assert b"readonly" in response.content
    assert not Room.objects.filter(room_id="watched").exists()  # watching creates nothing
