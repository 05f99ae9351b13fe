"""Routes for a session's history and forks."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import TypeAdapter

from src.api.deps import RepositoryDep, SessionIdPath
from src.api.errors import problem_responses
from src.api.links import next_page_headers, session_location
from src.api.preconditions import etag
from src.api.schemas import ForkCreate
from src.domain.models.session import MAX_COUNT, Session
from src.domain.models.turn import SessionVersion
from src.persistence.pagination import MAX_PAGE_SIZE

router = APIRouter(
    prefix="/sessions/{session_id}",
    tags=["history"],
    responses=problem_responses(400, 401, 503),
)

_VERSION_LIST = TypeAdapter(list[SessionVersion])


@router.get("/versions", response_model=list[SessionVersion], responses=problem_responses(404, 422))
async def list_versions(
    session_id: SessionIdPath,
    repository: RepositoryDep,
    request: Request,
    after: Annotated[int | None, Query(ge=0, le=MAX_COUNT)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> Response:
    """The session after every write that changed it, oldest first; `Link` leads on."""
    page = await repository.list_versions(session_id, after=after, limit=limit)
    return Response(
        _VERSION_LIST.dump_json(page.items),
        media_type="application/json",
        headers=next_page_headers(request, page.next_after, parameter="after"),
    )


@router.get("/versions/{version}", response_model=Session, responses=problem_responses(404, 422))
async def get_version(
    session_id: SessionIdPath,
    version: Annotated[int, Path(ge=1, le=MAX_COUNT)],
    repository: RepositoryDep,
) -> Response:
    """The session exactly as the write that made this version returned it."""
    session = await repository.get_version(session_id, version)
    return Response(session.model_dump_json(), media_type="application/json")


@router.post(
    "/fork",
    status_code=HTTPStatus.CREATED,
    response_model=Session,
    responses=problem_responses(404, 409, 413, 422, 507),
)
async def fork_session(
    session_id: SessionIdPath, body: ForkCreate, repository: RepositoryDep
) -> Response:
    """A new active session from this one's turns up to `at_turn`, to go on differently."""
    session = await repository.fork(session_id, body.at_turn, new_id=body.id, labels=body.labels)
    return Response(
        session.model_dump_json(),
        status_code=HTTPStatus.CREATED,
        media_type="application/json",
        headers={"ETag": etag(session.version), "Location": session_location(session.id)},
    )
