"""An optional shared API key, required on every route but /health."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from http import HTTPStatus

from starlette.types import ASGIApp, Receive, Scope, Send

from src.api.docs import DOCS_PATHS
from src.api.errors import problem_response
from src.core.config import Settings

__all__ = ["OPEN_PATHS", "ApiKeyMiddleware"]

OPEN_PATHS = frozenset({"/health", *DOCS_PATHS})


class ApiKeyMiddleware:
    """With API_KEY set, answer 401 unless a request carries `Authorization: Bearer <key>`."""

    def __init__(self, app: ASGIApp, settings: Callable[[], Settings]) -> None:
        self.app = app
        self._settings = settings
        self._expected: bytes | None = None
        self._resolved = False

    def _expected_header(self) -> bytes | None:
        # Settings may be read only when the app starts, so look once, late.
        if not self._resolved:
            key = self._settings().api_key
            self._expected = None if key is None else f"Bearer {key.get_secret_value()}".encode()
            self._resolved = True
        return self._expected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        expected = self._expected_header() if scope["type"] == "http" else None
        if expected is None or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        # compare_digest takes as long whichever byte of the key is wrong.
        if hmac.compare_digest(given, expected):
            await self.app(scope, receive, send)
            return
        response = problem_response(
            HTTPStatus.UNAUTHORIZED,
            "This server needs an API key: send Authorization: Bearer <key>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)
