"""Problem+json answers read back as the store's own errors, field by field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from src.client import ApiError
from src.client.errors import error_from_response
from src.core.errors import (
    InvalidCursorError,
    InvalidTransitionError,
    SessionEndedError,
    SessionError,
    SessionExistsError,
    SessionMismatchError,
    SessionNotFoundError,
    StaleSessionError,
    StorageFullError,
    StorageUnavailableError,
    UtteranceExistsError,
)


def _problem(status: int, code: str, **extensions: Any) -> httpx.Response:
    body = {
        "type": "about:blank",
        "title": "t",
        "status": status,
        "detail": "said so",
        "code": code,
    }
    return httpx.Response(
        status, json={**body, **extensions}, headers={"content-type": "application/problem+json"}
    )


@pytest.mark.parametrize(
    ("status", "code", "extensions", "kind"),
    [
        (404, "session_not_found", {"session_id": "s"}, SessionNotFoundError),
        (409, "session_exists", {"session_id": "s"}, SessionExistsError),
        (
            412,
            "stale_session",
            {"session_id": "s", "expected_version": 1, "actual_version": 3},
            StaleSessionError,
        ),
        (409, "session_mismatch", {"session_id": "s", "field": "concept_id"}, SessionMismatchError),
        (
            409,
            "invalid_transition",
            {"session_id": "s", "from_status": "completed", "to_status": "paused"},
            InvalidTransitionError,
        ),
        (
            409,
            "session_ended",
            {"session_id": "s", "session_status": "completed"},
            SessionEndedError,
        ),
        (
            409,
            "utterance_exists",
            {"session_id": "s", "turn_number": 2, "speaker": "respondent"},
            UtteranceExistsError,
        ),
        (422, "invalid_cursor", {}, InvalidCursorError),
        (507, "storage_full", {}, StorageFullError),
        (503, "storage_unavailable", {}, StorageUnavailableError),
    ],
)
def test_each_code_becomes_its_domain_error_with_its_fields(
    status: int, code: str, extensions: dict[str, Any], kind: type[SessionError]
) -> None:
    error = error_from_response(_problem(status, code, **extensions))

    assert type(error) is kind
    assert error.detail == str(error) == "said so"
    for name, value in extensions.items():
        assert getattr(error, name) == value


def test_a_refusal_without_a_domain_error_is_an_api_error_with_the_field_errors() -> None:
    errors = [{"field": "concept_id", "location": "body", "reason": "too short"}]

    error = error_from_response(_problem(422, "unprocessable_entity", errors=errors))

    assert isinstance(error, ApiError)
    assert (error.status, error.code, error.errors, error.detail) == (
        422,
        "unprocessable_entity",
        errors,
        "said so",
    )


@pytest.mark.parametrize(("status", "kind"), [(503, StorageUnavailableError), (502, ApiError)])
def test_an_answer_that_is_not_a_problem_body_still_raises(
    status: int, kind: type[SessionError]
) -> None:
    error = error_from_response(httpx.Response(status, text="<html>Bad gateway</html>"))

    assert type(error) is kind
    assert "Bad gateway" in error.detail
