"""``sync.api`` in-process: the same checks, versions and fan-out as a client's message.

A fresh in-memory engine per test; members are recording fakes attached to the
hub the way the consumer attaches a socket. The end-to-end twin (the admin
kicking a real socket's player through this API) is in tests/admin.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from sync import api
from sync.core.errors import ErrorCode, ProtocolError
from sync.directory import ANONYMOUS, Identity, RoomConfig
from sync.hub import OutEvent
from sync.runtime import Runtime
from tests.api.engine import FakeMember

pytestmark = pytest.mark.usefixtures("engine")


async def member_in(engine: Runtime, room_id: str, *, who: Identity = ANONYMOUS,
                    **fields: Any) -> FakeMember:
    store = engine.store
    await store.activate(room_id, who=who, create=True)
    member = FakeMember()
    joined = await store.join(room_id, fields, who=who, session_token=None, connection=member)
    member.player_id, member.session_token = joined.player_id, joined.session_token
    fanout = store.fanout(room_id)
    fanout.attach(member)
    fanout.send_full_state(member, resumed=False)
    return member


async def spectator_in(engine: Runtime, room_id: str) -> FakeMember:
    await engine.store.activate(room_id, who=ANONYMOUS, create=True)
    member = FakeMember()
    fanout = engine.store.fanout(room_id)
    fanout.attach(member)
    fanout.send_full_state(member, resumed=False)
    return member


async def settle(engine: Runtime) -> None:
    """Let every pending tick flush."""
    for _ in range(100):
        if not any(f.items or f.handle for f in engine.hub.rooms.values()):
            return
        await asyncio.sleep(engine.hub.tick)


async def test_update_entity_fans_out_a_delta_with_a_new_version(engine: Runtime) -> None:
    watcher = await spectator_in(engine, "r1")
    version = await api.aupdate_entity("r1", "door", {"open": True})
    await settle(engine)
    delta = watcher.of_type("DELTA_UPDATE")[-1]
    assert delta["payload"] == {"entities": {"door": {"open": True}}}
    assert delta["version"] == version == delta["baseVersion"] + 1
    # a no-op patch: same version, nothing sent
    assert await api.aupdate_entity("r1", "door", {"open": True}) == version
    await settle(engine)
    assert len(watcher.of_type("DELTA_UPDATE")) == 1
    # emptying an entity deletes it
    await api.aupdate_entity("r1", "door", {"open": None})
    assert (await api.aroom_state("r1")).state["entities"] == {}


async def test_update_player_may_write_server_owned_fields(engine: Runtime) -> None:
    # an arena room: a client may not write score, the server may
    engine.store.directory.configs["arena-1"] = RoomConfig("arena-1", room_type="arena")
    player = await member_in(engine, "arena-1", playerName="Ann")
    version = await api.aupdate_player("arena-1", player.player_id, {"score": 10})
    state = await api.aroom_state("arena-1")
    assert state.version == version
    assert state.state["players"][player.player_id]["score"] == 10
    await settle(engine)
    assert player.of_type("DELTA_UPDATE")[-1]["payload"] == {
        "players": {player.player_id: {"score": 10}}
    }


async def test_room_state_reports_players_and_their_sockets(engine: Runtime) -> None:
    ann = await member_in(engine, "r2", playerName="Ann")
    state = await api.aroom_state("r2")
    assert state.room_id == "r2"
    assert state.player_count == 1
    assert state.connected == {ann.player_id: True}
    assert await api.aroom_state("not-loaded") is None
    assert set(await api.aroom_states(["r2", "not-loaded"])) == {"r2"}


async def test_kick_sends_player_left_kicked_and_detaches_the_player(engine: Runtime) -> None:
    ann = await member_in(engine, "r3", playerName="Ann")
    bob = await member_in(engine, "r3", playerName="Bob")
    await api.akick_player("r3", ann.player_id)
    await settle(engine)
    for member in (ann, bob):
        left = member.of_type("PLAYER_LEFT")[-1]
        assert left["payload"] == {"playerId": ann.player_id, "reason": "kicked"}
    assert ann.detached == ["kicked"]
    with pytest.raises(ProtocolError) as refused:
        await api.akick_player("r3", ann.player_id)
    assert refused.value.code is ErrorCode.NOT_IN_ROOM


async def test_close_sends_player_left_closed_then_room_closed(engine: Runtime) -> None:
    ann = await member_in(engine, "r4", playerName="Ann")
    await api.aclose_room("r4")
    await settle(engine)
    kinds = [(f["type"], f["payload"].get("reason") or f["payload"].get("code"))
             for f in ann.frames[1:]]
    assert kinds == [("PLAYER_LEFT", "closed"), ("ERROR", "ROOM_CLOSED")]
    assert ann.detached == ["closed"]
    for change in (api.aupdate_entity("r4", "e", {"a": 1}), api.areset_room("r4")):
        with pytest.raises(ProtocolError) as refused:
            await change
        assert refused.value.code is ErrorCode.ROOM_CLOSED


async def test_reset_replaces_entities_and_restores_players(engine: Runtime) -> None:
    ann = await member_in(engine, "r5", playerName="Ann")
    await api.aupdate_entity("r5", "ball", {"x": 1})
    await api.aupdate_player("r5", ann.player_id, {"x": 5})
    version = await api.areset_room("r5", {"entities": {"goal": {"open": True}}})
    state = (await api.aroom_state("r5")).state
    assert state == {"players": {ann.player_id: {"playerName": "Ann"}},
                     "entities": {"goal": {"open": True}}}
    await settle(engine)
    assert ann.of_type("DELTA_UPDATE")[-1]["version"] == version


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda: api.aupdate_entity("bad id", "e", {}), ErrorCode.BAD_MESSAGE),
        (lambda: api.aupdate_entity("r6", "bad/id", {}), ErrorCode.BAD_MESSAGE),
        (lambda: api.aupdate_entity("r6", "e", ["not", "a", "dict"]), ErrorCode.BAD_MESSAGE),
        (lambda: api.aupdate_entity("r6", "e", {"n": Decimal("1.5")}), ErrorCode.BAD_MESSAGE),
        (lambda: api.aupdate_entity("r6", "e", {1: "non-string key"}), ErrorCode.BAD_MESSAGE),
        (lambda: api.aupdate_entity("r6", "e", {"k" * 65: 1}), ErrorCode.PAYLOAD_TOO_LARGE),
        (lambda: api.aupdate_entity("r6", "e", nested(12)), ErrorCode.PAYLOAD_TOO_LARGE),
        (lambda: api.aupdate_entity("r6", "e", {"s": "x" * 2_000_000}),
         ErrorCode.PAYLOAD_TOO_LARGE),
        (lambda: api.aupdate_player("r6", "p-nobody", {"x": 1}), ErrorCode.NOT_IN_ROOM),
        (lambda: api.areset_room("r6", {"entities": [1]}), ErrorCode.BAD_MESSAGE),
        (lambda: api.aupdate_entity("never-made", "e", {"a": 1}), ErrorCode.ROOM_NOT_FOUND),
    ],
)
async def test_refusals_raise_protocol_errors_and_change_nothing(
    engine: Runtime, call: Any, code: ErrorCode
) -> None:
    await member_in(engine, "r6", playerName="Ann")
    before = await api.aroom_state("r6")
    with pytest.raises(ProtocolError) as refused:
        await call()
    assert refused.value.code is code
    after = await api.aroom_state("r6")
    assert (after.version, after.state) == (before.version, before.state)


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        value = {"n": value}
    return value


async def test_the_patch_is_copied_so_the_caller_may_reuse_it(engine: Runtime) -> None:
    await member_in(engine, "r7")
    patch = {"tags": ["a"]}
    await api.aupdate_entity("r7", "note", patch)
    patch["tags"].append("b")
    assert (await api.aroom_state("r7")).state["entities"]["note"] == {"tags": ["a"]}


async def test_sync_forms_run_on_the_server_loop_from_sync_code(engine: Runtime) -> None:
    """What a sync view or signal in daphne does: sync code in a worker thread."""
    watcher = await spectator_in(engine, "r8")
    loops = record_loops(engine)
    version = await sync_to_async(api.update_entity)("r8", "sign", {"text": "hi"})
    assert loops == [asyncio.get_running_loop()]
    state = await sync_to_async(api.room_state)("r8")
    assert state.version == version
    await settle(engine)
    assert watcher.of_type("DELTA_UPDATE")[-1]["payload"] == {
        "entities": {"sign": {"text": "hi"}}
    }


def record_loops(engine: Runtime) -> list[asyncio.AbstractEventLoop]:
    """Which loops the store's server_update_entity runs on, from now on."""
    loops: list[asyncio.AbstractEventLoop] = []
    original = engine.store.server_update_entity

    async def recording(*args: Any, **kwargs: Any) -> int:
        loops.append(asyncio.get_running_loop())
        return await original(*args, **kwargs)

    engine.store.server_update_entity = recording  # type: ignore[method-assign]
    return loops


