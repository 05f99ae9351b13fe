"""One reader of the event log per server, fanning new events out to its subscribers.

The log is the truth and a wake-up only a hint (STYLE 19): the reader waits
for the backend's hint (NOTIFY on PostgreSQL, a changed data_version on
SQLite) or for its poll interval, whichever comes first, then reads every
event after the last id it handed out. Each subscriber has a bounded queue:
handing out never waits for a subscriber, so a slow one never slows the
reader, nor any writer; one whose queue is full is dropped, and told to
resume from the last id it received.

While writes keep coming, the reader hands out at most once per
`hand_out_seconds`: each pass wakes every subscriber and costs a send on each
stream, so with hundreds of streams, fewer and larger passes leave the server's
time to the writers. The first event after a quiet spell goes out at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Iterator
from contextlib import suppress
from typing import NamedTuple

import structlog

from src.core.errors import EventsTrimmedError, StorageError
from src.domain.models.event import Event
from src.persistence.repositories.protocol import EventWatch, SessionRepositoryProtocol

__all__ = ["EventHub", "EventStream", "Published", "Resume", "Subscription", "published"]

_log = structlog.get_logger(__name__)
_PAGE = 500
_CHUNK_BYTES = 256 * 1024
"""At most this much of a backlog goes into one send (one message more if it alone is larger):
a stream that fell behind is caught up in pieces, never copied whole."""


class Published(NamedTuple):
    """An event and its Server-Sent Events message (`id:` its id, `event:` its type,
    `data:` the event as JSON), encoded once however many subscribers it goes to."""

    event: Event
    message: bytes


class Resume(NamedTuple):
    """The end of a stream that fell too far behind: reconnect after the id `after`."""

    after: int


def published(event: Event) -> Published:
    # The JSON holds no line break (it escapes them), so it is one `data:` line.
    text = f"id: {event.id}\r\nevent: {event.type.value}\r\ndata: {event.model_dump_json()}\r\n\r\n"
    return Published(event, text.encode())


class Subscription:
    """What one client is sent: the events that match its filters, in id order."""

    def __init__(
        self, session_id: str | None, study_id: str | None, limit: int, limit_bytes: int
    ) -> None:
        self.session_id = session_id
        self.study_id = study_id
        self.dropped = False
        self._limit = limit
        self._limit_bytes = limit_bytes
        self._pending: deque[Published] = deque()
        self._pending_bytes = 0
        self._ready = asyncio.Event()

    def matches(self, event: Event) -> bool:
        return (self.session_id is None or event.session_id == self.session_id) and (
            self.study_id is None or event.study_id == self.study_id
        )

    def offer(self, events: list[Published]) -> None:
        """Queue those of `events` (in id order) that match, or drop the subscription if
        it is too far behind: more events, or more bytes of them, than its limits."""
        if self.dropped:
            return
        if self.session_id is not None or self.study_id is not None:
            events = [published for published in events if self.matches(published.event)]
            if not events:
                return
        size = sum(len(published.message) for published in events)
        # Bytes count only once events already wait: one large page to a client that
        # keeps up is no reason to drop it.
        if len(self._pending) + len(events) > self._limit or (
            self._pending and self._pending_bytes + size > self._limit_bytes
        ):
            self.dropped = True
            self._pending.clear()
            self._pending_bytes = 0
        else:
            self._pending.extend(events)
            self._pending_bytes += size
        self._ready.set()

    async def next(self) -> list[Published] | None:
        """The events queued since the last call (at least one); None once dropped."""
        while not self._pending:
            if self.dropped:
                return None
            self._ready.clear()
            await self._ready.wait()
        queued = list(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        return queued


def _pieces(messages: list[Published]) -> Iterator[list[Published]]:
    """`messages` in order, in runs of at most _CHUNK_BYTES (or one message)."""
    start, size = 0, 0
    for index, message in enumerate(messages):
        if size and size + len(message.message) > _CHUNK_BYTES:
            yield messages[start:index]
            start, size = index, 0
        size += len(message.message)
    if start < len(messages):
        yield messages[start:] if start else messages


class EventStream:
    """One client's events: batches of messages in id order, then a Resume if it fell
    too far behind (or retention trimmed past it while it caught up)."""

    def __init__(
        self, subscription: Subscription, events: AsyncGenerator[list[Published] | Resume]
    ) -> None:
        self._subscription = subscription
        self._events = events

    @property
    def fallen_behind(self) -> bool:
        """Whether the stream was dropped for falling behind: it ends with a Resume."""
        return self._subscription.dropped

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> list[Published] | Resume:
        return await anext(self._events)

    async def aclose(self) -> None:
        await self._events.aclose()


class EventHub:
    """Started on first use; `stop()` ends the reader and its watch."""

    def __init__(
        self,
        repository: SessionRepositoryProtocol,
        *,
        poll_seconds: float = 1.0,
        queue_limit: int = 2000,
        queue_limit_bytes: int = 8 * 1024 * 1024,
        hand_out_seconds: float = 0.025,
    ) -> None:
        self._repository = repository
        self._poll_seconds = poll_seconds
        self._hand_out_seconds = hand_out_seconds
        self._queue_limit = queue_limit
        self._queue_limit_bytes = queue_limit_bytes
        self._subscriptions: set[Subscription] = set()
        self._position = 0
        self._reader: asyncio.Task[None] | None = None
        self._watch: EventWatch | None = None
        self._starting = asyncio.Lock()

    async def stream(
        self, after: int | None, *, session_id: str | None = None, study_id: str | None = None
    ) -> EventStream:
        """The events after the id `after` (None: after the newest), then each new one as it
        is written, in batches (what was queued while the client was busy); a final Resume
        if the client fell too far behind.

        Raises (before the first event):
            EventsTrimmedError: events after `after` are no longer kept, or `after` is past
                the newest event.
        """
        await self._started()
        bounds = await self._repository.event_bounds()
        if after is None:
            after = bounds.newest
        elif after < bounds.trimmed_through or after > bounds.newest:
            # Past the newest, the id came from an older copy of the log: the ids after it
            # now name other events, which the client has not seen.
            raise EventsTrimmedError(after, bounds.trimmed_through, bounds.newest)
        subscription = Subscription(
            session_id, study_id, self._queue_limit, self._queue_limit_bytes
        )
        # No await between these two: the queue gets every event after `handed_out`,
        # and the log is read for the ones up to it.
        self._subscriptions.add(subscription)
        handed_out = self._position
        return EventStream(subscription, self._events(subscription, after, handed_out))

    async def _events(
        self, subscription: Subscription, after: int, handed_out: int
    ) -> AsyncGenerator[list[Published] | Resume]:
        last = after
        try:
            while last < handed_out:
                page = await self._repository.list_events(
                    after=last,
                    session_id=subscription.session_id,
                    study_id=subscription.study_id,
                    limit=_PAGE,
                )
                # Retention may have trimmed past `last` while the client caught up: the page
                # then lacks events it never had. It is told to resume, and hears why (410).
                if (await self._repository.event_bounds()).trimmed_through > last:
                    yield Resume(last)
                    return
                for batch in _pieces(
                    [published(event) for event in page if event.id <= handed_out]
                ):
                    yield batch
                    last = batch[-1].event.id
                if len(page) < _PAGE or page[-1].id > handed_out:
                    break
            while True:
                live = await subscription.next()
                if live is None:
                    yield Resume(last)
                    return
                # In id order: only a stream still catching up when these were queued
                # has some of them already.
                fresh = (
                    live
                    if live[0].event.id > last
                    else [message for message in live if message.event.id > last]
                )
                for batch in _pieces(fresh):
                    yield batch
                    last = batch[-1].event.id
        finally:
            self._subscriptions.discard(subscription)

    async def _started(self) -> None:
        if self._reader is not None:
            return
        async with self._starting:
            if self._reader is not None:
                return
            self._position = (await self._repository.event_bounds()).newest
            self._watch = await self._repository.watch_events()
            self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._watch is not None
        while True:
            await self._watch.wait(self._poll_seconds)
            # Whatever fails, the reader goes on at the next wake: a reader that
            # ended would leave every stream on this server silent until a restart.
            try:
                await self._hand_out()
            except StorageError as exc:
                _log.warning("event_log_unreadable", error=exc.detail)
            except Exception as exc:
                _log.error("event_log_unreadable", error=str(exc) or repr(exc), exc_info=exc)
            await asyncio.sleep(self._hand_out_seconds)

    async def _hand_out(self) -> None:
        while True:
            page = await self._repository.list_events(after=self._position, limit=_PAGE)
            if page:
                # One offer a subscription a page: the cost of a pass grows with the
                # subscriptions, not with subscriptions times events.
                messages = [published(event) for event in page]
                for subscription in tuple(self._subscriptions):
                    subscription.offer(messages)
                self._position = page[-1].id
            if len(page) < _PAGE:
                return

    async def stop(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with suppress(asyncio.CancelledError):
                await reader
        watch, self._watch = self._watch, None
        if watch is not None:
            await watch.close()
