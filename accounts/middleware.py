"""Who is on a WebSocket handshake (PROTOCOL.md §7).

A token comes as ``Authorization: Token <key>`` or ``?token=<key>``. A valid
one is the user; a bad one makes the socket anonymous (never an error: the
contract has room rules decide), even if a session cookie came too. Without
a token the Django session cookie decides, checked as Channels'
``AuthMiddlewareStack`` does. ``user_for_handshake`` is the one call the sync
consumer makes at connect: no database hop at all when neither is present,
and no middleware coroutine or scope copy kept alive per connection.
``TokenAuthMiddleware`` is the token rule as ASGI middleware for other stacks.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

from channels.auth import get_user
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie


def token_from_scope(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, key = value.decode("latin-1").partition(" ")
            if scheme.lower() == "token" and key.strip():
                return key.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    keys = query.get("token")
    return keys[0] if keys and keys[0] else None


def session_key_from_scope(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            return parse_cookie(value.decode("latin-1")).get(settings.SESSION_COOKIE_NAME) or None
    return None


@database_sync_to_async
def user_for_token(key: str) -> Any:
    from rest_framework.authtoken.models import Token

    try:
        token = Token.objects.select_related("user").get(key=key)
    except (Token.DoesNotExist, ValueError):
        return AnonymousUser()
    return token.user if token.user.is_active else AnonymousUser()


async def user_for_session(session_key: str) -> Any:
    """The session's user, verified (session auth hash) by Channels' ``get_user``."""
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return await get_user({"session": store})


async def user_for_handshake(scope: dict[str, Any]) -> Any:
    """The user of a handshake: its token if it has one, else its session cookie's."""
    key = token_from_scope(scope)
    if key is not None:
        return await user_for_token(key)
    session_key = session_key_from_scope(scope)
    if session_key is None:
        return AnonymousUser()
    return await user_for_session(session_key)


class TokenAuthMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        key = token_from_scope(scope)
        if key is not None:
            scope = dict(scope, user=await user_for_token(key))
        return await self.app(scope, receive, send)
