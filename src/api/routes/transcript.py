"""Routes for what was said in a session: utterances, turns, resume and export."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter

from src.api.deps import IfMatchHeader, RepositoryDep, SessionIdPath, SettingsDep
from src.api.errors import problem_responses
from src.api.links import next_page_headers
from src.api.preconditions import etag, expected_version
from src.api.schemas import ResumeContext, TurnCreate, TurnRecorded, UtteranceCreate
from src.api.streaming import sharing_the_loop
from src.core.errors import PseudonymKeyMissingError, SessionNotFoundError
from src.domain.export import ExportFormat, session_export_file_name
from src.domain.models.turn import Turn
from src.domain.models.utterance import Utterance
from src.domain.redaction import Pseudonymizer
from src.persistence.pagination import MAX_PAGE_SIZE
from src.study_exporting import export_session_bytes

router = APIRouter(
    prefix="/sessions/{session_id}",
    tags=["transcript"],
    responses=problem_responses(400, 401, 413, 415, 503),
)

_UTTERANCE_LIST = TypeAdapter(list[Utterance])
_TURN_LIST = TypeAdapter(list[Turn])


def _json(
    body: bytes, status_code: int = HTTPStatus.OK, headers: dict[str, str] | None = None
) -> Response:
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


@router.post(
    "/utterances",
    status_code=HTTPStatus.CREATED,
    response_model=Utterance,
    responses=problem_responses(404, 409, 413, 422, 507),
)
async def append_utterance(
    session_id: SessionIdPath, body: UtteranceCreate, repository: RepositoryDep
) -> Response:
    """Append one utterance to an active or paused session's record."""
    utterance = await repository.append_utterance(session_id, body)
    return _json(utterance.model_dump_json().encode(), HTTPStatus.CREATED)


@router.get("/utterances", response_model=list[Utterance], responses=problem_responses(404, 422))
async def list_utterances(
    session_id: SessionIdPath,
    repository: RepositoryDep,
    request: Request,
    after_turn: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
) -> Response:
    """The session's utterances in turn order, a page at a time; `Link` leads to the next."""
    page = await repository.list_utterances(
        session_id, after_turn=after_turn, limit=limit, cursor=cursor
    )
    return _json(
        _UTTERANCE_LIST.dump_json(page.items),
        headers=next_page_headers(request, page.next_cursor),
    )


@router.post(
    "/turns",
    status_code=HTTPStatus.CREATED,
    response_model=TurnRecorded,
    responses=problem_responses(404, 409, 412, 413, 422, 507),
)
async def record_turn(
    session_id: SessionIdPath,
    body: TurnCreate,
    repository: RepositoryDep,
    if_match: IfMatchHeader = None,
) -> Response:
    """Store a turn in one transaction, or nothing of it: its utterances, the session's new
    state (`state`, or a merge patch `state_patch`) and its record, whose usage is added to
    the session's totals."""
    expected = await expected_version(repository, session_id, if_match)
    record = await repository.record_turn(
        session_id,
        body.utterances,
        body.state,
        state_patch=body.state_patch_document(),
        record=body.record,
        graph=body.graph,
        expected_version=expected,
    )
    turn = Turn(
        turn_number=record.utterances[0].turn_number,
        utterances=record.utterances,
        record=record.record,
        version=record.session.version,
        created_at=record.utterances[0].created_at,
    )
    recorded = TurnRecorded(session=record.session, turn=turn, utterances=record.utterances)
    return _json(
        recorded.model_dump_json().encode(),
        HTTPStatus.CREATED,
        {"ETag": etag(record.session.version)},
    )


@router.get("/turns", response_model=list[Turn], responses=problem_responses(404, 422))
async def list_turns(
    session_id: SessionIdPath,
    repository: RepositoryDep,
    request: Request,
    after_turn: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> Response:
    """The session's turns in turn order with their utterances, records and versions;
    `Link` leads to the next page."""
    page = await repository.list_turns(session_id, after_turn=after_turn, limit=limit)
    return _json(
        _TURN_LIST.dump_json(page.items),
        headers=next_page_headers(request, page.next_after_turn, parameter="after_turn"),
    )


@router.get("/resume", response_model=ResumeContext, responses=problem_responses(404, 422))
async def resume_context(
    session_id: SessionIdPath,
    repository: RepositoryDep,
    last: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
) -> Response:
    """What an interviewer needs to go on: the session, its state and its last utterances."""
    session = await repository.get(session_id)
    if session is None:
        raise SessionNotFoundError(session_id)
    utterances = await repository.last_utterances(session_id, last)
    context = ResumeContext(session=session, utterances=utterances)
    return _json(context.model_dump_json().encode(), headers={"ETag": etag(session.version)})


@router.get(
    "/export",
    responses={
        200: {
            "description": "The whole record, streamed",
            "content": {export_format.media_type: {} for export_format in ExportFormat},
        },
        **problem_responses(404, 409, 422),
    },
)
async def export_session(
    session_id: SessionIdPath,
    repository: RepositoryDep,
    settings: SettingsDep,
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.JSON,
    pseudonymize: Annotated[
        bool,
        Query(
            description="Participant ids become keyed pseudonyms (PSEUDONYM_KEY); e-mail "
            "addresses, phone numbers and URLs in utterance text and metadata become "
            "[email], [phone] and [url]. 409 when the server has no PSEUDONYM_KEY."
        ),
    ] = False,
) -> StreamingResponse:
    """The session's whole research record, streamed as JSON, Markdown or CSV; its graph
    as GraphML; or both as a REFI-QDA project (.qdpx)."""
    pseudonymizer = None
    if pseudonymize:
        if settings.pseudonym_key is None:
            raise PseudonymKeyMissingError()
        pseudonymizer = Pseudonymizer(settings.pseudonym_key.get_secret_value().encode())
    session = await repository.get(session_id)
    if session is None:
        raise SessionNotFoundError(session_id)
    file_name = session_export_file_name(session, export_format)
    return StreamingResponse(
        sharing_the_loop(export_session_bytes(repository, session, export_format, pseudonymizer)),
        media_type=export_format.media_type,
        headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
    )
