"""The statements that add an event to the log, and events read back from it.

A write unit yields its event last, inside its own transaction (the
outbox), so the event commits exactly when the write does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from src.domain.models.event import Event, EventType
from src.domain.models.json import compact_json
from src.domain.models.utterance import Utterance
from src.persistence.repositories import statements as sql
from src.persistence.repositories.common import Row
from src.persistence.repositories.statements import Statement

__all__ = [
    "deleted_event",
    "event_from_row",
    "participant_erased_event",
    "session_event",
    "utterances_data",
]


def session_event(type_: EventType, session_id: str, data: Mapping[str, Any]) -> Statement:
    """The insert of a session's event, its study and version read from the session's row
    as the write left it; yield it last in the unit (see statements.INSERT_EVENT)."""
    parameters = {"type": type_.value, "session_id": session_id, "data": compact_json(data)}
    return Statement(sql.INSERT_EVENT, parameters)


def deleted_event(session_id: str, study_id: str | None, version: int) -> Statement:
    """The insert of `session.deleted`, from the row the delete returned."""
    return _event_values(EventType.DELETED, session_id, study_id, version, {})


def participant_erased_event(study_id: str | None, counts: Mapping[str, int]) -> Statement:
    """The insert of `participant.erased`: counts only, never who or what they said."""
    return _event_values(EventType.PARTICIPANT_ERASED, None, study_id, None, dict(counts))


def _event_values(
    type_: EventType,
    session_id: str | None,
    study_id: str | None,
    version: int | None,
    data: Mapping[str, Any],
) -> Statement:
    return Statement(
        sql.INSERT_EVENT_VALUES,
        {
            "type": type_.value,
            "session_id": session_id,
            "study_id": study_id,
            "version": version,
            "data": compact_json(data),
        },
    )


def utterances_data(utterances: Sequence[Utterance]) -> list[dict[str, Any]]:
    """Utterances as an event carries them: as the API shows them."""
    return [utterance.model_dump(mode="json") for utterance in utterances]


def event_from_row(row: Row) -> Event:
    """The Event an `events` row stores."""
    event_id, type_, session_id, study_id, version, at, data = row
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return Event.model_construct(
        id=int(event_id),
        type=EventType(type_),
        session_id=session_id,
        study_id=study_id,
        version=None if version is None else int(version),
        at=moment,
        data=json.loads(data),
    )
