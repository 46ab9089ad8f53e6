"""JSON Merge Patch (RFC 7396): apply, diff, effective patch and composition.

Stored documents are never mutated: every function copies along the path it
changes and shares the rest, so a state handed to an encoder stays a valid
snapshot while the room moves on. Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Any

JSONObject = dict[str, Any]


class NotComposable(Exception):
    """Two patches whose composition cannot be written as one merge patch.

    This happens only when the first patch replaces an object at some key by a
    non-object (or deletes it) and the second writes an object there again: a
    merge patch cannot say "replace this object" without knowing the base.
    """


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: ``1`` and ``True`` differ, ``1`` and ``1.0`` do not."""
    if a is b:
        return True
    ta, tb = type(a), type(b)
    if ta is dict:
        if tb is not dict or len(a) != len(b):
            return False
        for key, value in a.items():
            if key not in b or not json_equal(value, b[key]):
                return False
        return True
    if ta is list:
        return tb is list and len(a) == len(b) and all(map(json_equal, a, b))
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if ta in (int, float) and tb in (int, float):
        return a == b
    return ta is tb and a == b


def strip_nulls(value: Any) -> Any:
    """What RFC 7396 stores when an object patch lands on a non-object."""
    if type(value) is not dict:
        return value
    return {k: strip_nulls(v) for k, v in value.items() if v is not None}


