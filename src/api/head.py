"""HEAD wherever GET is allowed (RFC 9110 9.3.2): load balancers probe with it."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HeadAsGet"]


class HeadAsGet:
    """Answer HEAD as the same GET would be answered, headers only.

    Routes declare GET alone, so the OpenAPI document lists each operation
    once; this lets every one of them, present and future, answer HEAD too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        body_sent = False

        async def send_headers_only(message: Message) -> None:
            nonlocal body_sent
            if message["type"] != "http.response.body":
                await send(message)
            elif not body_sent:
                # The headers (Content-Length included) stay those of the GET.
                body_sent = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        as_get = {**scope, "method": "GET"}
        try:
            await self.app(as_get, receive, send_headers_only)
        finally:
            # The route that answered, for the request's log line and metrics.
            if "route" in as_get:
                scope["route"] = as_get["route"]
