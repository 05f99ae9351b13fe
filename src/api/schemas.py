"""Request bodies, named by their role."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from src.domain.models.graph import GraphChange
from src.domain.models.json import ConfigObject, StateDataPatch
from src.domain.models.session import (
    ConceptId,
    ConceptName,
    CoverageScore,
    LabelKey,
    Labels,
    LabelValue,
    Methodology,
    ParticipantId,
    Session,
    SessionId,
    SessionState,
    Strategy,
    StudyId,
    TurnCount,
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
    "StatePatch",
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


LabelsPatch = Annotated[
    dict[LabelKey, LabelValue | None], Field(json_schema_extra={"additionalProperties": False})
]


class SessionPatch(BaseModel):
    """A merge patch to a session: only its labels (null removes one) and participant."""

    model_config = ConfigDict(extra="forbid")

    labels: LabelsPatch | None = None
    participant_id: ParticipantId | None = None


# What _one_path_segment lets through, for the OpenAPI document: no NUL, no "/", and no
# line break at the end.
_ONE_PATH_SEGMENT = r"^(?![\s\S]*\n$)[^/\x00]+$"


def _one_path_segment(session_id: str) -> str:
    # No URL reaches such an id: "/" ends a path segment, and a path ending in a line
    # break matches no route (src/api/path_guard.py).
    if "/" in session_id or session_id.endswith("\n"):
        raise ValueError(
            "must not hold '/' nor end in a line break: a session's id is one segment of its URL"
        )
    return session_id


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


class ForkCreate(BaseModel):
    """Where to fork a session, and what to call the new one."""

    model_config = ConfigDict(extra="forbid")

    at_turn: StrictTurnNumber
    id: (
        Annotated[
            SessionId,
            AfterValidator(_one_path_segment),
            Field(json_schema_extra={"pattern": _ONE_PATH_SEGMENT}),
        ]
        | None
    ) = None
    labels: Labels | None = None


class SessionStateUpdate(SessionState):
    """A session's new state; methodology and concept must be the session's own."""

    model_config = ConfigDict(extra="forbid")

    turn_count: StrictTurnCount = 0
    coverage_score: StrictCoverageScore = 0.0


class UtteranceCreate(NewUtterance):
    """One utterance to append to a session's record."""

    model_config = ConfigDict(extra="forbid")

    turn_number: StrictTurnNumber


class StatePatch(BaseModel):
    """An RFC 7396 merge patch to a session's state: each member given replaces (objects
    in `data` merge member by member), and null removes it (a typed field takes its default).
    Methodology and concept may be named only with the session's own values."""

    model_config = ConfigDict(extra="forbid")

    methodology: Methodology | None = None
    concept_id: ConceptId | None = None
    concept_name: ConceptName | None = None
    turn_count: StrictTurnCount | None = None
    coverage_score: StrictCoverageScore | None = None
    last_strategy: Strategy | None = None
    data: StateDataPatch | None = None


def _exactly_one_state(schema: dict[str, Any]) -> None:
    # JSON Schema says what the validator checks: one of the two, and not null.
    schema["oneOf"] = [{"required": ["state"]}, {"required": ["state_patch"]}]
    for name in ("state", "state_patch"):
        options = schema["properties"][name].pop("anyOf")
        schema["properties"][name].update(
            next(option for option in options if option.get("type") != "null")
        )


class TurnCreate(BaseModel):
    """A turn: its utterances, the session's state after it (whole, or a merge patch)
    and what the engine recorded about it, stored together."""

    utterances: Annotated[
        list[UtteranceCreate], Field(min_length=1, max_length=MAX_UTTERANCES_PER_TURN)
    ]
    model_config = ConfigDict(extra="forbid", json_schema_extra=_exactly_one_state)

    state: SessionStateUpdate | None = None
    state_patch: Annotated[
        StatePatch | None,
        Field(description="An RFC 7396 merge patch to the state, instead of `state`"),
    ] = None
    record: TurnRecordData | None = None
    graph: Annotated[
        GraphChange | None,
        Field(
            description="A graph change belonging to this turn; its spans may point at "
            "this turn's utterances"
        ),
    ] = None

    def state_patch_document(self) -> dict[str, Any] | None:
        """The merge patch as sent, nulls (removals) included; None without one."""
        if self.state_patch is None:
            return None
        return self.state_patch.model_dump(exclude_unset=True)

    @model_validator(mode="after")
    def _one_turn_and_one_state(self) -> Self:
        given = {"state", "state_patch"} & self.model_fields_set
        if len(given) != 1 or (self.state is None and self.state_patch is None):
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
