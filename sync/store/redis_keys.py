"""Every Redis key the cluster store uses, built in one place (docs/scaling.md lists them).

Room keys carry the room id as a hash tag (``{room}``) so one room's keys would
share a slot; the global keys (grace, tokens, processes) do not, which is why
the store needs one Redis primary (Sentinel is fine, Cluster is not).
"""

from __future__ import annotations

PREFIX = "kasagi:"
GRACE = PREFIX + "grace"
PROCS = PREFIX + "procs"

#: suffixes of a room's keys, in the order every room script takes them as KEYS
ROOM_PARTS = ("meta", "obj", "ov", "init", "conn", "tok", "log", "grace")


def room_keys(room_id: str) -> list[str]:
    base = f"{PREFIX}room:{{{room_id}}}:"
    return [GRACE if part == "grace" else base + part for part in ROOM_PARTS]


def log_key(room_id: str) -> str:
    return f"{PREFIX}room:{{{room_id}}}:log"


def lease_key(room_id: str) -> str:
    return f"{PREFIX}room:{{{room_id}}}:snap"


def token_key(token_hash: str) -> str:
    return f"{PREFIX}token:{token_hash}"


def heartbeat_key(proc: str) -> str:
    return f"{PREFIX}proc:{proc}"


def proc_players_key(proc: str) -> str:
    return f"{PREFIX}proc:{proc}:players"


def wake_key(proc: str) -> str:
    return f"{PREFIX}proc:{proc}:wake"


def member(room_id: str, player_id: str) -> str:
    """A player as one string in the grace zset and the per-process sets."""
    return f"{room_id}\n{player_id}"
