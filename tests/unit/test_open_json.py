"""The open JSON annotation: nesting and size limits, checked on construction and assignment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ValidationError

from src.domain.models.json_value import MAX_JSON_DEPTH, OpenJson, json_depth_exceeds
from src.domain.models.utterance import NewUtterance


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize(
    ("value", "depth"),
    [(1, 0), ("s", 0), ({}, 1), ([], 1), ({"a": [1, {"b": None}]}, 3), (nested(40), 40)],
)
def test_depth_is_counted_in_levels_of_arrays_and_objects(value: Any, depth: int) -> None:
    assert not json_depth_exceeds(value, depth)
    assert json_depth_exceeds(value, depth - 1) == (depth > 0)


def test_a_value_nested_far_past_the_recursion_limit_is_measured() -> None:
    assert json_depth_exceeds(nested(100_000), MAX_JSON_DEPTH)


def test_an_utterance_with_deep_metadata_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        NewUtterance(
            turn_number=1, speaker="respondent", text="x", metadata={"k": nested(MAX_JSON_DEPTH)}
        )

    (error,) = raised.value.errors()
    assert error["loc"] == ("metadata",)
    assert f"at most {MAX_JSON_DEPTH} levels" in error["msg"]


def test_deep_metadata_cannot_be_assigned_either() -> None:
    utterance = NewUtterance(turn_number=1, speaker="respondent", text="x")

    with pytest.raises(ValidationError):
        utterance.metadata = {"k": nested(MAX_JSON_DEPTH)}

    assert utterance.metadata is None


def test_metadata_at_the_limit_is_kept() -> None:
    metadata = {"k": nested(MAX_JSON_DEPTH - 1)}

    utterance = NewUtterance(turn_number=1, speaker="respondent", text="x", metadata=metadata)

    assert utterance.metadata == metadata


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"t": datetime.now(UTC)}, "must be plain JSON"),
        ({"n": float("nan")}, "must be plain JSON"),
        ({"s": "\ud800"}, "lone surrogate"),
        ({"s": "x" * 100}, "at most 64 bytes"),
    ],
)
def test_any_open_field_refuses_what_json_cannot_hold(value: Any, reason: str) -> None:
    class Record(BaseModel):
        data: Annotated[dict[str, Any], OpenJson(max_bytes=64)]

    with pytest.raises(ValidationError) as raised:
        Record(data=value)

    assert reason in raised.value.errors()[0]["msg"]
