"""Routes for studies: what their sessions add up to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from src.api.deps import RepositoryDep
from src.api.errors import problem_responses
from src.domain.models.study import StudySummary

router = APIRouter(prefix="/studies", tags=["studies"], responses=problem_responses(400, 401, 503))


@router.get("/{study_id}", response_model=StudySummary, responses=problem_responses(404, 422))
async def get_study(
    study_id: Annotated[
        str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")
    ],
    repository: RepositoryDep,
) -> Response:
    """The study's sessions counted by status, their usage totals, and when they ran."""
    summary = await repository.study_summary(study_id)
    return Response(summary.model_dump_json(), media_type="application/json")
