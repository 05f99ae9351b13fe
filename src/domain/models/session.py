"""Session domain models."""

from __future__ import annotations

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

from src.domain.models.json import ConfigObject, StateDataObject

__all__ = [
    "LABEL_KEY_PATTERN",
    "MAX_COUNT",
    "MAX_LABELS",
    "CoverageScore",
    "ForkOrigin",
    "LabelKey",
    "LabelValue",
    "Labels",
    "ParticipantId",
    "Session",
    "SessionState",
    "SessionStatus",
    "StudyId",
    "TurnCount",
    "Usage",
    "utc_now",
]

MAX_COUNT = 2**31 - 1
"""The largest count (turns, versions, turn numbers) both databases keep in an integer column."""


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
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# Checked by pydantic-core's own regex engine, not by Python code, because
# every session read from the database passes through these rules.
_NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f-\x9f]*$"  # exactly Unicode's category Cc
# The same, with at least one character that trimming keeps: a name may not be
# blank. The class spells out Unicode's White_Space characters, which are what
# pydantic trims, so the published schema tells clients the same rule.
_VISIBLE_TEXT = (
    r"^[^\x00-\x1f\x7f-\x9f]*"
    r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    r"[^\x00-\x1f\x7f-\x9f]*$"
)
_NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL; refusing it keeps backends alike

UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
Methodology = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=_NO_CONTROL_CHARACTERS)
]
ConceptId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=_NO_CONTROL_CHARACTERS)
]
ConceptName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=_VISIBLE_TEXT),
]
Strategy = Annotated[str, StringConstraints(max_length=64, pattern=_NO_NUL)]
SessionId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_NO_NUL)]
TurnCount = Annotated[int, Field(ge=0, le=MAX_COUNT)]
CoverageScore = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
StudyId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=_NO_CONTROL_CHARACTERS)
]
ParticipantId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=_NO_CONTROL_CHARACTERS)
]
MAX_LABELS = 32
LABEL_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$"
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN)]
LabelValue = Annotated[str, StringConstraints(max_length=256, pattern=_NO_NUL)]
# The schema says what the key pattern implies: no key outside it is allowed.
_NO_OTHER_KEYS = {"additionalProperties": False}
Labels = Annotated[
    dict[LabelKey, LabelValue], Field(max_length=MAX_LABELS, json_schema_extra=_NO_OTHER_KEYS)
]
Count = Annotated[int, Field(ge=0)]
Amount = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class Usage(BaseModel):
    """Totals over a session's turn records; all 0 before the first record."""

    turns: Count = 0
    input_tokens: Count = 0
    output_tokens: Count = 0
    cost_usd: Amount = 0.0
    latency_ms: Amount = 0.0


class ForkOrigin(BaseModel):
    """Where a forked session came from: its source and the turn it was forked at."""

    session_id: SessionId
    turn_number: Annotated[int, Field(ge=0, le=MAX_COUNT)]


class SessionState(BaseModel):
    """Current state of an interview session."""

    model_config = ConfigDict(validate_assignment=True)

    methodology: Methodology  # e.g. "mec" (Means-End Chain), "zmet" (ZMET)
    concept_id: ConceptId
    concept_name: ConceptName
    turn_count: TurnCount = 0
    coverage_score: CoverageScore = 0.0
    last_strategy: Strategy | None = None
    data: StateDataObject = Field(default_factory=dict)
    """The interview engine's own state; the store keeps it exactly and never reads it."""


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
    version: Annotated[int, Field(ge=1, le=MAX_COUNT)] = 1
    ended_at: UtcDatetime | None = None
    study_id: StudyId | None = None
    participant_id: ParticipantId | None = None
    labels: Labels = Field(default_factory=dict)
    config: ConfigObject = Field(default_factory=dict)
    """Set at create and never changed after."""
    usage: Usage = Field(default_factory=Usage)
    forked_from: ForkOrigin | None = None

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
        state = self.state
        if (state.methodology, state.concept_id, state.concept_name) != (
            self.methodology,
            self.concept_id,
            self.concept_name,
        ):
            for field in SESSION_STATE_IDENTITY:
                if getattr(state, field) != getattr(self, field):
                    raise ValueError(f"state.{field} must equal the session's {field}")
        return self


SESSION_STATE_IDENTITY = ("methodology", "concept_id", "concept_name")
"""The fields a state shares with its session; they never change after creation."""
