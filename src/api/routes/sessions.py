"""Routes for interview sessions."""

from __future__ import annotations

import re
import uuid
from http import HTTPStatus
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BeforeValidator, StringConstraints, TypeAdapter

from src.api.deps import IfMatchHeader, RepositoryDep, SessionIdPath
from src.api.errors import problem_responses
from src.api.links import next_page_headers, session_location
from src.api.preconditions import etag, expected_version
from src.api.schemas import SessionCreate, SessionPatch, SessionStateUpdate, StatePatch
from src.core.errors import SessionNotFoundError
from src.domain.models.session import (
    LABEL_KEY_PATTERN,
    Methodology,
    ParticipantId,
    Session,
    SessionState,
    SessionStatus,
    StudyId,
)
from src.persistence.pagination import MAX_PAGE_SIZE
from src.persistence.repositories.protocol import SessionRepositoryProtocol

# Any route may meet a body that is too large, not JSON or not UTF-8, a missing
# API key or a database that cannot serve now.
router = APIRouter(
    prefix="/sessions", tags=["sessions"], responses=problem_responses(400, 401, 413, 415, 503)
)

_SESSION_LIST = TypeAdapter(list[Session])

_RFC_3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc_3339_text(value: object) -> object:
    # pydantic alone would also take a bare number (as Unix time) or no offset.
    if not isinstance(value, str) or not _RFC_3339.match(value):
        raise ValueError(
            "must be an RFC 3339 date-time with an offset, such as 2026-01-31T09:15:00Z"
        )
    return value


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc_3339_text)]

LabelFilter = Annotated[
    str,
    StringConstraints(pattern=LABEL_KEY_PATTERN.removesuffix("$") + ":"),
]
"""`key:value`, split at the first colon; the key is one a label can have."""

StatusFilter = Literal["active", "paused", "completed", "abandoned", "all"]
"""A session status, or `all` for every status."""


def _session_response(
    session: Session, status_code: int = HTTPStatus.OK, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        session.model_dump_json(),
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": etag(session.version), **(headers or {})},
    )


async def _transition(
    repository: SessionRepositoryProtocol,
    session_id: str,
    if_match: str | None,
    to_status: SessionStatus,
) -> Response:
    expected = await expected_version(repository, session_id, if_match)
    session = await repository.transition(session_id, to_status, expected_version=expected)
    return _session_response(session)


# Each collection route answers on "/sessions" and on "/sessions/" alike,
# with no redirect; only the first form is in the OpenAPI document.
@router.post(
    "",
    status_code=HTTPStatus.CREATED,
    response_model=Session,
    responses=problem_responses(409, 413, 422, 507),
)
@router.post("/", status_code=HTTPStatus.CREATED, include_in_schema=False)
async def create_session(body: SessionCreate, repository: RepositoryDep) -> Response:
    """Start a new interview session."""
    session = await repository.create(
        Session(
            id=str(uuid.uuid4()),
            methodology=body.methodology,
            concept_id=body.concept_id,
            concept_name=body.concept_name,
            state=SessionState(
                methodology=body.methodology,
                concept_id=body.concept_id,
                concept_name=body.concept_name,
            ),
            status=SessionStatus.ACTIVE,
            study_id=body.study_id,
            participant_id=body.participant_id,
            labels=body.labels,
            config=body.config,
        )
    )
    return _session_response(
        session, HTTPStatus.CREATED, {"Location": session_location(session.id)}
    )


@router.get("", response_model=list[Session], responses=problem_responses(422))
@router.get("/", include_in_schema=False)
async def list_sessions(
    repository: RepositoryDep,
    request: Request,
    status: StatusFilter = "active",
    methodology: Methodology | None = None,
    concept_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    study_id: StudyId | None = None,
    participant_id: ParticipantId | None = None,
    label: Annotated[
        list[LabelFilter] | None,
        Query(description="key:value, split at the first colon; all must match"),
    ] = None,
    created_after: Annotated[
        Rfc3339 | None, Query(description="RFC 3339 with an offset; exclusive")
    ] = None,
    created_before: Annotated[
        Rfc3339 | None, Query(description="RFC 3339 with an offset; exclusive")
    ] = None,
    include_total: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
) -> Response:
    """List sessions newest first, one page at a time; a `Link` header leads to the next.

    `status=all` lists every status; `include_total=true` adds `X-Total-Count`.
    """
    filters: dict[str, Any] = {
        "status": None if status == "all" else SessionStatus(status),
        "methodology": methodology,
        "concept_id": concept_id,
        "study_id": study_id,
        "participant_id": participant_id,
        "labels": _label_filters(label or []),
        "created_after": created_after,
        "created_before": created_before,
    }
    page = await repository.list_sessions(**filters, limit=limit, cursor=cursor)
    headers = next_page_headers(request, page.next_cursor)
    if include_total:
        headers["X-Total-Count"] = str(await repository.count_sessions(**filters))
    return Response(
        _SESSION_LIST.dump_json(page.items), media_type="application/json", headers=headers
    )


_MAX_LABEL_FILTERS = 32


