"""The per-server reader of the event log: a slow subscriber is dropped, never waited for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

import pytest

from src.api.event_hub import (
    Chunk,
    EventHub,
    EventStream,
    Page,
    Published,
    Resume,
    Subscription,
    chunks,
    published,
)
from src.domain.models.event import Event
from src.domain.models.session import utc_now
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session


@asynccontextmanager
async def stopped_after(hub: EventHub) -> AsyncIterator[EventHub]:
    """The hub, stopped when the block ends however it ends."""
    try:
        yield hub
    finally:
        await hub.stop()


async def test_a_subscriber_too_far_behind_is_dropped_while_others_get_everything(
    sqlite_repo: SessionRepository,
) -> None:
    async with stopped_after(EventHub(sqlite_repo, poll_seconds=0.05, queue_limit=5)) as hub:
        session = await sqlite_repo.create(new_session())
        created = (await sqlite_repo.event_bounds()).newest
        slow = await hub.stream(None, session_id=session.id)
        fast = await hub.stream(None, session_id=session.id)
        received: list[Event] = []
        for turn in range(1, 21):
            said = NewUtterance(turn_number=turn, speaker=Speaker.RESPONDENT, text="yes")
            await sqlite_repo.append_utterance(session.id, said)
            batch = await asyncio.wait_for(anext(fast), 5)
            assert isinstance(batch, Chunk)
            received.extend(message.event for message in batch.messages)

        # The slow one read nothing all along: it is told to resume after the id it
        # started after, and nothing else.
        assert await asyncio.wait_for(anext(slow), 5) == Resume(created)
        assert [event.data["utterance"]["turn_number"] for event in received] == list(range(1, 21))


async def test_a_stream_with_no_id_starts_after_the_newest_event(
    sqlite_repo: SessionRepository,
) -> None:
    async with stopped_after(EventHub(sqlite_repo, poll_seconds=0.05)) as hub:
        await sqlite_repo.create(new_session())
        stream = await hub.stream(None)
        later = await sqlite_repo.create(new_session())
        first = await asyncio.wait_for(anext(stream), 5)
        assert isinstance(first, Chunk)
        assert [message.event.session_id for message in first.messages] == [later.id]


async def test_a_dropped_stream_ends_with_the_id_to_resume_after() -> None:
    from sse_starlette.event import ensure_bytes

    from src.api.routes.events import RESUME_EVENT, _messages

    async def dropped() -> AsyncGenerator[Chunk | Resume]:
        yield Resume(7)

    stream = EventStream(Subscription(None, None, 1, 1), dropped())
    (last,) = [ensure_bytes(message, "\r\n") async for message in _messages(stream)]

    assert last == f'event: {RESUME_EVENT}\r\ndata: {{"resume_after": 7}}\r\n\r\n'.encode()


async def batches_of_a_busy_log(
    hub: EventHub, repo: SessionRepositoryProtocol
) -> tuple[list[int], float]:
    """The sizes of the batches a stream gets while 60 utterances are written 10 ms apart,
    and how long that took (s)."""
    session = await repo.create(new_session())
    stream = await hub.stream(None, session_id=session.id)
    batches: list[int] = []

    async def read() -> None:
        while sum(batches) < 60:
            batch = await anext(stream)
            assert isinstance(batch, Chunk)
            batches.append(len(batch.messages))

    reader = asyncio.create_task(read())
    began = asyncio.get_running_loop().time()
    for turn in range(1, 61):
        said = NewUtterance(turn_number=turn, speaker=Speaker.RESPONDENT, text="yes")
        await repo.append_utterance(session.id, said)
        await asyncio.sleep(0.01)
    await asyncio.wait_for(reader, 5)
    return batches, asyncio.get_running_loop().time() - began


async def test_a_busy_log_is_handed_out_in_few_large_batches(
    sqlite_repo: SessionRepository,
) -> None:
    async with stopped_after(EventHub(sqlite_repo, poll_seconds=0.05, hand_out_seconds=0.1)) as hub:
        batches, _ = await batches_of_a_busy_log(hub, sqlite_repo)

    # 60 writes over at least 0.6 s: at most one pass per 0.1 s, and the first at once.
    assert len(batches) <= 9, batches


@pytest.mark.parametrize("backend", ["postgres_backend"], indirect=True)
async def test_on_postgresql_a_busy_log_is_handed_out_at_the_watchs_slower_pace(
    repo: SessionRepositoryProtocol,
) -> None:
    # Its servers share the database: each pass they make reads the log and sends to every
    # stream, so while writes keep coming they hand out at most once per 0.15 s.
    async with stopped_after(EventHub(repo, poll_seconds=0.05)) as hub:
        batches, took = await batches_of_a_busy_log(hub, repo)

    assert len(batches) <= took / 0.15 + 2, (batches, took)


async def test_a_stream_catching_up_is_told_to_resume_when_retention_trims_past_it(
    sqlite_repo: SessionRepository,
) -> None:
    async with stopped_after(EventHub(sqlite_repo, poll_seconds=0.05)) as hub:
        session = await sqlite_repo.create(new_session())
        for turn in range(1, 1201):
            said = NewUtterance(turn_number=turn, speaker=Speaker.RESPONDENT, text="yes")
            await sqlite_repo.append_utterance(session.id, said)
        stream = await hub.stream(0)
        first = await asyncio.wait_for(anext(stream), 5)
        assert isinstance(first, Chunk)
        assert [m.event.id for m in first.messages] == list(range(1, 501))

        # Retention trims past what the client has, while it is still catching up.
        assert await sqlite_repo.trim_events(utc_now(), limit=800) == 800

        assert await asyncio.wait_for(anext(stream), 5) == Resume(500)


async def test_each_stream_gets_only_the_events_its_filters_match_from_a_busy_log(
    sqlite_repo: SessionRepository,
) -> None:
    async with stopped_after(EventHub(sqlite_repo, poll_seconds=0.05, hand_out_seconds=0.2)) as hub:
        first = await sqlite_repo.create(new_session(study_id="study-a"))
        second = await sqlite_repo.create(new_session(study_id="study-b"))
        streams = {
            "all": await hub.stream(None),
            "first": await hub.stream(None, session_id=first.id),
            "study-b": await hub.stream(None, study_id="study-b"),
            "none": await hub.stream(None, session_id=first.id, study_id="study-b"),
        }
        # Written faster than one pass, so each pass hands out a page of both sessions.
        for turn in range(1, 11):
            for session in (first, second):
                said = NewUtterance(turn_number=turn, speaker=Speaker.RESPONDENT, text="yes")
                await sqlite_repo.append_utterance(session.id, said)
        everything = await sqlite_repo.list_events(after=0)
        expected = {
            "all": [e.id for e in everything if e.type.value == "session.utterance_added"],
            "first": [e.id for e in everything if e.session_id == first.id][1:],
            "study-b": [e.id for e in everything if e.study_id == "study-b"][1:],
        }

        for name, wanted in expected.items():
            received: list[int] = []
            while len(received) < len(wanted):
                batch = await asyncio.wait_for(anext(streams[name]), 5)
                assert isinstance(batch, Chunk)
                received += [message.event.id for message in batch.messages]
            assert received == wanted, name
        with_nothing = asyncio.ensure_future(anext(streams["none"]))
        await asyncio.sleep(0.5)
        assert not with_nothing.done()
        with_nothing.cancel()


async def _append_large(repository: SessionRepository, session_id: str, turns: range) -> None:
    for turn in turns:
        said = NewUtterance(turn_number=turn, speaker=Speaker.RESPONDENT, text="x" * 20_000)
        await repository.append_utterance(session_id, said)


def _offer(subscription: Subscription, page: list[Published]) -> None:
    subscription.offer(Page.of(page))


async def test_a_backlog_is_sent_in_pieces_of_bounded_size_in_order(
    sqlite_repo: SessionRepository,
) -> None:
    async with stopped_after(EventHub(sqlite_repo, poll_seconds=0.05)) as hub:
        session = await sqlite_repo.create(new_session())
        await _append_large(sqlite_repo, session.id, range(1, 31))
        catching_up = await hub.stream(0)
        live = await hub.stream(None)
        await _append_large(sqlite_repo, session.id, range(31, 61))

        for stream, wanted in ((catching_up, 31), (live, 30)):
            sizes: list[int] = []
            ids: list[int] = []
            while len(ids) < wanted:
                batch = await asyncio.wait_for(anext(stream), 5)
                assert isinstance(batch, Chunk)
                sizes.append(len(batch.data))
                ids += [message.event.id for message in batch.messages]
            # Each event is some 20 KB: never more than 256 KiB and one event in a piece.
            assert len(sizes) > 2 and max(sizes) <= 256 * 1024 + 21_000, sizes
            assert ids == list(range(ids[0], ids[0] + wanted))


async def test_one_large_page_is_taken_by_a_subscriber_that_keeps_up(
    sqlite_repo: SessionRepository,
) -> None:
    session = await sqlite_repo.create(new_session())
    await _append_large(sqlite_repo, session.id, range(1, 31))
    page = [published(event) for event in await sqlite_repo.list_events(after=0)]
    subscription = Subscription(None, None, 2000, 100_000)

    # Some 600 KB at once to an empty queue: taken whole.
    _offer(subscription, page[:30])
    taken = await subscription.next()
    assert taken is not None
    assert [message for chunk in taken for message in chunk.messages] == page[:30]
    # More while some still wait, past the bytes limit: dropped.
    _offer(subscription, page[:10])
    _offer(subscription, page[10:20])
    assert subscription.dropped
    assert await subscription.next() is None


async def test_a_subscriber_with_too_many_bytes_waiting_is_dropped(
    sqlite_repo: SessionRepository,
) -> None:
    async with stopped_after(
        EventHub(sqlite_repo, poll_seconds=0.05, queue_limit_bytes=200_000)
    ) as hub:
        session = await sqlite_repo.create(new_session())
        stream = await hub.stream(None)
        await _append_large(sqlite_repo, session.id, range(1, 2))
        first = await asyncio.wait_for(anext(stream), 5)
        assert isinstance(first, Chunk)
        # Far fewer than 2,000 events, but some 300 KB of them, come in several passes
        # and wait unread.
        for turn in range(2, 17):
            await _append_large(sqlite_repo, session.id, range(turn, turn + 1))
            await asyncio.sleep(0.05)

        assert await asyncio.wait_for(anext(stream), 5) == Resume(first.last_id)


async def test_a_chunk_gives_only_what_comes_after_an_id(sqlite_repo: SessionRepository) -> None:
    session = await sqlite_repo.create(new_session())
    await _append_large(sqlite_repo, session.id, range(1, 5))
    page = [published(event) for event in await sqlite_repo.list_events(after=0)]
    (chunk,) = chunks(page)
    ids = [message.event.id for message in page]

    assert chunk.after(ids[0] - 1) is chunk
    assert chunk.after(ids[-1]) is None
    rest = chunk.after(ids[1])
    assert rest is not None
    assert [message.event.id for message in rest.messages] == ids[2:]
    assert rest.data == b"".join(message.message for message in page[2:])


async def test_what_waited_over_several_passes_goes_out_in_one_piece(
    sqlite_repo: SessionRepository,
) -> None:
    async with stopped_after(
        EventHub(sqlite_repo, poll_seconds=0.05, hand_out_seconds=0.01)
    ) as hub:
        session = await sqlite_repo.create(new_session())
        stream = await hub.stream(None)
        for turn in range(1, 11):
            said = NewUtterance(turn_number=turn, speaker=Speaker.RESPONDENT, text="yes")
            await sqlite_repo.append_utterance(session.id, said)
            await asyncio.sleep(0.03)  # a pass between each two

        first = await asyncio.wait_for(anext(stream), 5)
        assert isinstance(first, Chunk)
        received = [message.event.id for message in first.messages]
        while len(received) < 10:
            more = await asyncio.wait_for(anext(stream), 5)
            assert isinstance(more, Chunk)
            received += [message.event.id for message in more.messages]
        # The stream was not read until all were written: one piece, in order.
        assert len(first.messages) == 10
        assert first.data == b"".join(message.message for message in first.messages)
        assert received == sorted(received)


async def test_streams_catching_up_read_older_events_a_few_at_a_time(
    sqlite_repo: SessionRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each page read and encoded holds the event loop: a thousand streams catching up at
    # once would hold it for all of theirs before any other request's turn.
    session = await sqlite_repo.create(new_session())
    for turn in range(1, 1201):
        said = NewUtterance(turn_number=turn, speaker=Speaker.RESPONDENT, text="yes")
        await sqlite_repo.append_utterance(session.id, said)
    newest = (await sqlite_repo.event_bounds()).newest
    pages = 0
    list_events = sqlite_repo.list_events

    async def counted(**kwargs: object) -> list[Event]:
        nonlocal pages
        pages += 1
        return await list_events(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_repo, "list_events", counted)
    between_turns: list[int] = []
    finished = asyncio.Event()

    async def another_request() -> None:
        seen = pages
        while not finished.is_set():
            await asyncio.sleep(0)
            between_turns.append(pages - seen)
            seen = pages

    async with stopped_after(EventHub(sqlite_repo, poll_seconds=0.05)) as hub:

        async def caught_up() -> int:
            stream = await hub.stream(0)
            seen = 0
            while seen < newest:
                batch = await asyncio.wait_for(anext(stream), 30)
                assert isinstance(batch, Chunk)
                seen = batch.last_id
            await stream.aclose()
            return seen

        other = asyncio.ensure_future(another_request())
        assert await asyncio.gather(*(caught_up() for _ in range(20))) == [newest] * 20
        finished.set()
        await other
    # 20 streams of 3 pages each; a few pages between two turns of anything else, never
    # a page of every stream.
    assert pages >= 60
    assert max(between_turns) <= 4, between_turns
