"""The Origin rule of PROTOCOL.md §7 for WebSocket handshakes.

Channels' ``AllowedHostsOriginValidator`` also refuses handshakes that carry
no Origin header; the contract accepts those (game engines, SDKs, load
tools), so this small middleware checks only an Origin that is present.
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


class OriginCheckMiddleware:
    """Refuse (HTTP 403) a handshake whose Origin is not an allowed host."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            for name, value in scope.get("headers", ()):
                if name == b"origin":
                    if not origin_allowed(value.decode("latin-1")):
                        await receive()  # websocket.connect
                        await send({"type": "websocket.close", "code": 403})
                        return None
                    break
        return await self.app(scope, receive, send)
