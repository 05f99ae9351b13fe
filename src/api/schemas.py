"""Request bodies, named by their role."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from src.domain.models.json import ConfigObject
from src.domain.models.session import (
    ConceptId,
    ConceptName,
    Labels,
    LabelValue,
    Methodology,
    ParticipantId,
    Session,
    SessionId,
    SessionState,
    StudyId,
)
from src.domain.models.turn import Turn, TurnRecordData
from src.domain.models.utterance import NewUtterance, TurnNumber, Utterance

__all__ = [
    "MAX_UTTERANCES_PER_TURN",
    "ForkCreate",
    "ResumeContext",
    "SessionCreate",
    "SessionPatch",
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
    study_id: StudyId | None = None
    participant_id: ParticipantId | None = None
    labels: Labels = Field(default_factory=dict)
    config: ConfigObject = Field(default_factory=dict)


class SessionPatch(BaseModel):
    """A merge patch to a session: only its labels (null removes one) and participant."""

    model_config = ConfigDict(extra="forbid")

    labels: dict[str, LabelValue | None] | None = None
    participant_id: ParticipantId | None = None


class ForkCreate(BaseModel):
    """Where to fork a session, and what to call the new one."""

    model_config = ConfigDict(extra="forbid")

    at_turn: TurnNumber
    id: SessionId | None = None
    labels: Labels | None = None


class SessionStateUpdate(SessionState):
    """A session's new state; methodology and concept must be the session's own."""

    model_config = ConfigDict(extra="forbid")


class UtteranceCreate(NewUtterance):
    """One utterance to append to a session's record."""

    model_config = ConfigDict(extra="forbid")


class TurnCreate(BaseModel):
    """A turn: its utterances, the session's state after it (whole, or a merge patch)
    and what the engine recorded about it, stored together."""

    model_config = ConfigDict(extra="forbid")

    utterances: Annotated[
        list[UtteranceCreate], Field(min_length=1, max_length=MAX_UTTERANCES_PER_TURN)
    ]
    state: SessionStateUpdate | None = None
    state_patch: Annotated[
        Any, Field(description="An RFC 7396 merge patch to the state, instead of `state`")
    ] = None
    record: TurnRecordData | None = None

    @model_validator(mode="after")
    def _one_turn_and_one_state(self) -> Self:
        given = {"state", "state_patch"} & self.model_fields_set
        if len(given) != 1 or (given == {"state"} and self.state is None):
            raise ValueError("give exactly one of state and state_patch")
        return self

    @field_validator("utterances")
    @classmethod
    def _one_turn_number(cls, utterances: list[UtteranceCreate]) -> list[UtteranceCreate]:
        turn_numbers = {utterance.turn_number for utterance in utterances}
        if len(turn_numbers) > 1:
            raise ValueError(
                f"a turn's utterances name one turn number, not {sorted(turn_numbers)}"
            )
        return utterances


class TurnRecorded(BaseModel):
    """What a turn stored: the session after it, and the turn as stored by this write."""

    session: Session
    turn: Turn
    utterances: list[Utterance]


class ResumeContext(BaseModel):
    """What an interviewer needs to go on with a session: it and its last utterances."""

    session: Session
    utterances: list[Utterance]
