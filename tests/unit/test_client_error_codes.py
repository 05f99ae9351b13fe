"""Every domain error the server maps to HTTP comes back from the client as that error."""

from __future__ import annotations

import httpx
import pytest

from src.api.errors import _STATUS_BY_ERROR, _snake_case
from src.client import ApiError, InsufficientScopeError
from src.client.errors import error_from_response
from src.core.errors import InvalidStateError, SessionError


def _answer(status: int, code: str, **extensions: object) -> httpx.Response:
    body = {"type": "about:blank", "title": "t", "status": status, "detail": "said so"}
    return httpx.Response(status, json={**body, "code": code, **extensions})


@pytest.mark.parametrize(("kind", "status"), _STATUS_BY_ERROR, ids=lambda k: str(k))
def test_each_mapped_error_is_raised_again_by_the_client(
    kind: type[SessionError], status: int
) -> None:
    # The code the server writes for it (src.api.errors._session_error).
    code = _snake_case(kind.__name__.removesuffix("Error"))

    error = error_from_response(_answer(status, code))

    assert type(error) is kind
    assert str(error) == "said so"


def test_an_invalid_state_keeps_the_fields_the_server_named() -> None:
    errors = [{"field": "data", "location": "body", "reason": "too large"}]

    error = error_from_response(_answer(422, "invalid_state", errors=errors))

    assert isinstance(error, InvalidStateError)
    assert error.errors == errors


def test_a_missing_scope_is_an_api_error_of_its_own_naming_the_scope() -> None:
    error = error_from_response(_answer(403, "insufficient_scope", scope="admin"))

    assert isinstance(error, InsufficientScopeError)
    assert isinstance(error, ApiError)
    assert (error.status, error.code, error.scope) == (403, "insufficient_scope", "admin")
