"""One reader of the event log per server, fanning new events out to its subscribers.

The log is the truth and a wake-up only a hint (STYLE 19): the reader waits
for the backend's hint (NOTIFY on PostgreSQL, a changed data_version on
SQLite) or for its poll interval, whichever comes first, then reads every
event after the last id it handed out. Each subscriber has a bounded queue:
handing out never waits for a subscriber, so a slow one never slows the
reader, nor any writer; one whose queue is full is dropped, and told to
resume from the last id it received.

While writes keep coming, the reader hands out at most once per
`hand_out_seconds` (by default the watch's pace: longer on PostgreSQL, whose
servers share the database): each pass wakes every subscriber and costs a send
on each stream, so with hundreds of streams, fewer and larger passes leave the
server's time to the writers. The first event after a quiet spell goes out at
once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import suppress
from typing import NamedTuple, TypeVar

import structlog

from src.core.errors import EventsTrimmedError, StorageError
from src.domain.models.event import Event
from src.persistence.repositories.protocol import EventWatch, SessionRepositoryProtocol

__all__ = [
    "Chunk",
    "EventHub",
    "EventStream",
    "Page",
    "Published",
    "Resume",
    "Subscription",
    "chunks",
    "published",
]

T = TypeVar("T")

_log = structlog.get_logger(__name__)
_PAGE = 500
_CATCHING_UP = 2
"""Streams reading and encoding a page of older events in a pass of the event loop: each
page takes it a few milliseconds, and a thousand streams catching up at once would keep
every other request waiting for all of theirs."""
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


class Chunk:
    """Consecutive messages and their bytes, joined once for every stream they go to."""

    __slots__ = ("data", "messages")

    def __init__(self, messages: list[Published]) -> None:
        self.messages = messages
        self.data = b"".join([published.message for published in messages])

    @property
    def first_id(self) -> int:
        return self.messages[0].event.id

    @property
    def last_id(self) -> int:
        return self.messages[-1].event.id

    @classmethod
    def joined(cls, parts: list[Chunk]) -> Chunk:
        """The chunks as one (one send for what waited), their bytes copied once."""
        if len(parts) == 1:
            return parts[0]
        chunk = cls.__new__(cls)
        chunk.messages = [published for part in parts for published in part.messages]
        chunk.data = b"".join([part.data for part in parts])
        return chunk

    def after(self, last: int) -> Chunk | None:
        """The part of the chunk after the id `last` (None: nothing)."""
        if self.first_id > last:
            return self
        if self.last_id <= last:
            return None
        return Chunk([published for published in self.messages if published.event.id > last])


def _runs(items: list[T], size: Callable[[T], int]) -> list[list[T]]:
    """Consecutive items together while they hold at most _CHUNK_BYTES (or one item)."""
    runs: list[list[T]] = []
    held = 0
    for item in items:
        if runs and held + size(item) <= _CHUNK_BYTES:
            runs[-1].append(item)
            held += size(item)
        else:
            runs.append([item])
            held = size(item)
    return runs


def chunks(messages: list[Published]) -> list[Chunk]:
    """`messages` in order, in chunks of at most _CHUNK_BYTES (or one message)."""
    return [Chunk(run) for run in _runs(messages, lambda published: len(published.message))]


class Page(NamedTuple):
    """A pass's events for one or more streams: their messages, and those in chunks."""

    messages: list[Published]
    chunks: list[Chunk]
    size: int

    @classmethod
    def of(cls, messages: list[Published]) -> Page:
        pieces = chunks(messages)
        return cls(messages, pieces, sum(len(chunk.data) for chunk in pieces))


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
        self._pending: list[Chunk] = []
        self._pending_events = 0
        self._pending_bytes = 0
        self._ready = asyncio.Event()

    @property
    def filtered(self) -> bool:
        return self.session_id is not None or self.study_id is not None

    def matches(self, event: Event) -> bool:
        return (self.session_id is None or event.session_id == self.session_id) and (
            self.study_id is None or event.study_id == self.study_id
        )

    def offer(self, page: Page) -> None:
        """Queue the page's events that match (all of it, chunked as it is, when the
        subscription has no filter), or drop the subscription if it is too far behind:
        more events, or more bytes of them, than its limits."""
        if self.dropped:
            return
        if self.filtered:
            matching = [published for published in page.messages if self.matches(published.event)]
            if not matching:
                return
            page = Page.of(matching)
        # Bytes count only once events already wait: one large page to a client that
        # keeps up is no reason to drop it.
        if self._pending_events + len(page.messages) > self._limit or (
            self._pending and self._pending_bytes + page.size > self._limit_bytes
        ):
            self.dropped = True
            self._pending = []
            self._pending_events = self._pending_bytes = 0
        else:
            self._pending += page.chunks
            self._pending_events += len(page.messages)
            self._pending_bytes += page.size
        self._ready.set()

    async def next(self) -> list[Chunk] | None:
        """The chunks queued since the last call (at least one); None once dropped."""
        while not self._pending:
            if self.dropped:
                return None
            self._ready.clear()
            await self._ready.wait()
        queued, self._pending = self._pending, []
        self._pending_events = self._pending_bytes = 0
        return queued


