"""Events: what the durable log says each acknowledged write did (CONTRACT §9)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from src.domain.models.session import UtcDatetime

__all__ = ["Event", "EventType"]


class EventType(StrEnum):
    """What a write did; an event's `type`."""

    CREATED = "session.created"
    STATE_UPDATED = "session.state_updated"
    TURN_RECORDED = "session.turn_recorded"
    UTTERANCE_ADDED = "session.utterance_added"
    STATUS_CHANGED = "session.status_changed"
    LABELS_CHANGED = "session.labels_changed"
    GRAPH_CHANGED = "session.graph_changed"
    DELETED = "session.deleted"
    PARTICIPANT_ERASED = "participant.erased"


class Event(BaseModel):
    """One entry of the log: ids increase in the order writes committed."""

    id: int
    type: EventType
    session_id: str | None
    study_id: str | None
    version: int | None
    at: UtcDatetime
    data: dict[str, Any]
