"""JSON Merge Patch (RFC 7396), the only way room state changes on the wire.

Pure functions: no I/O, and inputs are never mutated. ``apply_merge_patch``
copies only the objects on the patched path and shares the rest, so a snapshot
handed out earlier (a ``FullState.state``) stays valid after later patches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["apply_merge_patch", "is_noop"]


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """Return ``target`` with ``patch`` applied, following RFC 7396 §2 exactly.

    A non-object patch replaces the target; an object patch merges key by key,
    ``None`` (JSON null) deleting a key. Nulls nested inside values that are
    added are stripped too, as the RFC's recursive definition requires.
    """
    if not isinstance(patch, Mapping):
        return patch
    result: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = apply_merge_patch(result.get(name), value)
    return result


def is_noop(target: Any, patch: Any) -> bool:
    """True when applying ``patch`` would leave ``target`` unchanged.

    This is the server's own definition of a no-op update (PROTOCOL.md §5), so
    the client uses it to tell whether its mirror already holds a write.
    """
    return bool(apply_merge_patch(target, patch) == target)