def _label_filters(filters: list[str]) -> list[tuple[str, str]]:
    if len(filters) > _MAX_LABEL_FILTERS:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("query", "label"),
                    "msg": f"at most {_MAX_LABEL_FILTERS} label filters",
                    "input": filters,
                }
            ]
        )
    pairs = []
    for text in filters:
        key, _, value = text.partition(":")
        pairs.append((key, value))
    return pairs


@router.get("/{session_id}", response_model=Session, responses=problem_responses(404, 422))
async def get_session(session_id: SessionIdPath, repository: RepositoryDep) -> Response:
    """Read a session, with its version as the ETag."""
    session = await repository.get(session_id)
    if session is None:
        raise SessionNotFoundError(session_id)
    return _session_response(session)


@router.put(
    "/{session_id}/state",
    response_model=Session,
    responses=problem_responses(404, 409, 412, 413, 422, 507),
)
async def update_session_state(
    session_id: SessionIdPath,
    body: SessionStateUpdate,
    repository: RepositoryDep,
    if_match: IfMatchHeader = None,
) -> Response:
    """Replace the session's state; with If-Match, only if it is still at that version."""
    expected = await expected_version(repository, session_id, if_match)
    session = await repository.update_state(session_id, body, expected_version=expected)
    return _session_response(session)


MERGE_PATCH = "application/merge-patch+json"


async def _merge_patch_only(
    content_type: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    # A dependency, so that it answers before the body is read and validated.
    if (content_type or "").split(";")[0].strip().lower() != MERGE_PATCH:
        raise HTTPException(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"A state patch is sent as {MERGE_PATCH}."
        )


@router.patch(
    "/{session_id}/state",
    response_model=Session,
    responses=problem_responses(404, 409, 412, 413, 415, 422, 507),
    dependencies=[Depends(_merge_patch_only)],
)
async def patch_session_state(
    session_id: SessionIdPath,
    repository: RepositoryDep,
    patch: Annotated[StatePatch, Body(media_type=MERGE_PATCH)],
    if_match: IfMatchHeader = None,
) -> Response:
    """Apply a JSON merge patch (RFC 7396) to the session's state in one atomic write."""
    expected = await expected_version(repository, session_id, if_match)
    session = await repository.patch_state(
        session_id, patch.model_dump(exclude_unset=True), expected_version=expected
    )
    return _session_response(session)


@router.patch(
    "/{session_id}",
    response_model=Session,
    responses=problem_responses(404, 412, 413, 422, 507),
    openapi_extra={
        "requestBody": {
            "content": {
                MERGE_PATCH: {"schema": {"$ref": "#/components/schemas/SessionPatch"}},
            }
        }
    },
)
async def patch_session(
    session_id: SessionIdPath,
    body: SessionPatch,
    repository: RepositoryDep,
    if_match: IfMatchHeader = None,
) -> Response:
    """Change a session's labels (a merge patch: null removes a label) or participant."""
    expected = await expected_version(repository, session_id, if_match)
    session = await repository.patch_session(
        session_id, body.model_dump(exclude_unset=True), expected_version=expected
    )
    return _session_response(session)


_TRANSITION_RESPONSES = problem_responses(404, 409, 412, 422, 507)


@router.post("/{session_id}/pause", response_model=Session, responses=_TRANSITION_RESPONSES)
async def pause_session(
    session_id: SessionIdPath, repository: RepositoryDep, if_match: IfMatchHeader = None
) -> Response:
    """Pause an active session."""
    return await _transition(repository, session_id, if_match, SessionStatus.PAUSED)


@router.post("/{session_id}/resume", response_model=Session, responses=_TRANSITION_RESPONSES)
async def resume_session(
    session_id: SessionIdPath, repository: RepositoryDep, if_match: IfMatchHeader = None
) -> Response:
    """Resume a paused session."""
    return await _transition(repository, session_id, if_match, SessionStatus.ACTIVE)


@router.post("/{session_id}/complete", response_model=Session, responses=_TRANSITION_RESPONSES)
async def complete_session(
    session_id: SessionIdPath, repository: RepositoryDep, if_match: IfMatchHeader = None
) -> Response:
    """Complete an active or paused session; completed is final."""
    return await _transition(repository, session_id, if_match, SessionStatus.COMPLETED)


@router.post("/{session_id}/abandon", response_model=Session, responses=_TRANSITION_RESPONSES)
async def abandon_session(
    session_id: SessionIdPath, repository: RepositoryDep, if_match: IfMatchHeader = None
) -> Response:
    """Abandon an active or paused session; abandoned is final."""
    return await _transition(repository, session_id, if_match, SessionStatus.ABANDONED)


@router.delete(
    "/{session_id}",
    status_code=HTTPStatus.NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 422, 507),
)
async def delete_session(session_id: SessionIdPath, repository: RepositoryDep) -> Response:
    """Delete a session for good."""
    if not await repository.delete(session_id):
        raise SessionNotFoundError(session_id)
    return Response(status_code=HTTPStatus.NO_CONTENT)
