"""The per-server reader of the event log: a slow subscriber is dropped, never waited for."""

from __future__ import annotations

import asyncio

from src.api.event_hub import EventHub
from src.domain.models.event import Event
from src.domain.models.session import utc_now
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session


async def test_a_subscriber_too_far_behind_is_dropped_while_others_get_everything(
    sqlite_repo: SessionRepository,
) -> None:
    hub = EventHub(sqlite_repo, poll_seconds=0.05, queue_limit=5)
    try:
        session = await sqlite_repo.create(new_session())
        slow = await hub.stream(None, session_id=session.id)
        fast = await hub.stream(None, session_id=session.id)
        received: list[Event] = []
        for turn in range(1, 21):
            said = NewUtterance(turn_number=turn, speaker=Speaker.RESPONDENT, text="yes")
            await sqlite_repo.append_utterance(session.id, said)
            batch = await asyncio.wait_for(anext(fast), 5)
            assert batch is not None
            received.extend(message.event for message in batch)

        # The slow one read nothing all along: it is told to resume, and nothing else.
        assert await asyncio.wait_for(anext(slow), 5) is None
        assert [event.data["utterance"]["turn_number"] for event in received] == list(range(1, 21))
    finally:
        await hub.stop()


async def test_a_stream_with_no_id_starts_after_the_newest_event(
    sqlite_repo: SessionRepository,
) -> None:
    hub = EventHub(sqlite_repo, poll_seconds=0.05)
    try:
        await sqlite_repo.create(new_session())
        stream = await hub.stream(None)
        later = await sqlite_repo.create(new_session())
        first = await asyncio.wait_for(anext(stream), 5)
        assert first is not None
        assert [message.event.session_id for message in first] == [later.id]
    finally:
        await hub.stop()


def test_a_dropped_stream_ends_with_the_id_to_resume_after() -> None:
    from sse_starlette.event import ensure_bytes

    from src.api.routes.events import RESUME_EVENT, _messages

    last = ensure_bytes(_messages(None, 7), "\r\n")

    assert last == f'event: {RESUME_EVENT}\r\ndata: {{"resume_after": 7}}\r\n\r\n'.encode()


async def test_a_busy_log_is_handed_out_in_few_large_batches(
    sqlite_repo: SessionRepository,
) -> None:
    hub = EventHub(sqlite_repo, poll_seconds=0.05, hand_out_seconds=0.1)
    try:
        session = await sqlite_repo.create(new_session())
        stream = await hub.stream(None, session_id=session.id)
        batches: list[int] = []

        async def read() -> None:
            while sum(batches) < 60:
                batch = await anext(stream)
                assert batch is not None
                batches.append(len(batch))

        reader = asyncio.create_task(read())
        for turn in range(1, 61):
            said = NewUtterance(turn_number=turn, speaker=Speaker.RESPONDENT, text="yes")
            await sqlite_repo.append_utterance(session.id, said)
            await asyncio.sleep(0.01)
        await asyncio.wait_for(reader, 5)

        # 60 writes over at least 0.6 s: at most one pass per 0.1 s, and the first at once.
        assert len(batches) <= 9, batches
    finally:
        await hub.stop()


async def test_a_stream_catching_up_is_told_to_resume_when_retention_trims_past_it(
    sqlite_repo: SessionRepository,
) -> None:
    hub = EventHub(sqlite_repo, poll_seconds=0.05)
    try:
        session = await sqlite_repo.create(new_session())
        for turn in range(1, 1201):
            said = NewUtterance(turn_number=turn, speaker=Speaker.RESPONDENT, text="yes")
            await sqlite_repo.append_utterance(session.id, said)
        stream = await hub.stream(0)
        first = await asyncio.wait_for(anext(stream), 5)
        assert first is not None
        assert [m.event.id for m in first] == list(range(1, 501))

        # Retention trims past what the client has, while it is still catching up.
        assert await sqlite_repo.trim_events(utc_now(), limit=800) == 800

        assert await asyncio.wait_for(anext(stream), 5) is None
    finally:
        await hub.stop()


async def test_each_stream_gets_only_the_events_its_filters_match_from_a_busy_log(
    sqlite_repo: SessionRepository,
) -> None:
    hub = EventHub(sqlite_repo, poll_seconds=0.05, hand_out_seconds=0.2)
    try:
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
                assert batch is not None
                received += [message.event.id for message in batch]
            assert received == wanted, name
        with_nothing = asyncio.ensure_future(anext(streams["none"]))
        await asyncio.sleep(0.5)
        assert not with_nothing.done()
        with_nothing.cancel()
    finally:
        await hub.stop()
