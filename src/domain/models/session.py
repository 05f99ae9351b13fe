"""Session domain models."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

__all__ = ["Session", "SessionState", "SessionStatus", "utc_now"]


class SessionStatus(StrEnum):
    """Where a session stands in its lifecycle."""

    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    # Naive datetimes are taken as UTC; aware ones are converted to it.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# Exactly Unicode's control characters (category Cc), as one C-speed search.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _without_control_characters(value: str) -> str:
    if _CONTROL_CHARACTER.search(value):
        raise ValueError("must not contain control characters")
    return value


def _without_nul(value: str) -> str:
    # Text columns in PostgreSQL cannot hold NUL; refusing it keeps every backend alike.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
Methodology = Annotated[
    str, Field(min_length=1, max_length=64), AfterValidator(_without_control_characters)
]
ConceptId = Annotated[
    str, Field(min_length=1, max_length=128), AfterValidator(_without_control_characters)
]
ConceptName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_without_control_characters),
]
Strategy = Annotated[str, Field(max_length=64), AfterValidator(_without_nul)]
SessionId = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_without_nul)]


class SessionState(BaseModel):
    """Current state of an interview session."""

    model_config = ConfigDict(validate_assignment=True)

    methodology: Methodology  # e.g. "mec" (Means-End Chain), "zmet" (ZMET)
    concept_id: ConceptId
    concept_name: ConceptName
    turn_count: Annotated[int, Field(ge=0)] = 0
    coverage_score: Annotated[float, Field(ge=0.0, le=1.0), AfterValidator(_finite)] = 0.0
    last_strategy: Strategy | None = None


class Session(BaseModel):
    """Interview session."""

    model_config = ConfigDict(validate_assignment=True)

    id: SessionId
    methodology: Methodology
    concept_id: ConceptId
    concept_name: ConceptName
    created_at: UtcDatetime = Field(default_factory=utc_now)
    updated_at: UtcDatetime = Field(default_factory=utc_now)
    state: SessionState
    status: SessionStatus = SessionStatus.ACTIVE
    version: Annotated[int, Field(ge=1)] = 1
    ended_at: UtcDatetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_state(cls, data: Any) -> Any:
        # A session created without a state starts from a fresh one naming its concept.
        if isinstance(data, dict) and data.get("state") is None:
            return {
                **data,
                "state": {key: data.get(key) for key in SESSION_STATE_IDENTITY},
            }
        return data

    @model_validator(mode="after")
    def _state_names_this_session(self) -> Self:
        for field in SESSION_STATE_IDENTITY:
            if getattr(self.state, field) != getattr(self, field):
                raise ValueError(f"state.{field} must equal the session's {field}")
        return self


SESSION_STATE_IDENTITY = ("methodology", "concept_id", "concept_name")
"""The fields a state shares with its session; they never change after creation."""
