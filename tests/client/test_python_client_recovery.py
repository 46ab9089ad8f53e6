"""Pure tests of the Python client's recovery by version (PROTOCOL.md §14): parsing RESUMED,
the epoch kept with the mirror, and when the mirror accepts a RESUMED.

No server: the end-to-end resume (RESUMED and the fallback to FULL_STATE) is in
tests/e2e/test_python_client.py.
"""

from __future__ import annotations

from typing import Any

from kasagi_client import ChainOutcome, Delta, FullState, Resumed, StateMirror
from kasagi_client.events import parse_server_message


def full_state_frame(version: int = 7, epoch: Any = "e-1") -> dict[str, Any]:
    payload: dict[str, Any] = {"playerId": "p-1", "sessionToken": "tok", "resumed": False,
                               "state": {"players": {"p-1": {"x": 1}}, "entities": {}}}
    if epoch is not None:
        payload["epoch"] = epoch
    return {"type": "FULL_STATE", "roomId": "r", "version": version, "payload": payload}


def resumed(version: int = 7, epoch: str | None = "e-1", room: str = "r") -> Resumed:
    return Resumed(room_id=room, version=version, player_id="p-1", epoch=epoch,
                   session_token="tok-2")


def loaded(version: int = 7, epoch: Any = "e-1") -> StateMirror:
    mirror = StateMirror()
    full = parse_server_message(full_state_frame(version, epoch))
    assert isinstance(full, FullState)
    mirror.load(full)
    return mirror


def test_resumed_is_parsed_with_its_epoch_and_token() -> None:
    event = parse_server_message({
        "type": "RESUMED", "roomId": "r", "version": 42, "timestamp": 5, "requestId": "py-3",
        "payload": {"playerId": "p-1", "sessionToken": "tok", "resumed": True, "epoch": "e-9"},
    })
    assert event == Resumed(room_id="r", version=42, player_id="p-1", epoch="e-9",
                            request_id="py-3", timestamp=5)
    assert isinstance(event, Resumed) and event.session_token == "tok"
    assert "tok" not in repr(event)  # a secret stays out of logs


def test_full_state_keeps_its_epoch_and_a_1_0_server_gives_none() -> None:
    assert loaded(epoch="e-1").epoch == "e-1"
    assert loaded(epoch=None).epoch is None
    assert loaded(epoch=None).recovery_point("r") is None  # nothing to name: no sinceVersion


def test_recovery_point_names_the_state_held_for_that_room_only() -> None:
    mirror = loaded(version=7)
    assert mirror.recovery_point("r") == (7, "e-1")
    assert mirror.apply(Delta("r", 8, 7, {"entities": {"d": {"open": True}}})) is (
        ChainOutcome.APPLIED)
    assert mirror.recovery_point("r") == (8, "e-1")
    assert mirror.recovery_point("other") is None
    mirror.reset()
    assert mirror.recovery_point("r") is None and mirror.epoch is None


def test_after_a_gap_the_state_at_the_version_is_still_exact_and_resumable() -> None:
    mirror = loaded(version=7)
    assert mirror.apply(Delta("r", 10, 9, {"x": 1})) is ChainOutcome.GAP
    assert mirror.recovery_point("r") == (7, "e-1")
    assert mirror.resume(resumed(7))
    assert mirror.in_sync
    assert mirror.apply(Delta("r", 9, 7, {"players": {"p-1": {"x": 2}}})) is ChainOutcome.APPLIED
    assert mirror.state == {"players": {"p-1": {"x": 2}}, "entities": {}}


def test_resume_keeps_the_state_and_chains_from_its_version() -> None:
    mirror = loaded(version=7)
    state = mirror.state
    assert mirror.resume(resumed(7))
    assert mirror.state is state and mirror.version == 7
    assert mirror.apply(Delta("r", 8, 7, {"players": {"p-1": {"x": 3}}})) is ChainOutcome.APPLIED
    assert mirror.apply(Delta("r", 8, 7, {"players": {"p-1": {"x": 9}}})) is ChainOutcome.STALE


def test_a_resumed_that_does_not_name_the_state_held_is_refused() -> None:
    for answer in (resumed(6), resumed(7, "e-2"), resumed(7, room="other"), resumed(7, None)):
        mirror = loaded(version=7)
        assert not mirror.resume(answer), answer
        assert mirror.version == 7 and mirror.epoch == "e-1"
    assert not StateMirror().resume(resumed())
