"""Drive the engine in a process of its own, without daphne: ``python -m`` this module.

Used by test_engine.py for what no socket can reach (closing a room, the
metrics, the ``atexit`` flush of a server that is not Twisted). It builds the
runtime exactly as a server does (``rooms`` installs the database factories),
runs one scenario and prints a JSON summary as its last line.
"""

from __future__ import annotations

import asyncio
import json
import sys

import django


async def close_scenario(room_id: str) -> dict:
    from prometheus_client import REGISTRY

    from sync.directory import ANONYMOUS
    from sync.metrics import METRICS
    from sync.runtime import get_runtime

    runtime = get_runtime()
    store = runtime.store
    await store.activate(room_id, who=ANONYMOUS, create=True)
    joined = await store.join(room_id, {"playerName": "A"}, who=ANONYMOUS,
                              session_token=None, connection=object())
    for n in range(3):
        await store.server_update_entity(room_id, "doc", {"n": n})
    queued = METRICS.persistence_queue()
    await store.close(room_id)
    flushed = runtime.persistence.stop()
    return {
        "token": joined.session_token, "queued": queued, "flushed": flushed,
        "after": METRICS.persistence_queue(),
        "writes": REGISTRY.get_sample_value("kasagi_persistence_write_seconds_count"),
    }


async def exit_scenario(room_id: str) -> dict:
    from sync.directory import ANONYMOUS
    from sync.runtime import get_runtime

    store = get_runtime().store
    await store.activate(room_id, who=ANONYMOUS, create=True)
    version = await store.server_update_entity(room_id, "doc", {"text": "kept at exit"})
    return {"version": version}  # then the process just ends: atexit flushes


def main() -> None:
    scenario, room_id = sys.argv[1], sys.argv[2]
    django.setup()
    result = asyncio.run({"close": close_scenario, "exit": exit_scenario}[scenario](room_id))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
