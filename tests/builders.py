"""Test data with unique ids, so tests never collide on a shared database."""

from __future__ import annotations

import uuid
from typing import Any

from src.domain.models.session import Session, SessionState

NEW_SESSION_BODY = {"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"}
"""The body of a valid POST /sessions."""


def new_session(**overrides: Any) -> Session:
    """A valid active session; keyword arguments replace its fields."""
    fields: dict[str, Any] = {
        "id": f"s-{uuid.uuid4()}",
        "methodology": "mec",
        "concept_id": "concept-coffee",
        "concept_name": "Coffee",
        "status": "active",
    }
    fields.update(overrides)
    state = fields.pop("state", None) or SessionState(
        methodology=fields["methodology"],
        concept_id=fields["concept_id"],
        concept_name=fields["concept_name"],
    )
    return Session(**fields, state=state)


def state_of(session: Session, **overrides: Any) -> SessionState:
    """The session's state with some fields replaced, validated."""
    return SessionState.model_validate({**session.state.model_dump(), **overrides})
