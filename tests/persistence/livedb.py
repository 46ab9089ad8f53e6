"""Read and change the live servers' database from a test, as an outsider would.

Plain SQL over sqlite3 or psycopg (whichever the URL names), plus the Django
ORM through ``manage.py shell`` for rows whose columns are easier to get
right that way (users, tokens, rooms). Nothing here goes through the server.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from tests.live import ROOT, server_env

T = TypeVar("T")


class LiveDB:
    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgres://", "postgresql://"))

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Run one statement; ``?`` placeholders on both databases."""
        if self.postgres:
            import psycopg
            from psycopg.rows import dict_row

            with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
                cursor = conn.execute(sql.replace("?", "%s"), params)
                found = cursor.fetchall() if cursor.description else []
        else:
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30)
            conn.row_factory = sqlite3.Row
            try:
                with conn:
                    found = [dict(row) for row in conn.execute(sql, params).fetchall()]
            finally:
                conn.close()
        for row in found:
            if isinstance(row.get("state"), str):
                row["state"] = json.loads(row["state"])
        return found

    def room(self, room_id: str) -> dict[str, Any] | None:
        found = self.rows("SELECT * FROM rooms_room WHERE room_id = ?", room_id)
        return found[0] if found else None

    def snapshots(self, room_id: str) -> list[dict[str, Any]]:
        """The room's snapshots, newest first."""
        return self.rows(
            "SELECT s.* FROM rooms_roomsnapshot s JOIN rooms_room r ON r.id = s.room_id"
            " WHERE r.room_id = ? ORDER BY s.version DESC",
            room_id,
        )

    def latest_version(self, room_id: str) -> int | None:
        found = self.snapshots(room_id)
        return found[0]["version"] if found else None

    def session(self, token_hash: str) -> dict[str, Any] | None:
        found = self.rows("SELECT * FROM rooms_playersession WHERE token_hash = ?", token_hash)
        return found[0] if found else None

    def sessions(self, room_id: str) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT s.* FROM rooms_playersession s JOIN rooms_room r ON r.id = s.room_id"
            " WHERE r.room_id = ?",
            room_id,
        )

    def django(self, code: str) -> str:
        """Run Python in ``manage.py shell`` on this database; its stdout."""
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
            cwd=ROOT, env=server_env(self.url), capture_output=True, text=True, timeout=60,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py shell failed:\n{done.stderr}")
        return done.stdout

    def make_user(self, username: str) -> tuple[int, str]:
        """A user with a DRF token: (pk, token key)."""
        out = self.django(
            "from django.contrib.auth import get_user_model\n"
            "from rest_framework.authtoken.models import Token\n"
            f"user = get_user_model().objects.create_user({username!r}, password='pw-1234-x')\n"
            "print(user.pk, Token.objects.create(user=user).key)\n"
        )
        pk, key = out.split()[-2:]
        return int(pk), key


async def eventually(check: Callable[[], T], timeout: float = 20.0, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy (the writer runs in the background)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what or check}")
        await asyncio.sleep(0.1)
