"""GET /events: the event log as Server-Sent Events (CONTRACT §9)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import aclosing, suppress
from typing import Annotated, cast

import structlog
from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Message, Receive, Scope, Send

from src.api.errors import problem_responses
from src.api.event_hub import EventHub, EventStream, Resume
from src.api.http_protocol import ABORT_EXTENSION
from src.core.errors import InvalidEventIdError
from src.domain.models.session import SessionId, StudyId

__all__ = ["RESUME_EVENT", "router"]

_log = structlog.get_logger(__name__)

router = APIRouter(tags=["events"], responses=problem_responses(401, 503))

RESUME_EVENT = "stream.resume"
"""The last event of a stream whose client fell too far behind: reconnect with the
`Last-Event-ID` it received (a browser's EventSource does so by itself)."""

_PARAMETERS = frozenset({"study_id", "session_id", "after"})
# Any whole number: one past the newest id (or past any id there can be) is a 410, as the
# README says, not a 400.
_EVENT_ID = re.compile(r"[0-9]+")
_PAST_ANY_ID = 2**63


def _event_id(text: str) -> int:
    digits = text.strip()
    if not _EVENT_ID.fullmatch(digits):
        raise InvalidEventIdError()
    # Leading zeros change nothing; past 19 digits no id is that large (nor need the
    # number be read: int() refuses text of thousands of digits).
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 19 else _PAST_ANY_ID


def _check_parameters(request: Request) -> None:
    unknown = [name for name in request.query_params if name not in _PARAMETERS]
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": "unknown query parameter",
                    "type": "extra_forbidden",
                }
                for name in unknown
            ]
        )


class _Stalled(Exception):
    """A stream that fell behind waited too long on a client that reads nothing."""


class _EventStream(EventSourceResponse):
    """sse-starlette's response, sending without a cancel scope around each send (with
    hundreds of streams, that scope was a sixth of what handing out an event cost), and
    closing a stream that fell behind once its client has read nothing for `stall_seconds`:
    such a client cannot even read the Resume, and would keep its connection forever."""

    def __init__(self, stream: EventStream, *, stall_seconds: float, ping: float) -> None:
        super().__init__(
            _messages(stream),
            ping=ping,
            headers={"Cache-Control": "no-store"},
            data_sender_callable=self._close_when_stalled,
        )
        self._stream = stream
        self._stall_seconds = stall_seconds
        self._sending_since: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        finished = False

        async def sending(message: Message) -> None:
            nonlocal finished
            finished = message["type"] == "http.response.body" and not message.get("more_body")
            self._sending_since = time.monotonic()
            try:
                await send(message)
            finally:
                self._sending_since = None

        try:
            await super().__call__(scope, receive, sending)
        except _Stalled:
            _log.info("event_stream_closed", reason="the client read nothing after falling behind")
            abort = scope.get("extensions", {}).get(ABORT_EXTENSION)
            if abort is not None:
                abort["abort"]()
            return
        if not finished:
            # The server is stopping: the stream was cut short, and ends as an answer that
            # is complete, not as one the app left unfinished (which the server logs as an
            # error). A client that reads nothing cannot hold this up.
            with suppress(TimeoutError):
                async with asyncio.timeout(1):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        await send(message)

    async def _close_when_stalled(self) -> None:
        while True:
            await asyncio.sleep(self._stall_seconds / 2)
            since = self._sending_since
            if (
                self._stream.fallen_behind
                and since is not None
                and time.monotonic() - since > self._stall_seconds
            ):
                raise _Stalled


async def _messages(stream: EventStream) -> AsyncIterator[ServerSentEvent | bytes]:
    # Closed with the response, so that its subscription leaves the hub at once.
    async with aclosing(stream):
        async for batch in stream:
            if isinstance(batch, Resume):
                yield ServerSentEvent(json.dumps({"resume_after": batch.after}), event=RESUME_EVENT)
            else:
                # Joined once in the hub, however many streams send it.
                yield batch.data


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "A stream of `id:`, `event:` (the type) and `data:` (the event as"
            " JSON) messages, and heartbeat comments while idle.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **problem_responses(400, 410, 422),
    },
)
async def events(
    request: Request,
    study_id: StudyId | None = None,
    session_id: SessionId | None = None,
    after: Annotated[
        str | None,
        Query(
            description="Resume after this event id (`Last-Event-ID` wins); not a number: 400.",
            json_schema_extra={"pattern": _EVENT_ID.pattern},
        ),
    ] = None,
    last_event_id: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> EventSourceResponse:
    """Every event written from now on (or after `Last-Event-ID` / `after`), of one study or
    session if asked; 410 when the events after that id are no longer kept."""
    _check_parameters(request)
    resume = last_event_id if last_event_id is not None else after
    hub = cast(EventHub, request.state.events)
    stream = await hub.stream(
        None if resume is None else _event_id(resume), session_id=session_id, study_id=study_id
    )
    return _EventStream(
        stream,
        stall_seconds=cast(float, request.state.event_stall_seconds),
        ping=cast(float, request.state.event_heartbeat_seconds),
    )
