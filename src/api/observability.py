"""Each request logged once and counted: method, route, status, duration and its id."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.core.metrics import REQUEST_DURATION, REQUESTS
from src.domain.audit import without_participant

__all__ = ["REQUEST_ID_HEADER", "RequestObserver", "logged_path", "sent_path"]

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is kept only if it is short and cannot forge a log line or a header.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Requests answered before any route took them (no such path, a missing key,
# a body too large) share one label, and so do unknown methods, so that
# scanners cannot grow the metrics without bound.
_UNROUTED = "unrouted"
_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"})

_log = structlog.get_logger("src.api.request")


def _request_id(scope: Scope) -> str:
    sent = Headers(scope=scope).get(REQUEST_ID_HEADER)
    if sent is not None and _SAFE_REQUEST_ID.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


def sent_path(scope: Scope) -> str:
    """The request's path as sent, still percent-encoded (so it holds no line break to
    forge a log line with); never its query (a server may leave it on)."""
    raw: bytes = scope.get("raw_path") or b""
    return raw.partition(b"?")[0].decode("latin-1") or scope["path"]


def logged_path(scope: Scope) -> str:
    """The request's path as a log line shows it: as sent, with a participant's id
    (personal data) as its template."""
    return without_participant(sent_path(scope), scope["path"])


def _route_template(scope: Scope) -> str:
    """The path template of the route that served the request (`/sessions/{session_id}`)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else _UNROUTED


class RequestObserver:
    """Logs one `request` line per request and returns its id as `X-Request-ID`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                duration = time.perf_counter() - started
                method = scope["method"] if scope["method"] in _METHODS else "other"
                route = _route_template(scope)
                REQUESTS.labels(method=method, route=route, status=str(status)).inc()
                REQUEST_DURATION.labels(method=method, route=route).observe(duration)
                _log.info(
                    "request",
                    method=scope["method"],
                    path=logged_path(scope),
                    status=status,
                    duration_ms=round(duration * 1000, 3),
                )
