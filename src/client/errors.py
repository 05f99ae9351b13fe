"""Problem+json answers turned back into the store's own errors."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import httpx

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

__all__ = ["ApiError", "InsufficientScopeError", "error_from_response"]

# The `code` of a problem body, as src.api.errors writes it, to the error it names.
_DOMAIN_ERRORS: dict[str, type[SessionError]] = {
    "session_not_found": SessionNotFoundError,
    "session_exists": SessionExistsError,
    "stale_session": StaleSessionError,
    "session_mismatch": SessionMismatchError,
    "invalid_transition": InvalidTransitionError,
    "session_ended": SessionEndedError,
    "utterance_exists": UtteranceExistsError,
    "turn_record_exists": TurnRecordExistsError,
    "turn_not_recorded": TurnNotRecordedError,
    "study_not_found": StudyNotFoundError,
    "participant_not_found": ParticipantNotFoundError,
    "invalid_event_id": InvalidEventIdError,
    "events_trimmed": EventsTrimmedError,
    "version_not_found": VersionNotFoundError,
    "invalid_state": InvalidStateError,
    "invalid_cursor": InvalidCursorError,
    "invalid_search_query": InvalidSearchQueryError,
    "pseudonym_key_missing": PseudonymKeyMissingError,
    "storage_damaged": StorageDamagedError,
    "invalid_graph": InvalidGraphError,
    "graph_turn_passed": GraphTurnPassedError,
    "node_not_found": NodeNotFoundError,
    "node_without_embedding": NodeWithoutEmbeddingError,
    "storage_full": StorageFullError,
    "storage_unavailable": StorageUnavailableError,
    "storage": StorageError,
}
_BY_STATUS: dict[int, type[SessionError]] = {
    HTTPStatus.INSUFFICIENT_STORAGE: StorageFullError,
    HTTPStatus.SERVICE_UNAVAILABLE: StorageUnavailableError,
}
_STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "code", "errors", "instance"})


class ApiError(SessionError):
    """The server refused a request for a reason the store has no error of its own for.

    A missing key (401), a body too large (413), an invalid one (422, with
    `errors`): `status`, `code` and `errors` are those of the problem body.
    """

    def __init__(
        self, status: int, code: str, detail: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.errors = errors or []


class InsufficientScopeError(ApiError):
    """The key is valid but lacks the scope the route needs (403); `scope` names it."""

    def __init__(self, code: str, detail: str, scope: str) -> None:
        super().__init__(HTTPStatus.FORBIDDEN, code, detail)
        self.scope = scope


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    # Not the server's own answer (a proxy's page, say): keep what can be told.
    return {"detail": response.text[:500] or response.reason_phrase}


def error_from_response(response: httpx.Response) -> SessionError:
    """The error a 4xx or 5xx answer stands for, with the fields its problem body carries."""
    problem = _problem(response)
    code = str(problem.get("code") or "")
    detail = str(problem.get("detail") or response.reason_phrase)
    kind = _DOMAIN_ERRORS.get(code) or _BY_STATUS.get(response.status_code)
    if code == "insufficient_scope":
        return InsufficientScopeError(code, detail, str(problem.get("scope") or ""))
    if kind is None:
        errors = problem.get("errors")
        return ApiError(
            response.status_code, code, detail, errors if isinstance(errors, list) else None
        )
    # Built from the server's own words and fields, not re-worded by __init__.
    error = kind.__new__(kind)
    SessionError.__init__(error, detail)
    for name, value in problem.items():
        if name not in _STANDARD_MEMBERS and name.isidentifier():
            setattr(error, name, value)
    if isinstance(problem.get("errors"), list):
        # Which fields were refused (an invalid patched state, a bad cursor).
        error.errors = problem["errors"]  # type: ignore[attr-defined]
    return error