def apply_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 MergePatch(target, patch), returning a new value."""
    if type(patch) is not dict:
        return patch
    result = dict(target) if type(target) is dict else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif type(value) is dict:
            result[key] = apply_patch(result.get(key), value)
        else:
            result[key] = value
    return result


def effective_patch(target: JSONObject, patch: JSONObject) -> JSONObject:
    """The part of ``patch`` that changes ``target``; ``{}`` when it is a no-op.

    Applying the result to ``target`` gives the same document as applying
    ``patch``; values equal to what is stored and deletions of absent keys are
    left out, so a client sees only what really changed.
    """
    out: JSONObject = {}
    for key, value in patch.items():
        if value is None:
            if key in target:
                out[key] = None
        elif type(value) is dict:
            current = target.get(key, _MISSING)
            if type(current) is dict:
                sub = effective_patch(current, value)
                if sub:
                    out[key] = sub
            else:
                out[key] = strip_nulls(value)
        elif key not in target or not json_equal(target[key], value):
            out[key] = value
    return out


def effective_update(target: JSONObject, patch: JSONObject) -> tuple[JSONObject, JSONObject]:
    """``(effective, updated)``: ``effective_patch(target, patch)`` and ``target`` with it
    applied (``target`` itself when ``effective`` is empty, which changes nothing).

    One pass when no value of ``patch`` is an object or null (a flat patch of scalars
    and arrays: every position update), else the two functions. The comparison is
    :func:`json_equal`'s: two values of one type that is not a list (str, int, float,
    bool) are JSON-equal exactly when ``is`` or ``==``; anything else goes through it.
    """
    out: JSONObject = {}
    get = target.get
    for key, value in patch.items():
        tv = type(value)
        if tv is dict or value is None:
            effective = effective_patch(target, patch)
            return effective, (apply_patch(target, effective) if effective else target)
        current = get(key, _MISSING)
        if current is _MISSING:
            out[key] = value
        elif type(current) is tv and tv is not list:
            if current is not value and current != value:
                out[key] = value
        elif not json_equal(current, value):
            out[key] = value
    if not out:
        return out, target
    return out, {**target, **out}  # dict(target).update(out) without the two calls


def diff(old: JSONObject, new: JSONObject) -> JSONObject:
    """A merge patch turning ``old`` into ``new`` (both objects, no nulls inside)."""
    out: JSONObject = {}
    for key in old:
        if key not in new:
            out[key] = None
    for key, value in new.items():
        if key not in old:
            out[key] = value
            continue
        current = old[key]
        if type(value) is dict and type(current) is dict:
            sub = diff(current, value)
            if sub:
                out[key] = sub
        elif not json_equal(current, value):
            # A scalar, or an object replacing a non-object (RFC 7396 starts from {}).
            out[key] = value
    return out


def compose(first: JSONObject, second: JSONObject) -> JSONObject:
    """One patch equal to applying ``first`` then ``second``.

    Raises :class:`NotComposable` in the one case RFC 7396 cannot express
    (see that class); callers then keep the two patches apart.
    """
    out = dict(first)
    for key, value in second.items():
        if type(value) is dict and key in first:
            previous = first[key]
            if type(previous) is not dict:
                raise NotComposable(key)
            out[key] = compose(previous, value)
        else:
            out[key] = value
    return out


class Composer:
    """A run of patches composed in place: ``patch`` is always ``compose`` of all
    that were added, but each :meth:`add` costs the size of the added patch, not of
    the run (the hub composes a tick's changes one by one: hundreds of players'
    patches into one, each touching one player).

    Only dicts the composer made itself are mutated (kept in ``_owned`` by id, and
    kept alive there so an id is never reused); the added patches are never
    changed, and ``patch`` must not be mutated by anyone else while adding goes on.
    """

    __slots__ = ("_owned", "patch")

    def __init__(self, first: JSONObject) -> None:
        self.patch = first
        self._owned: dict[int, JSONObject] = {}

    def add(self, second: JSONObject) -> None:
        """Compose ``second`` on; raises :class:`NotComposable` (``patch`` unchanged)
        where :func:`compose` does."""
        if len(second) == 1 and self._add_one(second):
            return
        _check_composable(self.patch, second)
        self.patch = self._into(self.patch, second)

    def _add_one(self, second: JSONObject) -> bool:
        """The common patch of a tick (a world's: thousands a second), one key holding
        one key, ``{"players": {id: {...}}}``, whose second level is new to the run or
        replaced: set in place, no walk. False when it needs the general path."""
        ((table, sub),) = second.items()
        if type(sub) is not dict or len(sub) != 1:
            return False
        patch = self.patch
        target = patch.get(table)
        if type(target) is not dict:
            return False
        ((name, value),) = sub.items()
        if type(value) is dict and name in target:
            return False  # composes below: the general path
        owned = self._owned
        if owned.get(id(patch)) is not patch:
            patch = dict(patch)
            owned[id(patch)] = patch
            self.patch = patch
        if owned.get(id(target)) is not target:
            target = dict(target)
            owned[id(target)] = target
            patch[table] = target
        target[name] = value
        return True

    def _into(self, target: JSONObject, second: JSONObject) -> JSONObject:
        owned = self._owned
        if owned.get(id(target)) is not target:
            target = dict(target)
            owned[id(target)] = target
        for key, value in second.items():
            if type(value) is dict and key in target:
                target[key] = self._into(target[key], value)
            else:
                target[key] = value
        return target


def _check_composable(first: JSONObject, second: JSONObject) -> None:
    for key, value in second.items():
        if type(value) is dict and key in first:
            previous = first[key]
            if type(previous) is not dict:
                raise NotComposable(key)
            _check_composable(previous, value)


def shape_violation(value: Any, max_depth: int, max_key_length: int) -> str | None:
    """``"depth"`` if containers nest deeper than ``max_depth`` (a scalar is depth 0,
    ``{}`` is 1, ``{"a": {}}`` is 2), else ``"key"`` if an object key anywhere is longer
    than ``max_key_length``, else None. One iterative pass (it runs on every message):
    it stops at the first level past the limit, and depth wins over key length."""
    if type(value) is not dict:
        if type(value) is not list:
            return None
    else:  # an object of scalars (every position update): one loop, no stack
        long_key = False
        for key, child in value.items():
            if type(child) is dict or type(child) is list:
                break
            if len(key) > max_key_length:
                long_key = True
        else:
            return "depth" if max_depth < 1 else "key" if long_key else None
    long_key = False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > max_depth:
            return "depth"
        if type(item) is dict:
            for key, child in item.items():
                if len(key) > max_key_length:
                    long_key = True
                if type(child) is dict or type(child) is list:
                    stack.append((child, level + 1))
        else:
            for child in item:
                if type(child) is dict or type(child) is list:
                    stack.append((child, level + 1))
    return "key" if long_key else None


_MISSING = object()