class EventStream:
    """One client's events: chunks of messages in id order, then a Resume if it fell
    too far behind (or retention trimmed past it while it caught up)."""

    def __init__(self, subscription: Subscription, events: AsyncGenerator[Chunk | Resume]) -> None:
        self._subscription = subscription
        self._events = events

    @property
    def fallen_behind(self) -> bool:
        """Whether the stream was dropped for falling behind: it ends with a Resume."""
        return self._subscription.dropped

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Chunk | Resume:
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
        hand_out_seconds: float | None = None,
    ) -> None:
        self._repository = repository
        self._poll_seconds = poll_seconds
        self._hand_out_seconds = hand_out_seconds
        self._queue_limit = queue_limit
        self._queue_limit_bytes = queue_limit_bytes
        self._subscriptions: set[Subscription] = set()
        self._catching_up = asyncio.Semaphore(_CATCHING_UP)
        self._position = 0
        self._reader: asyncio.Task[None] | None = None
        self._watch: EventWatch | None = None
        self._starting = asyncio.Lock()

    async def stream(
        self, after: int | None, *, session_id: str | None = None, study_id: str | None = None
    ) -> EventStream:
        """The events after the id `after` (None: after the newest), then each new one as it
        is written, in chunks (what was queued while the client was busy); a final Resume
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
    ) -> AsyncGenerator[Chunk | Resume]:
        last = after
        try:
            while last < handed_out:
                async with self._catching_up:
                    page = await self._repository.list_events(
                        after=last,
                        session_id=subscription.session_id,
                        study_id=subscription.study_id,
                        limit=_PAGE,
                    )
                    # Retention may have trimmed past `last` while the client caught up: the
                    # page then lacks events it never had. It is told to resume, and hears
                    # why (410).
                    trimmed = (await self._repository.event_bounds()).trimmed_through > last
                    pieces = (
                        []
                        if trimmed
                        else chunks([published(event) for event in page if event.id <= handed_out])
                    )
                    # A read by key may not have waited at all: the turn is held across a
                    # pass of the loop, so that the other streams catching up wait for it
                    # on the semaphore, not among the requests the loop runs.
                    await asyncio.sleep(0)
                if trimmed:
                    yield Resume(last)
                    return
                for chunk in pieces:
                    yield chunk
                    last = chunk.last_id
                if len(page) < _PAGE or page[-1].id > handed_out:
                    break
            while True:
                live = await subscription.next()
                if live is None:
                    yield Resume(last)
                    return
                # In id order: only a stream still catching up when these were queued
                # has some of them already.
                fresh = [
                    chunk for chunk in (queued.after(last) for queued in live) if chunk is not None
                ]
                for run in _runs(fresh, lambda chunk: len(chunk.data)):
                    yield Chunk.joined(run)
                    last = run[-1].last_id
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
            pace = self._hand_out_seconds
            await asyncio.sleep(self._watch.pace_seconds if pace is None else pace)

    async def _hand_out(self) -> None:
        while True:
            page = await self._repository.list_events(after=self._position, limit=_PAGE)
            if page:
                # Encoded, chunked and joined once: a pass costs each stream that takes
                # every event an offer and a send, however many events the page holds.
                shared = Page.of([published(event) for event in page])
                for subscription in tuple(self._subscriptions):
                    subscription.offer(shared)
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
