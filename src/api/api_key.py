"""An optional shared API key, required on every route but /health."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from http import HTTPStatus

from starlette.types import ASGIApp, Receive, Scope, Send

from src.api.errors import problem_response
from src.core.config import Settings

__all__ = ["OPEN_PATHS", "ApiKeyMiddleware"]

OPEN_PATHS = frozenset({"/health"})


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def bearer_credentials(authorization: bytes) -> bytes | None:
    """The credentials of an `Authorization: Bearer <credentials>` header, else None.

    The scheme is matched in any case (RFC 9110 11.1); spaces around the
    credentials are not part of them.
    """
    scheme, space, credentials = authorization.strip(b" \t").partition(b" ")
    if not space or scheme.lower() != b"bearer":
        return None
    return credentials.strip(b" ")


class ApiKeyMiddleware:
    """With API_KEY set, answer 401 unless a request carries `Authorization: Bearer <key>`."""

    def __init__(self, app: ASGIApp, settings: Callable[[], Settings]) -> None:
        self.app = app
        self._settings = settings
        self._expected_digest: bytes | None = None
        self._resolved = False

    def _key_digest(self) -> bytes | None:
        # Settings may be read only when the app starts, so look once, late.
        if not self._resolved:
            key = self._settings().api_key
            self._expected_digest = (
                None if key is None else _digest(key.get_secret_value().encode())
            )
            self._resolved = True
        return self._expected_digest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        expected = self._key_digest() if scope["type"] == "http" else None
        if expected is None or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = bearer_credentials(dict(scope["headers"]).get(b"authorization", b""))
        # Digests of equal length, compared in constant time: how long the
        # comparison takes tells nothing about the key, not even its length.
        if given and hmac.compare_digest(_digest(given), expected):
            await self.app(scope, receive, send)
            return
        response = problem_response(
            HTTPStatus.UNAUTHORIZED,
            "This server needs an API key: send Authorization: Bearer <key>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)
