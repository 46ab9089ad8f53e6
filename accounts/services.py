"""Writes about users' API credentials."""

from __future__ import annotations

from typing import Any

from rest_framework.authtoken.models import Token


def user_token_get_or_create(*, user: Any) -> str:
    """The user's DRF token key (``Authorization: Token <key>`` or ``?token=<key>``)."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key
