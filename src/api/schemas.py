"""Request bodies, named by their role."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from src.domain.models.session import ConceptId, ConceptName, Methodology, SessionState

__all__ = ["SessionCreate", "SessionStateUpdate"]


class SessionCreate(BaseModel):
    """What a client gives to start a session; the server picks the id."""

    model_config = ConfigDict(extra="forbid")

    methodology: Methodology
    concept_id: ConceptId
    concept_name: ConceptName


class SessionStateUpdate(SessionState):
    """A session's new state; methodology and concept must be the session's own."""

    model_config = ConfigDict(extra="forbid")