async def test_sync_forms_refuse_to_block_the_event_loop(engine: Runtime) -> None:
    with pytest.raises(RuntimeError, match=r"await sync\.api\.aupdate_entity"):
        api.update_entity("r9", "e", {"a": 1})


def test_sync_forms_validate_before_any_loop(engine: Runtime) -> None:
    with pytest.raises(ProtocolError) as refused:
        api.kick_player("r10", "no such player!")
    assert refused.value.code is ErrorCode.BAD_MESSAGE
    assert api.kick_player.__name__ == "kick_player"


async def test_sync_forms_from_another_thread_run_on_the_engine_loop(engine: Runtime) -> None:
    """A thread of the server that is not a sync view (a site's own background thread)."""
    engine.loop = asyncio.get_running_loop()
    watcher = await spectator_in(engine, "r11")
    loops = record_loops(engine)
    version = await asyncio.to_thread(api.update_entity, "r11", "lamp", {"on": True})
    assert loops == [asyncio.get_running_loop()]
    assert (await api.aroom_state("r11")).version == version
    await settle(engine)
    assert watcher.of_type("DELTA_UPDATE")[-1]["version"] == version


def test_sync_forms_without_a_server_keep_one_engine_loop(engine: Runtime) -> None:
    """A management command or a worker: no server loop; calls share one loop of the API's."""
    engine.store.directory.configs["cmd"] = RoomConfig("cmd")
    first = api.update_entity("cmd", "counter", {"n": 1})
    second = api.update_entity("cmd", "counter", {"n": 2})
    assert second == first + 1
    state = api.room_state("cmd")
    assert (state.version, state.state["entities"]) == (second, {"counter": {"n": 2}})
    api.close_room("cmd")
    with pytest.raises(ProtocolError) as refused:
        api.update_entity("cmd", "counter", {"n": 3})
    assert refused.value.code is ErrorCode.ROOM_CLOSED


