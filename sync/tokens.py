"""Session tokens: opaque secrets handed to their owner only, stored hashed.

Only ``hash_token`` output is ever kept in an index, a database row or Redis.
"""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_player_id() -> str:
    return "p-" + secrets.token_hex(8)
