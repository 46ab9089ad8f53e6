"""Every Redis key the cluster store uses, built and parsed in one place.

The layout is made for Redis Cluster (docs/scaling.md lists every key):

- every key of one room carries the room id as its hash tag (``{room}``), so a
  room's Lua scripts, its log and its hashes live in one slot and stay atomic;
  a room script takes only keys of its own room (``room_keys``, ``turn_key``);
- every key of one process carries the process id as its hash tag (``{proc}``);
- the two global indexes (``PROCS``, ``GRACES``) are sets changed by
  single-key commands only, never inside a script.

Nothing outside this module spells a key; a key that is added goes here, with
its builder and, if the store reads it back from a reply, its parser.
"""

from __future__ import annotations

PREFIX = "kasagi:"
#: set of process ids that ran a heartbeat (the janitors reap the dead ones)
PROCS = PREFIX + "procs"
#: set of room ids whose ``grace`` zset may have members (a superset: the janitor
#: drops a room once its zset is empty)
GRACES = PREFIX + "graces"

_ROOM = PREFIX + "room:{"
_LOG_SUFFIX = "}:log"

#: suffixes of a room's keys, in the order every room script takes them as KEYS
ROOM_PARTS = ("meta", "obj", "ov", "init", "conn", "tok", "bytoken", "log", "grace")


def room_keys(room_id: str) -> list[str]:
    """A room's keys in ``ROOM_PARTS`` order (the KEYS of every room script)."""
    base = f"{_ROOM}{room_id}}}:"
    return [base + part for part in ROOM_PARTS]


def meta_key(room_id: str) -> str:
    return f"{_ROOM}{room_id}}}:meta"


def bytoken_key(room_id: str) -> str:
    """hash: token hash → player id, for the players now in the room."""
    return f"{_ROOM}{room_id}}}:bytoken"


def grace_key(room_id: str) -> str:
    """zset: player id → grace deadline (ms, Redis clock)."""
    return f"{_ROOM}{room_id}}}:grace"


def log_key(room_id: str) -> str:
    return f"{_ROOM}{room_id}{_LOG_SUFFIX}"


def lease_key(room_id: str) -> str:
    return f"{_ROOM}{room_id}}}:snap"


def runner_key(room_id: str) -> str:
    """string ``proc|n``: the process running the room's code (its lease, PX)."""
    return f"{_ROOM}{room_id}}}:runner"


def fence_key(room_id: str) -> str:
    """counter: the n of the last runner lease handed out (the fencing token)."""
    return f"{_ROOM}{room_id}}}:fence"


def code_key(room_id: str) -> str:
    """string: the room code's server-only data and timers (JSON)."""
    return f"{_ROOM}{room_id}}}:code"


def handled_key(room_id: str) -> str:
    """string: the log id of the last MESSAGE (``M`` entry) the room's runner handled,
    where the next runner starts replaying (a message sent while no runner held the
    lease is handled by the next one, not lost)."""
    return f"{_ROOM}{room_id}}}:handled"


def docs_key(room_id: str) -> str:
    """hash: docId → the document's compacted state (§16, a Yjs v1 update)."""
    return f"{_ROOM}{room_id}}}:docs"


def docpos_key(room_id: str) -> str:
    """hash: docId → the log entry id up to which its compacted state holds every update."""
    return f"{_ROOM}{room_id}}}:docpos"


def turn_key(room_id: str, field: str) -> str:
    """string: the writer whose turn it is on one contended object."""
    return f"{_ROOM}{room_id}}}:turn:{field}"


def heartbeat_key(proc: str) -> str:
    return f"{PREFIX}proc:{{{proc}}}"


def proc_players_key(proc: str) -> str:
    """set: ``member(room, player)`` of the players whose socket is on ``proc``."""
    return f"{PREFIX}proc:{{{proc}}}:players"


def wake_key(proc: str) -> str:
    return f"{PREFIX}proc:{{{proc}}}:wake"


def member(room_id: str, player_id: str) -> str:
    """A player as one string in a process's players set."""
    return f"{room_id}\n{player_id}"


# -- parsers: the inverse of the builders above, for what Redis hands back -----


def room_of_log(stream: bytes | str) -> str | None:
    """The room id of a ``log_key``, None for any other key (a wake stream)."""
    name = stream.decode() if isinstance(stream, bytes) else stream
    if name.startswith(_ROOM) and name.endswith(_LOG_SUFFIX):
        return name[len(_ROOM):-len(_LOG_SUFFIX)]
    return None


def parse_member(raw: bytes | str) -> tuple[str, str]:
    """``member``'s (room id, player id)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    room_id, player_id = text.split("\n", 1)
    return room_id, player_id


def proc_of_conn(conn_id: bytes | str) -> str:
    """The process of a socket id ``process|n`` (the ``conn`` hash's values)."""
    text = conn_id.decode() if isinstance(conn_id, bytes) else conn_id
    return text.rsplit("|", 1)[0]
