"""The Origin rule of PROTOCOL.md §7 for WebSocket handshakes.

Channels' ``AllowedHostsOriginValidator`` also refuses handshakes that carry
no Origin header; the contract accepts those (game engines, SDKs, load
tools), so this checks only an Origin that is present. ``SyncConsumer``
applies it itself (no middleware coroutine kept alive per connection);
``OriginCheckMiddleware`` is the same rule for any other WebSocket app.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.http.request import split_domain_port, validate_host


def origin_allowed(origin: str) -> bool:
    parsed = urlparse(origin)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return False
    host, _port = split_domain_port(parsed.netloc)
    allowed = settings.ALLOWED_HOSTS or (
        [".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else []
    )
    return validate_host(host, allowed)


def handshake_allowed(scope: dict[str, Any]) -> bool:
    """False when the handshake carries an Origin that is not an allowed host."""
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            return origin_allowed(value.decode("latin-1"))
    return True


async def refuse(receive: Any, send: Any) -> None:
    """Refuse a WebSocket handshake: the server answers HTTP 403."""
    await receive()  # websocket.connect
    await send({"type": "websocket.close", "code": 403})


class OriginCheckMiddleware:
    """Refuse (HTTP 403) a handshake whose Origin is not an allowed host."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not handshake_allowed(scope):
            return await refuse(receive, send)
        return await self.app(scope, receive, send)
