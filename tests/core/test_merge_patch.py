"""RFC 7396 merge patch, diff and composition: examples from the RFC plus properties."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.core.merge_patch import (
    Composer,
    NotComposable,
    apply_patch,
    compose,
    diff,
    effective_patch,
    effective_update,
    json_equal,
    shape_violation,
)

# The test cases of RFC 7396 appendix A.
RFC_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC_CASES)
def test_rfc7396_examples(target, patch, expected):
    assert apply_patch(target, patch) == expected


def test_apply_never_mutates_its_inputs():
    target = {"a": {"b": 1}, "c": [1]}
    patch = {"a": {"b": 2}, "c": None}
    apply_patch(target, patch)
    assert target == {"a": {"b": 1}, "c": [1]}
    assert patch == {"a": {"b": 2}, "c": None}


def test_json_equal_follows_json_not_python():
    assert json_equal(1, 1.0)
    assert not json_equal(1, True)
    assert not json_equal({"a": 0}, {"a": False})
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]})


def test_effective_patch_drops_what_changes_nothing():
    target = {"x": 1, "n": {"a": 1}}
    assert effective_patch(target, {"x": 1, "gone": None, "n": {"a": 1}}) == {}
    assert effective_patch(target, {"x": 2, "n": {"a": 1, "b": 2}}) == {"x": 2, "n": {"b": 2}}


def test_compose_refuses_object_after_non_object():
    with pytest.raises(NotComposable):
        compose({"a": None}, {"a": {"b": 1}})
    with pytest.raises(NotComposable):
        compose({"a": 5}, {"a": {"b": 1}})


def depth(value):
    """Reference: nesting depth of containers (a scalar is 0, ``{}`` is 1)."""
    if type(value) is dict:
        return 1 + max((depth(v) for v in value.values()), default=0)
    if type(value) is list:
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def longest_key(value):
    """Reference: the longest object key anywhere inside ``value``."""
    if type(value) is dict:
        return max((max(len(k), longest_key(v)) for k, v in value.items()), default=0)
    if type(value) is list:
        return max((longest_key(v) for v in value), default=0)
    return 0


def test_shape_violation_examples():
    assert shape_violation(1, 0, 0) is None
    assert shape_violation({}, 1, 0) is None and shape_violation({}, 0, 0) == "depth"
    assert shape_violation({"a": [{"b": {}}]}, 4, 1) is None
    assert shape_violation({"a": [{"b": {}}]}, 3, 1) == "depth"
    assert shape_violation({"ab": [{"abcd": 1}]}, 3, 4) is None
    assert shape_violation({"ab": [{"abcd": 1}]}, 3, 3) == "key"
    assert shape_violation({"abcd": {"x": {}}}, 2, 3) == "depth"  # depth wins


# -- properties -----------------------------------------------------------------


@given(
    st.recursive(
        st.none() | st.integers(),
        lambda inner: st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=15,
    ),
    st.integers(0, 6),
    st.integers(0, 6),
)
def test_shape_violation_matches_the_recursive_definitions(value, max_depth, max_key):
    expected = ("depth" if depth(value) > max_depth
                else "key" if longest_key(value) > max_key else None)
    assert shape_violation(value, max_depth, max_key) == expected

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["a", "b", ""])
keys = st.sampled_from(["a", "b", "c", "d"])
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)
documents = st.dictionaries(keys, values.filter(lambda v: v is not None), max_size=4).map(
    lambda d: apply_patch({}, d)  # a stored document never holds nulls
)
patches = st.dictionaries(keys, values, max_size=4)


@given(documents, patches)
def test_effective_patch_applies_like_the_patch(doc, patch):
    assert apply_patch(doc, effective_patch(doc, patch)) == apply_patch(doc, patch)


@given(documents, patches)
def test_effective_patch_is_empty_only_for_no_ops(doc, patch):
    if not effective_patch(doc, patch):
        assert json_equal(apply_patch(doc, patch), doc)


@given(documents, documents)
def test_diff_turns_old_into_new(old, new):
    assert apply_patch(old, diff(old, new)) == new


@given(documents, patches, patches)
def test_compose_equals_applying_both_in_order(doc, first, second):
    first = effective_patch(doc, first)
    middle = apply_patch(doc, first)
    second = effective_patch(middle, second)
    try:
        composed = compose(first, second)
    except NotComposable:
        return  # the hub then sends the two patches apart
    assert apply_patch(doc, composed) == apply_patch(middle, second)


@given(st.lists(patches, min_size=1, max_size=6))
def test_composer_equals_composing_one_by_one_and_never_mutates(run):
    """The hub's in-place run (``Composer``) is ``compose`` folded over the patches,
    leaves every added patch as it was, and a refused patch leaves the run as it was."""
    import copy

    originals = copy.deepcopy(run)
    composer = Composer(run[0])
    expected = run[0]
    for patch in run[1:]:
        before = copy.deepcopy(composer.patch)
        try:
            expected = compose(expected, patch)
        except NotComposable:
            with pytest.raises(NotComposable):
                composer.add(patch)
            assert composer.patch == before
            continue
        composer.add(patch)
        assert composer.patch == expected
    assert run == originals


one_player_patches = st.fixed_dictionaries({
    "players": st.dictionaries(st.sampled_from(["p1", "p2", "p3"]),
                               st.none() | st.integers(0, 3)
                               | st.dictionaries(st.sampled_from(["x", "y"]),
                                                 st.none() | st.integers(0, 3), max_size=2),
                               min_size=1, max_size=1),
})


@given(st.lists(one_player_patches | patches, min_size=1, max_size=12))
def test_composer_one_player_patches_equal_compose(run):
    """A tick's common patch (one key holding one key) takes ``Composer``'s in-place
    path when its player is new to the run or replaced: still ``compose``, still
    never mutating an added patch."""
    import copy

    originals = copy.deepcopy(run)
    composer = Composer(run[0])
    expected = run[0]
    for patch in run[1:]:
        try:
            expected = compose(expected, patch)
        except NotComposable:
            with pytest.raises(NotComposable):
                composer.add(patch)
            continue
        composer.add(patch)
        assert composer.patch == expected
    assert run == originals


flat_scalars = (st.booleans() | st.integers(-2, 2) | st.sampled_from([0.0, 1.0, 1.5, -2.0])
                | st.sampled_from(["a", ""]))
flat_values = flat_scalars | st.lists(flat_scalars, max_size=2)
flat_documents = st.dictionaries(keys, flat_values | st.dictionaries(keys, flat_scalars,
                                                                    max_size=2), max_size=4)
flat_patches = st.dictionaries(keys, flat_values, max_size=4)


def same_json(a, b):
    """Equal with types and key order (1, 1.0 and True all differ)."""
    return orjson.dumps(a) == orjson.dumps(b)


@given(documents | flat_documents, patches | flat_patches)
def test_effective_update_is_effective_patch_then_apply(doc, patch):
    before = orjson.dumps(doc), orjson.dumps(patch)
    effective, updated = effective_update(doc, patch)
    expected = effective_patch(doc, patch)
    assert same_json(effective, expected)
    if expected:
        assert same_json(updated, apply_patch(doc, expected)) and updated is not doc
    else:
        assert updated is doc
    assert (orjson.dumps(doc), orjson.dumps(patch)) == before  # nothing mutated


def test_effective_update_compares_as_json():
    doc = {"x": 1, "b": True, "l": [1, True], "f": 1.0}
    assert effective_update(doc, {"x": 1.0, "f": 1, "l": [1.0, True]}) == ({}, doc)
    effective, updated = effective_update(doc, {"x": True, "b": 1, "l": [1, 1]})
    assert same_json(effective, {"x": True, "b": 1, "l": [1, 1]})
    assert same_json(updated, {"x": True, "b": 1, "l": [1, 1], "f": 1.0})
