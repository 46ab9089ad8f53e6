"""Documents (§16) in the rooms admin: sizes and a text preview on the room page, and
staff clearing one (its stored row, and its live copy where the room is loaded)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.test import Client
from pycrdt import Doc, Map, Text

from rooms.models import Room, RoomDocument
from rooms.services import room_create
from sync import runtime
from sync.directory import Identity

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("engine")]


def state_of(text: str) -> bytes:
    doc: Doc = Doc()
    doc.get("note", type=Text).insert(0, text)
    doc.get("meta", type=Map)["x"] = 1
    return doc.get_update()


@pytest.fixture
def room(admin_user: Any) -> Room:
    room = room_create(by=admin_user, room_id="docs-1", name="Docs")
    for doc_id, text in (("note", "hello from the admin test"), ("other", "x" * 500)):
        state = state_of(text)
        RoomDocument.objects.create(room=room, doc_id=doc_id, state=state, size=len(state))
    return room


def test_the_room_page_lists_documents_with_sizes_and_text(admin_client: Client, room: Room):
    html = admin_client.get(f"/admin/rooms/room/{room.pk}/change/").content.decode()
    note = RoomDocument.objects.get(room=room, doc_id="note")
    assert "Documents (§16), as last saved" in html
    assert f"{note.size:,} bytes" in html
    assert "note: hello from the admin test" in html  # the Y.Text root, not the map
    assert "meta:" not in html
    assert "x" * 200 in html and "x" * 201 not in html  # the preview is cut
    assert f"/admin/rooms/room/{room.pk}/live/clear-document/?doc=note" in html


def test_staff_clear_a_document_after_a_confirmation(admin_client: Client, room: Room):
    url = f"/admin/rooms/room/{room.pk}/live/clear-document/"
    page = admin_client.get(f"{url}?doc=note")
    assert page.status_code == 200 and "Yes, clear the document" in page.content.decode()
    assert RoomDocument.objects.filter(room=room, doc_id="note").exists()  # GET changes nothing
    done = admin_client.post(url, {"doc_id": "note"}, follow=True)
    assert "Document note of room docs-1 was cleared." in done.content.decode()
    assert list(RoomDocument.objects.filter(room=room).values_list("doc_id", flat=True)) == [
        "other"]
    refused = admin_client.post(url, {"doc_id": "bad id!"})
    assert refused.status_code == 200  # the form again, nothing cleared
    assert RoomDocument.objects.filter(room=room).count() == 1


def test_clearing_forgets_the_live_copy(admin_client: Client, room: Room):
    store = runtime.get_runtime().store
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(store.activate("docs-1", who=Identity(), create=True))
    finally:
        loop.close()
    store.rooms["docs-1"].docs.apply("note", state_of("live text"))
    assert store.doc_ids("docs-1") == ["note"]
    admin_client.post(f"/admin/rooms/room/{room.pk}/live/clear-document/", {"doc_id": "note"})
    assert store.doc_ids("docs-1") == []


def test_clearing_needs_change_permission(room: Room, django_user_model: Any):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client = Client()
    client.force_login(viewer)
    page = client.post(f"/admin/rooms/room/{room.pk}/live/clear-document/", {"doc_id": "note"})
    assert page.status_code == 403
    assert RoomDocument.objects.filter(room=room).count() == 2
