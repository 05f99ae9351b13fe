"""What a study's sessions add up to."""

from __future__ import annotations

from pydantic import BaseModel

from src.domain.models.session import StudyId, Usage, UtcDatetime

__all__ = ["StudySummary"]


class StudySummary(BaseModel):
    """A study's sessions counted by status, their usage totals, and when they ran."""

    study_id: StudyId
    sessions: dict[str, int]
    usage: Usage
    first_created_at: UtcDatetime
    last_updated_at: UtcDatetime
