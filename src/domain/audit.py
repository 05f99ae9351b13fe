"""The audit log's entries: who wrote, exported, erased or was refused what, and when.

An entry names the key (by its name, never the key itself), the action, the
method and the path; it never holds a body, nor anything a participant said.
A path under `/participants/` is kept as its template, with no participant id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from src.domain.models.session import utc_now

__all__ = [
    "MAX_AUDIT_PATH_LENGTH",
    "AuditAction",
    "AuditEntry",
    "command_erasure",
    "recorded_path",
    "recorded_session_id",
    "without_participant",
]

MAX_AUDIT_PATH_LENGTH = 2048
_MAX_SESSION_ID_LENGTH = 128
# Control characters and lone surrogates: neither database can keep them as text.
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The id of a participant is personal data: it never enters the log.
_PARTICIPANT = re.compile(r"^(/participants/)[^/]*")


class AuditAction(StrEnum):
    """What an entry records."""

    WRITE = "write"
    """A POST, PUT, PATCH or DELETE that succeeded."""
    EXPORT = "export"
    """A session's or a study's export was sent."""
    ERASURE = "erasure"
    """A participant was erased; the entry holds counts, never who."""
    UNAUTHORIZED = "unauthorized"
    """Refused with 401: no valid key."""
    FORBIDDEN = "forbidden"
    """Refused with 403: the key lacks the scope."""


class AuditEntry(BaseModel):
    """One audit record."""

    model_config = ConfigDict(frozen=True)

    at: AwareDatetime = Field(description="When the request was answered (UTC)")
    key_name: str | None = Field(
        description="The name of the key the request carried; null without a valid key"
    )
    action: AuditAction
    method: Annotated[str, Field(min_length=1, max_length=16)] = Field(
        description="The request's HTTP method; CLI for the command line"
    )
    path: Annotated[str, Field(min_length=1, max_length=MAX_AUDIT_PATH_LENGTH)] = Field(
        description="The request path as sent (no query); a participant's as its template"
    )
    session_id: str | None = Field(default=None, description="The session the request named")
    counts: dict[str, int] | None = Field(
        default=None, description="What an erasure removed, by kind; null for other actions"
    )


def without_participant(raw_path: str, path: str | None = None) -> str:
    """The path as sent with a participant id replaced by its template: the id is personal
    data. `path`, the same decoded (as routes see it), catches a participant's route spelled
    with escapes (`/particip%61nts/...`, `/participants%2F...`), which the server routes
    alike."""
    if _PARTICIPANT.match(raw_path):
        return _PARTICIPANT.sub(r"\1{participant_id}", raw_path)
    if path is not None and _PARTICIPANT.match(path):
        return "/participants/{participant_id}"
    return raw_path


def recorded_path(raw_path: str, path: str | None = None) -> str:
    """The path as the log keeps it: as sent, without a participant id (see
    `without_participant`), at most 2048 characters.

    `raw_path` is still percent-encoded, so it holds no line break or NUL.
    """
    kept = _UNSTORABLE.sub("?", without_participant(raw_path, path)) or "/"
    return kept[:MAX_AUDIT_PATH_LENGTH]


def recorded_session_id(value: object) -> str | None:
    """`value` when it can be a session id (text of 1..128 storable characters), else None."""
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_SESSION_ID_LENGTH:
        return None
    return None if _UNSTORABLE.search(value) else value


def command_erasure(counts: Mapping[str, int]) -> AuditEntry:
    """The audit entry of an erasure run from the command line, which carries no key."""
    return AuditEntry(
        at=utc_now(),
        key_name=None,
        action=AuditAction.ERASURE,
        method="CLI",
        path="interview-system erase",
        counts=dict(counts),
    )
