"""Erasing a participant: everything of every session that names them (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from src.api.audit import note_erasure
from src.api.deps import RepositoryDep
from src.api.errors import problem_responses
from src.domain.models.erasure import Erasure

router = APIRouter(
    prefix="/participants",
    tags=["participants"],
    responses=problem_responses(400, 401, 403, 503),
)


@router.delete(
    "/{participant_id}", response_model=Erasure, responses=problem_responses(404, 422, 507)
)
async def erase_participant(
    participant_id: Annotated[
        str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")
    ],
    repository: RepositoryDep,
    request: Request,
) -> Response:
    """Erase a participant (GDPR art. 17): every session naming them and every fork of one,
    with transcripts, search entries, turn records, history and events, in one transaction.

    The answer counts what was erased; the audit log keeps those counts, never whose.
    """
    erased = await repository.erase_participant(participant_id)
    note_erasure(request, erased.model_dump())
    return Response(erased.model_dump_json(), media_type="application/json")
