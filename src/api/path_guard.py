"""Refuse request paths that end in a line break, which the router would misread."""

from __future__ import annotations

from http import HTTPStatus

from starlette.types import ASGIApp, Receive, Scope, Send

from src.api.errors import problem_response

__all__ = ["TrailingNewlineGuard"]


class TrailingNewlineGuard:
    """Answer 404 to a path ending in "\\n" (sent as %0A).

    Starlette anchors its route patterns with `$`, which also matches before
    a final newline: `/sessions/x/pause%0A` would pause session x, and
    `/sessions/%0A` would list sessions. No route has such a path.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("\n"):
            response = problem_response(HTTPStatus.NOT_FOUND)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
