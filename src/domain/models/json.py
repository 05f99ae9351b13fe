"""Open JSON objects that clients own: one annotated type, so every limit applies in one place."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, GetCoreSchemaHandler, WithJsonSchema
from pydantic_core import core_schema

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_SIGNALS_BYTES",
    "MAX_STATE_DATA_BYTES",
    "ConfigObject",
    "OpenJson",
    "SignalsObject",
    "StateDataObject",
    "StateDataPatch",
    "compact_json",
]

MAX_CONFIG_BYTES = 64 * 1024
MAX_SIGNALS_BYTES = 64 * 1024
MAX_STATE_DATA_BYTES = 256 * 1024
MAX_JSON_DEPTH = 32
"""How deeply an open JSON field may nest objects and arrays (the field itself is level 1)."""


# One encoder for every call: json.dumps with options builds a new one each time,
# which cost as much as encoding a small object on the path every row takes.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def compact_json(value: Any) -> str:
    """`value` as compact JSON text, as it is stored and as sizes are measured."""
    return _COMPACT.encode(value)


_TOO_DEEP = f"must nest at most {MAX_JSON_DEPTH} levels of arrays and objects"


def _json_text(value: dict[str, Any]) -> str:
    """The value's compact JSON text, once its nesting is known to be within the limit."""
    try:
        text = compact_json(value)
    except RecursionError as exc:  # far deeper than the limit
        raise ValueError(_TOO_DEEP) from exc
    except (ValueError, TypeError) as exc:  # NaN, infinity or a non-JSON Python value
        raise ValueError(f"must be plain JSON: {exc}") from exc
    # Counting brackets bounds the depth, so most small values skip the walk.
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH and _deeper_than(value, MAX_JSON_DEPTH):
        raise ValueError(_TOO_DEEP)
    return text


_CONTAINERS = (dict, list, tuple)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests objects and arrays more than `limit` levels (itself level 1).

    Walks the containers a level at a time: for values of many small objects,
    several times faster than scanning their text.
    """
    level = [value]
    for _ in range(limit):
        deeper = []
        for container in level:
            members = container.values() if isinstance(container, dict) else container
            deeper += [member for member in members if isinstance(member, _CONTAINERS)]
        if not deeper:
            return False
        level = deeper
    return True


@dataclass(frozen=True)
class OpenJson:
    """An annotation for open JSON: plain JSON, nested and sized within limits.

    Use as `Annotated[dict[str, Any], OpenJson(max_bytes=...)]`. Refused with a
    `ValueError` naming the limit (a 422 over HTTP): nesting past
    `MAX_JSON_DEPTH`, more than `max_bytes` as compact UTF-8 JSON, NaN or
    infinity, values JSON has no type for, and lone surrogates.
    """

    max_bytes: int

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def check(self, value: dict[str, Any]) -> dict[str, Any]:
        if not value and isinstance(value, dict) and self.max_bytes >= 2:
            return value  # "{}", within every limit: most configs are empty, many states too
        text = _json_text(value)
        try:
            size = len(text.encode())
        except UnicodeEncodeError as exc:
            raise ValueError("must be valid Unicode text: it holds a lone surrogate") from exc
        if size > self.max_bytes:
            raise ValueError(f"must be at most {self.max_bytes} bytes as JSON, not {size}")
        return value


def _shallow(value: dict[str, Any]) -> dict[str, Any]:
    _json_text(value)
    return value


def _keys_without_nul(value: dict[str, Any]) -> dict[str, Any]:
    # Top-level keys are stored as text of their own, which PostgreSQL cannot
    # hold with NUL; refusing it keeps both backends alike.
    if any("\x00" in key for key in value):
        raise ValueError("keys must not contain the NUL character")
    return value


# Every open JSON field of the store is one of these, so every limit on open JSON
# (size, nesting depth) is kept in OpenJson and applies to all of them alike.
ConfigObject = Annotated[dict[str, Any], OpenJson(MAX_CONFIG_BYTES)]
SignalsObject = Annotated[dict[str, Any], OpenJson(MAX_SIGNALS_BYTES)]
_DATA_SCHEMA = WithJsonSchema(
    {"type": "object", "additionalProperties": True, "propertyNames": {"pattern": "^[^\\x00]*$"}}
)
StateDataObject = Annotated[
    dict[str, Any],
    OpenJson(MAX_STATE_DATA_BYTES),
    AfterValidator(_keys_without_nul),
    _DATA_SCHEMA,
]
StateDataPatch = Annotated[
    dict[str, Any], AfterValidator(_shallow), AfterValidator(_keys_without_nul), _DATA_SCHEMA
]
"""A merge patch to state.data; the size limit applies to the data it leaves."""
