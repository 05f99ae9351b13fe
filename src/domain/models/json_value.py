"""Open JSON fields: whatever plain JSON a client stores, within a size and a nesting limit.

Utterance metadata is one; every later open field (state data, records,
graph properties) takes the same `OpenJson` annotation, so each is checked
the same way before it is stored, and whatever was stored can be read and
shown again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

__all__ = ["MAX_JSON_DEPTH", "OpenJson", "compact_json", "json_depth_exceeds"]

MAX_JSON_DEPTH = 32
"""How many levels of arrays and objects an open field may nest; its own object is level 1."""


def compact_json(value: Any) -> str:
    """The value as compact JSON text, as it is stored and measured."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels deep in `value`.

    Walks without recursion and stops at the first level past the limit, so
    a value nested thousands of levels deep costs no more than one at the limit.
    """
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


@dataclass(frozen=True)
class OpenJson:
    """An annotation for open JSON: plain JSON, nested and sized within limits.

    Use as `Annotated[dict[str, Any], OpenJson(max_bytes=...)]`.

    Refused with a `ValueError` naming the limit (a 422 over HTTP): nesting
    past `MAX_JSON_DEPTH`, more than `max_bytes` as compact UTF-8 JSON, NaN or
    infinity, values JSON has no type for, and lone surrogates.
    """

    max_bytes: int

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def check(self, value: Any) -> Any:
        # Depth first: measuring the size serializes, which recurses.
        if json_depth_exceeds(value, MAX_JSON_DEPTH):
            raise ValueError(f"must nest at most {MAX_JSON_DEPTH} levels of arrays and objects")
        try:
            text = compact_json(value)
        except (ValueError, TypeError) as exc:  # NaN, infinity or a non-JSON Python value
            raise ValueError(f"must be plain JSON: {exc}") from exc
        try:
            size = len(text.encode())
        except UnicodeEncodeError as exc:  # a lone surrogate, which no text encoding holds
            raise ValueError("must be valid Unicode text: it holds a lone surrogate") from exc
        if size > self.max_bytes:
            raise ValueError(f"must be at most {self.max_bytes} bytes as JSON")
        return value
