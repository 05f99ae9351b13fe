"""GET /events: the event log as Server-Sent Events (CONTRACT §9)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Message, Send

from src.api.errors import problem_responses
from src.api.event_hub import EventHub, Published
from src.core.errors import InvalidEventIdError
from src.domain.models.session import SessionId, StudyId

__all__ = ["RESUME_EVENT", "router"]

router = APIRouter(tags=["events"], responses=problem_responses(401, 503))

RESUME_EVENT = "stream.resume"
"""The last event of a stream whose client fell too far behind: reconnect with the
`Last-Event-ID` it received (a browser's EventSource does so by itself)."""

_PARAMETERS = frozenset({"study_id", "session_id", "after"})
_EVENT_ID = re.compile(r"[0-9]{1,18}")


def _event_id(text: str) -> int:
    if not _EVENT_ID.fullmatch(text.strip()):
        raise InvalidEventIdError()
    return int(text)


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


class _EventStream(EventSourceResponse):
    """sse-starlette's response without a cancel scope around each send when no
    send timeout is set: with hundreds of streams, that scope was a sixth of
    what handing out an event cost."""

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        if self.send_timeout is None:
            await send(message)
        else:
            await super()._send_with_timeout(send, message)


def _messages(batch: list[Published] | None, last: int | None) -> ServerSentEvent | bytes:
    if batch is None:
        return ServerSentEvent(json.dumps({"resume_after": last}), event=RESUME_EVENT)
    # One write for the batch: a busy stream sends fewer, larger chunks.
    return b"".join([published.message for published in batch])


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

    async def messages() -> AsyncIterator[ServerSentEvent | bytes]:
        last = None if resume is None else int(resume)
        async for batch in stream:
            yield _messages(batch, last)
            if batch is not None:
                last = batch[-1].event.id

    heartbeat = cast(float, request.state.event_heartbeat_seconds)
    return _EventStream(messages(), ping=heartbeat, headers={"Cache-Control": "no-store"})
