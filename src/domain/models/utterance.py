"""Utterances: what was said in a session, turn by turn."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from src.domain.models.json import OpenJson, compact_json
from src.domain.models.session import MAX_COUNT, SessionId, UtcDatetime

__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_TEXT_LENGTH",
    "NewUtterance",
    "Speaker",
    "TurnNumber",
    "Utterance",
    "metadata_json",
]

MAX_TEXT_LENGTH = 20_000
MAX_METADATA_BYTES = 16 * 1024


class Speaker(StrEnum):
    """Who spoke; within a turn the interviewer comes first."""

    INTERVIEWER = "interviewer"
    RESPONDENT = "respondent"


def metadata_json(metadata: dict[str, Any] | None) -> str | None:
    """The metadata as compact JSON text, as it is stored."""
    return None if metadata is None else compact_json(metadata)


# NUL is refused as in session fields: PostgreSQL text cannot hold it.
UtteranceText = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_TEXT_LENGTH, pattern=r"^[^\x00]*$")
]
Metadata = Annotated[dict[str, Any], OpenJson(max_bytes=MAX_METADATA_BYTES)] | None
TurnNumber = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class NewUtterance(BaseModel):
    """An utterance to append: who said what, in which turn."""

    # Checked on assignment too, so nothing unchecked reaches storage.
    model_config = ConfigDict(validate_assignment=True)

    turn_number: TurnNumber
    speaker: Speaker
    text: UtteranceText
    metadata: Metadata = None


class Utterance(NewUtterance):
    """A stored utterance, stamped with the time it was stored."""

    session_id: SessionId
    created_at: UtcDatetime
    # As stored: an older version wrote deeper metadata than a new write may
    # carry, and reading must still show it (the read path bounds the depth).
    metadata: dict[str, Any] | None = None
