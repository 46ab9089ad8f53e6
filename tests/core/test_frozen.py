"""sync.core.frozen.fast_init: the same dataclass, a cheaper __init__."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from sync.core.changes import Change, ChangeKind
from sync.core.envelope import StateUpdate
from sync.core.frozen import fast_init


def test_fields_defaults_equality_hash_and_repr_are_the_dataclass_ones():
    a = Change(ChangeKind.DELTA, 1, 2, {"x": 1})
    b = Change(kind=ChangeKind.DELTA, base_version=1, version=2, patch={"x": 1}, payload=None)
    assert a == b and a.payload is None
    assert repr(a) == ("Change(kind=<ChangeKind.DELTA: 'DELTA_UPDATE'>, base_version=1, "
                       "version=2, patch={'x': 1}, payload=None)")
    assert hash(StateUpdate("r", None)) == hash(StateUpdate("r", None))  # type: ignore[arg-type]
    assert dataclasses.replace(StateUpdate("r", {}), entity_id="e").entity_id == "e"
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(TypeError):
        StateUpdate("r")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        StateUpdate("r", {}, bogus=1)  # type: ignore[call-arg]


def test_still_frozen():
    change = Change(ChangeKind.DELTA, 1, 2, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.version = 3  # type: ignore[misc]


def test_refuses_what_it_cannot_copy():
    with pytest.raises(TypeError):
        @fast_init
        @dataclass_frozen
        class WithFactory:
            items: list[int] = dataclasses.field(default_factory=list)


def dataclass_frozen(cls: type) -> type:
    return dataclasses.dataclass(frozen=True, slots=True)(cls)
