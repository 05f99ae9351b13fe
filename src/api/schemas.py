"""Request bodies, named by their role."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from src.domain.models.session import (
    ConceptId,
    ConceptName,
    CoverageScore,
    Methodology,
    Session,
    SessionState,
    TurnCount,
)
from src.domain.models.utterance import NewUtterance, TurnNumber, Utterance

__all__ = [
    "MAX_UTTERANCES_PER_TURN",
    "ResumeContext",
    "SessionCreate",
    "SessionStateUpdate",
    "TurnCreate",
    "TurnRecorded",
    "UtteranceCreate",
]

MAX_UTTERANCES_PER_TURN = 10


class SessionCreate(BaseModel):
    """What a client gives to start a session; the server picks the id."""

    model_config = ConfigDict(extra="forbid")

    methodology: Methodology
    concept_id: ConceptId
    concept_name: ConceptName


def _json_number(value: object) -> object:
    # The domain models convert as pydantic usually does ("7" to 7, true to 1),
    # as the spec's code expects; a client's JSON sends numbers as numbers.
    # 7.0 stays acceptable where an integer is asked for, as in JSON Schema.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON number, not a string or a boolean")
    return value


JsonNumberOnly = BeforeValidator(_json_number)
StrictTurnCount = Annotated[TurnCount, JsonNumberOnly]
StrictCoverageScore = Annotated[CoverageScore, JsonNumberOnly]
StrictTurnNumber = Annotated[TurnNumber, JsonNumberOnly]


class SessionStateUpdate(SessionState):
    """A session's new state; methodology and concept must be the session's own."""

    model_config = ConfigDict(extra="forbid")

    turn_count: StrictTurnCount = 0
    coverage_score: StrictCoverageScore = 0.0


class UtteranceCreate(NewUtterance):
    """One utterance to append to a session's record."""

    model_config = ConfigDict(extra="forbid")

    turn_number: StrictTurnNumber


class TurnCreate(BaseModel):
    """A turn: its utterances and the session's state after it, stored together."""

    model_config = ConfigDict(extra="forbid")

    utterances: Annotated[
        list[UtteranceCreate], Field(min_length=1, max_length=MAX_UTTERANCES_PER_TURN)
    ]
    state: SessionStateUpdate


class TurnRecorded(BaseModel):
    """What a turn stored."""

    session: Session
    utterances: list[Utterance]


class ResumeContext(BaseModel):
    """What an interviewer needs to go on with a session: it and its last utterances."""

    session: Session
    utterances: list[Utterance]
