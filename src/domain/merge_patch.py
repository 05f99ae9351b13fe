"""JSON merge patch (RFC 7396): one pure function."""

from __future__ import annotations

from typing import Any

__all__ = ["apply_merge_patch"]


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """The result of applying `patch` to `target`, as RFC 7396 section 2 defines it.

    Objects merge member by member, a member set to null is removed, and any
    other patch value replaces what it patches. Neither argument is changed;
    the result shares no container with the patch, and shares with the target
    only members the patch leaves alone (so a small patch to a large target
    copies little).
    """
    if not isinstance(patch, dict):
        return _copy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = apply_merge_patch(result.get(name), value)
    return result


def _copy(value: Any) -> Any:
    # JSON values hold only dicts, lists and immutable scalars: a plain walk
    # copies them several times faster than copy.deepcopy.
    if isinstance(value, dict):
        return {name: _copy(member) for name, member in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
