"""How state.data is stored: a row per top-level key, and in the history only what changed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from src.domain.models.json import compact_json
from src.persistence.repositories.common import Row

__all__ = ["DataChange", "data_change", "replay_data"]


class DataChange:
    """The top-level keys of state.data a write sets (to their JSON text) and removes."""

    __slots__ = ("removed", "set")

    def __init__(self, set_: dict[str, str], removed: list[str]) -> None:
        self.set = set_
        self.removed = removed

    def history_columns(self) -> tuple[str | None, str | None]:
        """(data_set, data_unset) as the history stores them; None for an empty part."""
        data_set = None
        if self.set:
            members = ",".join(f"{compact_json(key)}:{text}" for key, text in self.set.items())
            data_set = "{" + members + "}"
        return data_set, compact_json(self.removed) if self.removed else None


def data_change(
    old: Mapping[str, Any], new: Mapping[str, Any], keys: Iterable[str] | None = None
) -> DataChange:
    """What changed from `old` to `new`, looking only at `keys` when the caller knows
    nothing else can have changed (a merge patch's own keys), else at every key.

    Values compare as their JSON text, so 1, 1.0 and true are all different.
    """
    candidates = set(old) | set(new) if keys is None else set(keys)
    set_: dict[str, str] = {}
    removed: list[str] = []
    for key in sorted(candidates):
        if key not in new:
            if key in old:
                removed.append(key)
            continue
        text = compact_json(new[key])
        # Unequal values have unequal texts; equal ones may not (1 and 1.0), so only
        # those are encoded a second time.
        if key not in old or old[key] != new[key] or compact_json(old[key]) != text:
            set_[key] = text
    return DataChange(set_, removed)


def replay_data(changes: Sequence[Row], versions: Sequence[int]) -> dict[int, dict[str, Any]]:
    """state.data at each of `versions` (ascending), from the history's
    (version, data_set, data_unset) rows in version order up to the last of them."""
    data: dict[str, Any] = {}
    result: dict[int, dict[str, Any]] = {}
    pending = iter(versions)
    wanted = next(pending, None)
    for version, data_set, data_unset in changes:
        while wanted is not None and wanted < version:
            result[wanted] = dict(data)
            wanted = next(pending, None)
        if wanted is None:
            break
        for key in json.loads(data_unset) if data_unset else ():
            data.pop(key, None)
        if data_set:
            data.update(json.loads(data_set))
    while wanted is not None:
        result[wanted] = dict(data)
        wanted = next(pending, None)
    return result
