"""Every error response, as RFC 9457 problem+json, mapped in this one module."""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from src.api.observability import logged_path
from src.core.errors import (
    EventsTrimmedError,
    GraphTurnPassedError,
    InvalidCursorError,
    InvalidEventIdError,
    InvalidGraphError,
    InvalidSearchQueryError,
    InvalidStateError,
    InvalidTransitionError,
    NodeNotFoundError,
    NodeWithoutEmbeddingError,
    ParticipantNotFoundError,
    PseudonymKeyMissingError,
    SessionEndedError,
    SessionError,
    SessionExistsError,
    SessionMismatchError,
    SessionNotFoundError,
    StaleSessionError,
    StorageDamagedError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
    StudyNotFoundError,
    TurnNotRecordedError,
    TurnRecordExistsError,
    UtteranceExistsError,
    VersionNotFoundError,
)
from src.core.metrics import observe_database_error
from src.domain.models.json import MAX_JSON_DEPTH

__all__ = ["PROBLEM_MEDIA_TYPE", "install_error_handlers", "problem_response", "problem_responses"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 1

_log = structlog.get_logger(__name__)

_HTTP_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")

MAX_FIELD_ERRORS = 50
"""A 422 names at most this many errors, and says how many more there were."""
_MAX_ERROR_TEXT = 256

# Most specific first: the first entry the error is an instance of wins.
_STATUS_BY_ERROR: tuple[tuple[type[SessionError], HTTPStatus], ...] = (
    (SessionNotFoundError, HTTPStatus.NOT_FOUND),
    (SessionExistsError, HTTPStatus.CONFLICT),
    (SessionMismatchError, HTTPStatus.CONFLICT),
    (InvalidTransitionError, HTTPStatus.CONFLICT),
    (SessionEndedError, HTTPStatus.CONFLICT),
    (UtteranceExistsError, HTTPStatus.CONFLICT),
    (TurnRecordExistsError, HTTPStatus.CONFLICT),
    (TurnNotRecordedError, HTTPStatus.CONFLICT),
    (StudyNotFoundError, HTTPStatus.NOT_FOUND),
    (ParticipantNotFoundError, HTTPStatus.NOT_FOUND),
    (VersionNotFoundError, HTTPStatus.NOT_FOUND),
    (NodeNotFoundError, HTTPStatus.NOT_FOUND),
    (InvalidGraphError, HTTPStatus.UNPROCESSABLE_ENTITY),
    (NodeWithoutEmbeddingError, HTTPStatus.UNPROCESSABLE_ENTITY),
    (GraphTurnPassedError, HTTPStatus.CONFLICT),
    (InvalidStateError, HTTPStatus.UNPROCESSABLE_ENTITY),
    (StaleSessionError, HTTPStatus.PRECONDITION_FAILED),
    (InvalidCursorError, HTTPStatus.UNPROCESSABLE_ENTITY),
    (InvalidSearchQueryError, HTTPStatus.UNPROCESSABLE_ENTITY),
    (InvalidEventIdError, HTTPStatus.BAD_REQUEST),
    (EventsTrimmedError, HTTPStatus.GONE),
    (PseudonymKeyMissingError, HTTPStatus.CONFLICT),
    (StorageDamagedError, HTTPStatus.INTERNAL_SERVER_ERROR),
    (StorageFullError, HTTPStatus.INSUFFICIENT_STORAGE),
    (StorageUnavailableError, HTTPStatus.SERVICE_UNAVAILABLE),
    (StorageError, HTTPStatus.SERVICE_UNAVAILABLE),
)

# Attributes of domain errors that a client may act on; nothing else of an
# error (paths, SQL, driver messages) ever reaches a response.
_PUBLIC_ATTRIBUTES = (
    "trimmed_through",
    "session_id",
    "expected_version",
    "actual_version",
    "from_status",
    "to_status",
    "field",
    "session_status",
    "turn_number",
    "speaker",
    "study_id",
    "version",
    "last_turn",
    "node_id",
)


class FieldError(BaseModel):
    """Why one input was refused."""

    field: str
    location: str
    reason: str


class Problem(BaseModel):
    """An RFC 9457 problem details body."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries declaring a problem+json body for each status."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response; `title` is the status phrase, as `about:blank` asks."""
    phrase = HTTPStatus(status).phrase
    body = {
        "type": "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail or phrase,
        "code": code or _snake_case(phrase),
        **extensions,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _snake_case(name: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("-", " ").split()
    return "_".join(word.lower() for word in words)


def _field_errors(errors: Any) -> list[dict[str, str]]:
    result = []
    for error in errors:
        location, *path = [str(part) for part in error.get("loc", ())] or ["body"]
        reason = error["msg"]
        if error.get("type") == "json_invalid":
            # Its location holds the character offset, not a field.
            reason = f"{reason} at character {'.'.join(path)}"
            path = []
        result.append({"field": ".".join(path) or location, "location": location, "reason": reason})
    return result


async def _session_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SessionError)
    status = next(status for kind, status in _STATUS_BY_ERROR if isinstance(exc, kind))
    extensions = {name: getattr(exc, name) for name in _PUBLIC_ATTRIBUTES if hasattr(exc, name)}
    headers = None
    if status in (HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.INSUFFICIENT_STORAGE):
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        _log.warning(
            "storage_unavailable", path=logged_path(request.scope), error=repr(exc.__cause__)
        )
        observe_database_error(exc)
    elif status == HTTPStatus.INTERNAL_SERVER_ERROR:
        _log.error("storage_damaged", path=logged_path(request.scope), error=repr(exc.__cause__))
        observe_database_error(exc)
    if isinstance(exc, InvalidCursorError):
        extensions["errors"] = [{"field": "cursor", "location": "query", "reason": exc.detail}]
    elif isinstance(exc, InvalidStateError | InvalidGraphError):
        extensions["errors"] = [{**error, "location": "body"} for error in exc.errors]
    elif isinstance(exc, InvalidSearchQueryError):
        extensions["errors"] = [{"field": "q", "location": "query", "reason": exc.detail}]
    elif isinstance(exc, PseudonymKeyMissingError):
        extensions["errors"] = [
            {"field": "pseudonymize", "location": "query", "reason": exc.detail}
        ]
    code = _snake_case(type(exc).__name__.removesuffix("Error"))
    return problem_response(status, exc.detail, code=code, headers=headers, **extensions)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if isinstance(exc.__cause__, RecursionError):
        # FastAPI reports any failure to parse the body as "an error parsing the body".
        detail = (
            "The JSON body nests arrays and objects deeper than the server reads; "
            f"open JSON fields may nest at most {MAX_JSON_DEPTH} levels."
        )
    headers = exc.headers
    if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        # The router names only the first route that matched the path; a
        # path served by several routes (GET and POST /sessions) allows all.
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    extensions = {name: getattr(exc, name) for name in _PUBLIC_ATTRIBUTES if hasattr(exc, name)}
    return problem_response(exc.status_code, detail, headers=headers, **extensions)


def _allowed_methods(request: Request) -> list[str]:
    allowed = {
        method
        for method in _HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    }
    if "GET" in allowed:
        allowed.add("HEAD")  # src.api.head answers it wherever GET is
    return [method for method in _HTTP_METHODS if method in allowed]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError | ValidationError)
    found = exc.errors()
    # A body of thousands of bad members must not buy an answer many times its size.
    errors = [
        {name: _clipped(text) for name, text in error.items()}
        for error in _field_errors(found[:MAX_FIELD_ERRORS])
    ]
    summary = "; ".join(f"{error['field']}: {error['reason']}" for error in errors)
    if len(found) > len(errors):
        summary += f"; and {len(found) - len(errors)} more"
    return problem_response(
        HTTPStatus.UNPROCESSABLE_ENTITY, f"The request is not valid: {summary}", errors=errors
    )


def _clipped(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 1] + "…"


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("unhandled_error", path=logged_path(request.scope), exc_info=exc)
    return problem_response(
        HTTPStatus.INTERNAL_SERVER_ERROR, "The server failed to handle this request."
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error the app can raise answer as problem+json."""
    app.add_exception_handler(SessionError, _session_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
