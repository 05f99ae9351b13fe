"""What erasing a participant took away."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Erasure"]


class Erasure(BaseModel):
    """How much an erasure took, by kind: counts only, never whose or what."""

    model_config = ConfigDict(frozen=True)

    sessions: int = Field(ge=0, description="Sessions erased: the participant's and their forks")
    utterances: int = Field(ge=0, description="Utterances erased with those sessions")
    events: int = Field(ge=0, description="Events erased with those sessions")
