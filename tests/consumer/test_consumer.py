"""The consumer in-process through Channels' WebsocketCommunicator (the generic ASGI path).

These drive the full ASGI stack (origin check, auth, routing) without daphne,
so the consumer's outbox writer — the path any other ASGI server uses — is
exercised too; tests/e2e/ covers daphne's fast path.
"""

from __future__ import annotations

import msgpack
import pytest
from channels.testing import WebsocketCommunicator

from kasagi_project.asgi import application
from sync.runtime import reset_runtime

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def fresh_runtime():
    reset_runtime()
    yield
    reset_runtime()


async def connected(**headers) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, "/sync",
                                 headers=[(k.encode(), v.encode()) for k, v in headers.items()])
    accepted, _ = await comm.connect()
    assert accepted
    return comm


async def test_join_update_and_confirm_through_the_outbox_writer():
    a, b = await connected(), await connected()
    await a.send_json_to({"type": "JOIN_ROOM", "roomId": "c1", "requestId": 1,
                          "payload": {"name": "A"}})
    full = await a.receive_json_from()
    assert full["type"] == "FULL_STATE" and full["requestId"] == 1
    await b.send_json_to({"type": "JOIN_ROOM", "roomId": "c1", "payload": {}})
    await b.receive_json_from()
    assert (await a.receive_json_from())["type"] == "PLAYER_JOINED"
    await a.send_json_to({"type": "STATE_UPDATE", "roomId": "c1", "payload": {"x": 1}})
    for comm in (a, b):
        delta = await comm.receive_json_from()
        assert delta["type"] == "DELTA_UPDATE"
        assert (delta["baseVersion"], delta["version"]) == (2, 3)
    await a.disconnect()
    await b.disconnect()


async def test_a_handler_crash_is_error_internal_and_the_socket_lives(monkeypatch):
    from sync.consumer import SyncConsumer

    async def broken(self, message):
        raise RuntimeError("boom")

    monkeypatch.setitem(SyncConsumer._handlers, next(
        k for k in SyncConsumer._handlers if k.__name__ == "Resync"), broken)
    comm = await connected()
    await comm.send_json_to({"type": "JOIN_ROOM", "roomId": "c2", "payload": {}})
    await comm.receive_json_from()
    await comm.send_json_to({"type": "RESYNC", "roomId": "c2", "requestId": "r"})
    error = await comm.receive_json_from()
    assert error["payload"]["code"] == "INTERNAL" and error["requestId"] == "r"
    await comm.send_json_to({"type": "PING", "requestId": "p"})
    assert (await comm.receive_json_from())["type"] == "PONG"
    await comm.disconnect()


async def test_foreign_origin_is_refused_and_missing_origin_accepted():
    comm = WebsocketCommunicator(application, "/sync",
                                 headers=[(b"origin", b"https://evil.example")])
    accepted, _ = await comm.connect()
    assert not accepted
    ok = await connected(origin="http://localhost:8080")
    await ok.disconnect()


async def test_msgpack_through_the_outbox_writer():
    comm = WebsocketCommunicator(application, "/sync", subprotocols=["kasagi.msgpack"])
    accepted, subprotocol = await comm.connect()
    assert accepted and subprotocol == "kasagi.msgpack"
    await comm.send_to(bytes_data=msgpack.packb(
        {"type": "JOIN_ROOM", "roomId": "c4", "requestId": 9, "payload": {"x": 1}}))
    full = msgpack.unpackb(await comm.receive_from())  # binary frame: bytes
    assert full["type"] == "FULL_STATE" and full["requestId"] == 9
    await comm.send_to(bytes_data=b"\xc1")
    error = msgpack.unpackb(await comm.receive_from())
    assert error["payload"]["code"] == "BAD_JSON"
    await comm.disconnect()


async def test_the_channels_middleware_stack_of_the_integration_guide():
    """docs/integrate.md §2: Channels' routers and auth stack around sync.routing."""
    from channels.auth import AuthMiddlewareStack
    from channels.db import database_sync_to_async
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from accounts.middleware import TokenAuthMiddleware
    from sync.origin import OriginCheckMiddleware
    from sync.routing import websocket_urlpatterns

    site = ProtocolTypeRouter({
        "websocket": OriginCheckMiddleware(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    })

    @database_sync_to_async
    def token_for(name: str) -> str:
        user = get_user_model().objects.create_user(name, password="x")
        return Token.objects.create(user=user).key

    key = await token_for("guide-user")
    comm = WebsocketCommunicator(site, "/sync",
                                 headers=[(b"authorization", f"Token {key}".encode())])
    accepted, _ = await comm.connect()
    assert accepted
    await comm.send_json_to({"type": "JOIN_ROOM", "roomId": "c5", "payload": {}})
    full = await comm.receive_json_from()
    me = full["payload"]["state"]["players"][full["payload"]["playerId"]]
    assert me["username"] == "guide-user" and isinstance(me["userId"], int)
    await comm.disconnect()
    evil = WebsocketCommunicator(site, "/sync", headers=[(b"origin", b"https://evil.example")])
    assert not (await evil.connect())[0]
    # The auth lookups ran in asgiref's shared thread, whose connection outlives the
    # test (CONN_MAX_AGE): close it, or the test database cannot be dropped at the end.
    from django.db import connections

    await database_sync_to_async(connections.close_all)()
