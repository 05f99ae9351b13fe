"""Refuse a request body that is too large, not JSON or not UTF-8, before any route runs."""

from __future__ import annotations

from collections.abc import Callable, Collection
from http import HTTPStatus

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.api.errors import problem_response
from src.core.config import Settings

__all__ = ["RequestBodyGuard", "is_json_media_type"]

_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


def is_json_media_type(content_type: str | None) -> bool:
    """Whether a Content-Type names JSON: `application/json` or `application/*+json`."""
    if content_type is None:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


class _Refused(Exception):
    def __init__(
        self, status: HTTPStatus, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


class RequestBodyGuard:
    """Answer 413, 415 or 400 to a body no route could read, whether or not the route reads one.

    A body is read whole (it is at most MAX_BODY_BYTES) and handed on as one
    message: a chunked body gives no length up front, and a route that reads
    no body would otherwise never see how large it is.

    `form_paths` take an HTML form's body (application/x-www-form-urlencoded)
    instead of JSON: a page's form cannot send JSON.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: Callable[[], Settings],
        form_paths: Collection[str] = frozenset(),
    ) -> None:
        self.app = app
        self._settings = settings
        self._form_paths = form_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if (declared is None and "transfer-encoding" not in headers) or declared == "0":
            await self.app(scope, receive, send)  # no body
            return
        try:
            body = await self._read(headers, receive, scope["path"] in self._form_paths)
        except _Refused as refused:
            response = problem_response(refused.status, refused.detail, headers=refused.headers)
            await response(scope, receive, send)
            return
        replayed = False

        async def receive_body_once() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # what comes after the body: a disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, receive_body_once, send)

    async def _read(self, headers: Headers, receive: Receive, form: bool) -> bytes:
        def readable(content_type: str | None) -> bool:
            if form and content_type is not None:
                return content_type.partition(";")[0].strip().lower() == _FORM_MEDIA_TYPE
            return is_json_media_type(content_type)

        limit = self._settings().max_body_bytes
        too_large = _Refused(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"The request body is larger than {limit} bytes (MAX_BODY_BYTES).",
        )
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        _refuse_content_codings(headers)
        if declared.isdigit() and not readable(headers.get("content-type")):
            raise _unsupported_media_type(headers)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Refused(HTTPStatus.BAD_REQUEST, "The client went away mid-body.")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and not readable(headers.get("content-type")):
            raise _unsupported_media_type(headers)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Refused(
                HTTPStatus.BAD_REQUEST,
                f"The request body is not UTF-8: byte {exc.start} cannot be read as UTF-8; "
                "send JSON as UTF-8 text.",
            ) from exc
        return body


def _refuse_content_codings(headers: Headers) -> None:
    # A coded body (gzip, say) would otherwise be read as its raw bytes: a
    # 400 "not UTF-8" for real gzip, and stored as sent when it was not.
    codings = [
        coding.strip().lower()
        for value in headers.getlist("content-encoding")
        for coding in value.split(",")
    ]
    if any(coding not in ("", "identity") for coding in codings):
        raise _Refused(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"The request body came with Content-Encoding "
            f"{', '.join(headers.getlist('content-encoding'))!r}; this server reads bodies "
            "only as sent, with no Content-Encoding.",
            headers={"Accept-Encoding": "identity"},
        )


def _unsupported_media_type(headers: Headers) -> _Refused:
    given = headers.get("content-type")
    sent = "no Content-Type" if given is None else f"Content-Type {given!r}"
    return _Refused(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        f"The request body must be JSON sent with Content-Type: application/json; it came "
        f"with {sent}.",
    )
