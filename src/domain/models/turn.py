"""Turns, their records, and the versions a session went through."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from src.domain.models.json import SignalsObject
from src.domain.models.session import (
    MAX_COUNT,
    Labels,
    SessionState,
    SessionStatus,
    Strategy,
    UtcDatetime,
)
from src.domain.models.utterance import Utterance

__all__ = [
    "MAX_SCORES",
    "Change",
    "NumberedTurnRecord",
    "RecordUsage",
    "SessionVersion",
    "Turn",
    "TurnRecordData",
]

MAX_SCORES = 64
# Per-record bounds keep every total a 64-bit column can hold and a float can sum.
MAX_TOKENS = MAX_COUNT
MAX_AMOUNT = 1e12

_NAME = r"^[^\x00-\x1f\x7f-\x9f]*$"
ScoreName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_NAME)]
Score = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Tokens = Annotated[int, Field(strict=True, ge=0, le=MAX_TOKENS)]
Amount = Annotated[float, Field(strict=True, ge=0.0, le=MAX_AMOUNT, allow_inf_nan=False)]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_NAME)]


class RecordUsage(BaseModel):
    """What producing a turn cost: tokens, money and time."""

    model_config = ConfigDict(extra="forbid")

    model: ModelName | None = None
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    cost_usd: Amount = 0.0
    latency_ms: Amount = 0.0


class TurnRecordData(BaseModel):
    """What the interview engine decided in a turn and why: at most one per turn."""

    model_config = ConfigDict(extra="forbid")

    strategy: Strategy | None = None
    scores: Annotated[dict[ScoreName, Score], Field(max_length=MAX_SCORES)] = Field(
        default_factory=dict
    )
    signals: SignalsObject = Field(default_factory=dict)
    usage: RecordUsage = Field(default_factory=RecordUsage)


class NumberedTurnRecord(TurnRecordData):
    """A turn record with the number of its turn, as exports list them."""

    turn_number: Annotated[int, Field(ge=0, le=MAX_COUNT)]


class Turn(BaseModel):
    """One turn of a session: what was said, what was recorded, and the version after it."""

    turn_number: Annotated[int, Field(ge=0, le=MAX_COUNT)]
    utterances: list[Utterance]
    record: TurnRecordData | None
    version: Annotated[int, Field(ge=1, le=MAX_COUNT)]
    created_at: UtcDatetime


class Change(StrEnum):
    """What kind of write made a version."""

    CREATED = "created"
    STATE = "state"
    TURN = "turn"
    TRANSITION = "transition"
    LABELS = "labels"
    GRAPH = "graph"


class SessionVersion(BaseModel):
    """A session as one write left it, in a history listing."""

    version: Annotated[int, Field(ge=1, le=MAX_COUNT)]
    status: SessionStatus
    state: SessionState
    labels: Labels
    change: Change
    turn_number: Annotated[int, Field(ge=0, le=MAX_COUNT)] | None
    at: UtcDatetime
