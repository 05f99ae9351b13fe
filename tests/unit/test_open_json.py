"""The open JSON annotation: nesting and size limits, checked on construction and assignment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ValidationError

from src.domain.models.json import MAX_JSON_DEPTH, OpenJson
from src.domain.models.utterance import NewUtterance


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


class Record(BaseModel):
    data: Annotated[dict[str, Any], OpenJson(max_bytes=1 << 20)]


@pytest.mark.parametrize("depth", [1, 3, MAX_JSON_DEPTH])
def test_a_value_as_deep_as_the_limit_is_kept(depth: int) -> None:
    value = {"k": nested(depth - 1)}

    assert Record(data=value).data == value


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_a_value_deeper_than_the_limit_is_refused(depth: int) -> None:
    with pytest.raises(ValidationError) as raised:
        Record(data={"k": nested(depth - 1)})

    assert f"at most {MAX_JSON_DEPTH} levels" in raised.value.errors()[0]["msg"]


@pytest.mark.parametrize(("depth", "kept"), [(MAX_JSON_DEPTH, True), (MAX_JSON_DEPTH + 1, False)])
def test_one_deep_branch_among_many_shallow_ones_is_measured(depth: int, kept: bool) -> None:
    history = [{"turn": turn, "tags": ["a", "b"]} for turn in range(100)]
    value = {"history": history, "deep": nested(depth - 1), "after": [{"x": [1]}] * 50}

    if kept:
        assert Record(data=value).data == value
    else:
        with pytest.raises(ValidationError, match=f"at most {MAX_JSON_DEPTH} levels"):
            Record(data=value)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    value = {"k": "[" * (MAX_JSON_DEPTH + 5) + "{" * 3}

    assert Record(data=value).data == value


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
