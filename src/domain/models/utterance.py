"""Utterances: what was said in a session, turn by turn."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

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
    if metadata is None:
        return None
    return json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _small_json(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    try:
        text = metadata_json(metadata)
    except ValueError as exc:  # NaN or infinity, which JSON cannot hold
        raise ValueError(f"metadata must be plain JSON: {exc}") from exc
    if text is None:
        return None
    try:
        size = len(text.encode())
    except UnicodeEncodeError as exc:  # a lone surrogate, which no text encoding holds
        raise ValueError("metadata must be valid Unicode text: it holds a lone surrogate") from exc
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata must be at most {MAX_METADATA_BYTES} bytes as JSON")
    return metadata


# NUL is refused as in session fields: PostgreSQL text cannot hold it.
UtteranceText = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_TEXT_LENGTH, pattern=r"^[^\x00]*$")
]
Metadata = Annotated[dict[str, Any] | None, AfterValidator(_small_json)]
TurnNumber = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class NewUtterance(BaseModel):
    """An utterance to append: who said what, in which turn."""

    turn_number: TurnNumber
    speaker: Speaker
    text: UtteranceText
    metadata: Metadata = None


class Utterance(NewUtterance):
    """A stored utterance, stamped with the time it was stored."""

    session_id: SessionId
    created_at: UtcDatetime
