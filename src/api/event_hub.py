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
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import NamedTuple

import structlog

from src.core.errors import EventsTrimmedError, StorageError
from src.domain.models.event import Event
from src.persistence.repositories.protocol import EventWatch, SessionRepositoryProtocol

__all__ = ["EventHub", "Published", "Subscription"]

_log = structlog.get_logger(__name__)
_PAGE = 500


class Published(NamedTuple):
    """An event and its Server-Sent Events message (`id:` its id, `event:` its type,
    `data:` the event as JSON), encoded once however many subscribers it goes to."""

    event: Event
    message: bytes


def published(event: Event) -> Published:
    # The JSON holds no line break (it escapes them), so it is one `data:` line.
    text = f"id: {event.id}\r\nevent: {event.type.value}\r\ndata: {event.model_dump_json()}\r\n\r\n"
    return Published(event, text.encode())


class Subscription:
    """What one client is sent: the events that match its filters, in id order."""

    def __init__(self, session_id: str | None, study_id: str | None, limit: int) -> None:
        self.session_id = session_id
        self.study_id = study_id
        self.dropped = False
        self._limit = limit
        self._pending: deque[Published] = deque()
        self._ready = asyncio.Event()

    def matches(self, event: Event) -> bool:
        return (self.session_id is None or event.session_id == self.session_id) and (
            self.study_id is None or event.study_id == self.study_id
        )

    def offer(self, events: list[Published]) -> None:
        """Queue those of `events` (in id order) that match, or drop the subscription if
        it is too far behind."""
        if self.dropped:
            return
        if self.session_id is not None or self.study_id is not None:
            events = [published for published in events if self.matches(published.event)]
            if not events:
                return
        if len(self._pending) + len(events) > self._limit:
            self.dropped = True
            self._pending.clear()
        else:
            self._pending.extend(events)
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
        return queued


class EventHub:
    """Started on first use; `stop()` ends the reader and its watch."""

    def __init__(
        self,
        repository: SessionRepositoryProtocol,
        *,
        poll_seconds: float = 1.0,
        queue_limit: int = 2000,
        hand_out_seconds: float = 0.025,
    ) -> None:
        self._repository = repository
        self._poll_seconds = poll_seconds
        self._hand_out_seconds = hand_out_seconds
        self._queue_limit = queue_limit
        self._subscriptions: set[Subscription] = set()
        self._position = 0
        self._reader: asyncio.Task[None] | None = None
        self._watch: EventWatch | None = None
        self._starting = asyncio.Lock()

    async def stream(
        self, after: int | None, *, session_id: str | None = None, study_id: str | None = None
    ) -> AsyncIterator[list[Published] | None]:
        """The events after the id `after` (None: after the newest), then each new one as it
        is written, in batches (what was queued while the client was busy); a final None if
        the client fell too far behind.

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
        subscription = Subscription(session_id, study_id, self._queue_limit)
        # No await between these two: the queue gets every event after `handed_out`,
        # and the log is read for the ones up to it.
        self._subscriptions.add(subscription)
        handed_out = self._position
        return self._events(subscription, after, handed_out)

    async def _events(
        self, subscription: Subscription, after: int, handed_out: int
    ) -> AsyncIterator[list[Published] | None]:
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
                    yield None
                    return
                batch = [published(event) for event in page if event.id <= handed_out]
                if batch:
                    yield batch
                    last = batch[-1].event.id
                if len(page) < _PAGE or page[-1].id > handed_out:
                    break
            while True:
                live = await subscription.next()
                if live is None:
                    yield None
                    return
                # In id order: only a stream still catching up when these were queued
                # has some of them already.
                fresh = (
                    live
                    if live[0].event.id > last
                    else [message for message in live if message.event.id > last]
                )
                if fresh:
                    yield fresh
                    last = fresh[-1].event.id
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
