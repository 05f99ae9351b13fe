"""Routes for studies: what their sessions add up to."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse

from src.api.deps import RepositoryDep, SettingsDep
from src.api.errors import problem_responses
from src.api.streaming import sharing_the_loop
from src.core.errors import PseudonymKeyMissingError
from src.domain.models.study import StudySummary
from src.domain.redaction import Pseudonymizer
from src.study_exporting import StudyExportFormat, export_study, study_session_ids

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

router = APIRouter(prefix="/studies", tags=["studies"], responses=problem_responses(400, 401, 503))


StudyIdPath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")
]


@router.get("/{study_id}", response_model=StudySummary, responses=problem_responses(404, 422))
async def get_study(
    study_id: StudyIdPath,
    repository: RepositoryDep,
) -> Response:
    """The study's sessions counted by status, their usage totals, and when they ran."""
    summary = await repository.study_summary(study_id)
    return Response(summary.model_dump_json(), media_type="application/json")


@router.get(
    "/{study_id}/export",
    responses={
        200: {
            "description": "Every session of the study in one file, streamed",
            "content": {export_format.media_type: {} for export_format in StudyExportFormat},
        },
        **problem_responses(404, 409, 422),
    },
)
async def export_study_sessions(
    study_id: StudyIdPath,
    repository: RepositoryDep,
    settings: SettingsDep,
    export_format: Annotated[StudyExportFormat, Query(alias="format")] = StudyExportFormat.QDPX,
    pseudonymize: Annotated[
        bool, Query(description="As for a session's export; 409 without PSEUDONYM_KEY.")
    ] = False,
) -> StreamingResponse:
    """Every session of the study in one streamed file: a REFI-QDA project, one CSV, or
    one JSON export per line."""
    pseudonymizer = None
    if pseudonymize:
        if settings.pseudonym_key is None:
            raise PseudonymKeyMissingError()
        pseudonymizer = Pseudonymizer(settings.pseudonym_key.get_secret_value().encode())
    session_ids = await study_session_ids(repository, study_id)
    file_name = (
        f"study-{_SAFE.sub('_', study_id)[:100].lstrip('.') or '_'}.{export_format.extension}"
    )
    return StreamingResponse(
        sharing_the_loop(
            export_study(repository, study_id, session_ids, export_format, pseudonymizer)
        ),
        media_type=export_format.media_type,
        headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
    )