async def test_send_event_reaches_members_or_one_player_and_is_not_state(
    engine: Runtime,
) -> None:
    ann = await member_in(engine, "ev", playerName="Ann")
    bob = await member_in(engine, "ev", playerName="Bob")
    watcher = await spectator_in(engine, "ev")
    before = engine.store.peek("ev")
    await api.asend_event("ev", "round.start", {"n": 1})
    await api.asend_event("ev", "hint", {"card": 7}, to=bob.player_id)
    await settle(engine)
    for member in (ann, bob, watcher):
        assert member.of_type("EVENT")[0]["payload"] == {
            "kind": "round.start", "data": {"n": 1}, "from": None}
    assert [e["payload"]["kind"] for e in bob.of_type("EVENT")] == ["round.start", "hint"]
    assert [e["payload"]["kind"] for e in ann.of_type("EVENT")] == ["round.start"]
    assert engine.store.peek("ev") == before  # no version, no state
    for call, code in (
        (api.asend_event("ev", "bad kind!"), ErrorCode.BAD_MESSAGE),
        (api.asend_event("ev", "k", {1, 2}), ErrorCode.BAD_MESSAGE),  # not JSON
        (api.asend_event("nowhere", "k"), ErrorCode.ROOM_NOT_FOUND),
    ):
        with pytest.raises(ProtocolError) as info:
            await call
        assert info.value.code is code


async def test_an_event_sits_between_the_changes_made_before_and_after_it(
    engine: Runtime,
) -> None:
    """§11's order within one tick: score, announce, start the next round."""
    ann = await member_in(engine, "ev-order", playerName="Ann")
    await settle(engine)
    del ann.frames[:]
    await api.aupdate_entity("ev-order", "game", {"round": 1, "over": True})
    await api.asend_event("ev-order", "round.over", {"round": 1})
    await api.aupdate_entity("ev-order", "game", {"round": 2, "over": None})
    await settle(engine)
    seen = [(f["type"], f["payload"].get("kind") or f["payload"].get("entities"))
            for f in ann.frames]
    assert seen == [
        ("DELTA_UPDATE", {"game": {"round": 1, "over": True}}),
        ("EVENT", "round.over"),
        ("DELTA_UPDATE", {"game": {"round": 2, "over": None}}),
    ]


async def test_a_relayed_event_waits_for_the_tick_and_keeps_it_one_frame(
    engine: Runtime,
) -> None:
    """A player's relayed event goes right after the tick's frames: chatting while
    moving does not split a tick's changes into one frame per message (§11's
    order: after the changes before it)."""
    ann = await member_in(engine, "ev-relay", playerName="Ann")
    await settle(engine)
    del ann.frames[:]
    await api.aupdate_entity("ev-relay", "board", {"a": 1})
    engine.hub.publish_event("ev-relay", OutEvent("chat", {"t": "hi"}, "p-bob", exclude="p-bob"))
    await api.aupdate_entity("ev-relay", "board", {"b": 2})
    await settle(engine)
    seen = [(f["type"], f["payload"].get("kind") or f["payload"].get("entities"))
            for f in ann.frames]
    assert seen == [("DELTA_UPDATE", {"board": {"a": 1, "b": 2}}), ("EVENT", "chat")]
