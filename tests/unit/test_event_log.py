"""The event log on every backend: one event per acknowledged write, none for a refusal."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta

import pytest

from src.core.errors import SessionEndedError, UtteranceExistsError
from src.domain.models.event import EventType
from src.domain.models.graph import GraphChange
from src.domain.models.session import SessionStatus, utc_now
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.repositories.session_repo import SessionRepository
from src.persistence.repositories.statements import list_events_query
from tests.backends import PostgresBackend, SqliteBackend
from tests.builders import new_session, state_of

Backend = SqliteBackend | PostgresBackend


def said(turn: int, speaker: str = "respondent", text: str = "hello") -> NewUtterance:
    return NewUtterance(turn_number=turn, speaker=Speaker(speaker), text=text)


async def events_of(repo: SessionRepositoryProtocol, session_id: str) -> list[tuple[str, int]]:
    return [
        (event.type.value, event.version or 0)
        for event in await repo.list_events(after=0, session_id=session_id)
    ]


async def test_every_write_appends_its_event_in_order(repo: SessionRepositoryProtocol) -> None:
    session = await repo.create(new_session(study_id="study-a"))
    await repo.update_state(session.id, state_of(session, turn_count=1))
    await repo.patch_state(session.id, {"coverage_score": 0.5})
    await repo.record_turn(session.id, [said(1, "interviewer", "Why?"), said(1)], state_patch={})
    await repo.append_utterance(session.id, said(2, "interviewer", "And then?"))
    await repo.patch_session(session.id, {"labels": {"wave": "1"}})
    await repo.transition(session.id, SessionStatus.PAUSED)
    fork = await repo.fork(session.id, 1)
    await repo.delete(session.id)

    assert await events_of(repo, session.id) == [
        ("session.created", 1),
        ("session.state_updated", 2),
        ("session.state_updated", 3),
        ("session.turn_recorded", 4),
        ("session.utterance_added", 4),
        ("session.labels_changed", 5),
        ("session.status_changed", 6),
        ("session.deleted", 6),
    ]
    everything = await repo.list_events(after=0, study_id="study-a")
    assert [event.id for event in everything] == sorted(event.id for event in everything)
    turn = next(event for event in everything if event.type is EventType.TURN_RECORDED)
    assert turn.study_id == "study-a"
    assert turn.data["turn_number"] == 1
    assert [u["text"] for u in turn.data["utterances"]] == ["Why?", "hello"]
    added = next(event for event in everything if event.type is EventType.UTTERANCE_ADDED)
    assert added.data["utterance"]["text"] == "And then?"
    created_fork = [event for event in everything if event.session_id == fork.id]
    assert [event.type for event in created_fork] == [EventType.CREATED]
    assert created_fork[0].data["forked_from"] == {"session_id": session.id, "turn_number": 1}


async def test_a_refused_write_leaves_no_event(repo: SessionRepositoryProtocol) -> None:
    session = await repo.create(new_session())
    await repo.append_utterance(session.id, said(1))
    with pytest.raises(UtteranceExistsError):
        await repo.append_utterance(session.id, said(1))
    with pytest.raises(UtteranceExistsError):
        await repo.record_turn(session.id, [said(1)], state_patch={})
    await repo.transition(session.id, SessionStatus.COMPLETED)
    with pytest.raises(SessionEndedError):
        await repo.update_state(session.id, state_of(session, turn_count=2))
    assert not await repo.delete("no-such-session")

    assert [kind for kind, _ in await events_of(repo, session.id)] == [
        "session.created",
        "session.utterance_added",
        "session.status_changed",
    ]
    assert await repo.list_events(after=0, session_id="no-such-session") == []


async def test_retention_moves_have_events(repo: SessionRepositoryProtocol) -> None:
    session = await repo.create(new_session())
    await asyncio.sleep(0.01)
    moved = await repo.move_idle(
        SessionStatus.ACTIVE, SessionStatus.PAUSED, idle_since=utc_now(), limit=500
    )
    assert session.id in {moved_session.id for moved_session in moved}
    events = await repo.list_events(after=0, session_id=session.id)
    assert events[-1].type is EventType.STATUS_CHANGED
    assert events[-1].data == {"status": "paused"}


async def test_trimming_moves_the_bound_and_keeps_newer_events(
    repo: SessionRepositoryProtocol,
) -> None:
    session = await repo.create(new_session())
    first = await repo.event_bounds()
    assert first.newest >= 1
    await asyncio.sleep(0.01)
    cut = utc_now()
    await asyncio.sleep(0.01)
    await repo.transition(session.id, SessionStatus.PAUSED)

    trimmed = await repo.trim_events(cut)

    bounds = await repo.event_bounds()
    assert trimmed == bounds.trimmed_through >= first.newest
    kept = await repo.list_events(after=0, session_id=session.id)
    assert [event.type for event in kept] == [EventType.STATUS_CHANGED]
    # Nothing more to trim: the bound stays where it was.
    assert await repo.trim_events(cut - timedelta(days=1)) == trimmed


async def test_ids_follow_commit_order_under_concurrent_writes(
    repo: SessionRepositoryProtocol,
) -> None:
    sessions = [await repo.create(new_session()) for _ in range(8)]
    start = (await repo.event_bounds()).newest
    seen: list[int] = []

    async def reader() -> None:
        after = start
        while len(seen) < 8 * 10:
            for event in await repo.list_events(after=after):
                seen.append(event.id)
                after = event.id
            await asyncio.sleep(0)

    async def writer(session_id: str) -> None:
        for turn in range(1, 11):
            await repo.append_utterance(session_id, said(turn))

    watching = asyncio.create_task(reader())
    await asyncio.gather(*(writer(session.id) for session in sessions))
    await asyncio.wait_for(watching, 10)
    stored = [event.id for event in await repo.list_events(after=start)]
    # The reader, resuming after the last id it saw, saw every event once.
    assert seen == stored


async def test_a_graph_change_on_its_own_appends_its_event(repo: SessionRepositoryProtocol) -> None:
    session = await repo.create(new_session())
    await repo.record_turn(session.id, [said(1, text="Cheap coffee")], state_patch={})
    change = GraphChange.model_validate(
        {"nodes": [{"id": "n1", "type": "attribute", "label": "cheap"}], "remove_nodes": ["x"]}
    )

    changed = await repo.change_graph(session.id, change)

    events = await repo.list_events(after=0, session_id=session.id)
    assert [(e.type, e.version) for e in events][-1] == (EventType.GRAPH_CHANGED, changed.version)
    assert events[-1].data == {
        "turn_number": 1,
        "nodes": ["n1"],
        "edges": [],
        "removed_nodes": ["x"],
        "removed_edges": [],
    }


async def test_a_sessions_events_are_read_through_its_index(
    sqlite_repo: SessionRepository,
) -> None:
    # A resuming console follows one session: its events must not cost a walk of the log.
    first = await sqlite_repo.create(new_session())
    other = await sqlite_repo.create(new_session(study_id="study-b"))
    for turn in range(1, 6):
        for session in (first, other):
            said = NewUtterance(turn_number=turn, speaker=Speaker.RESPONDENT, text="yes")
            await sqlite_repo.append_utterance(session.id, said)
    listing = list_events_query(session=True, study=False).sqlite
    with sqlite3.connect(sqlite_repo.db_path) as database:
        plan = database.execute(
            f"EXPLAIN QUERY PLAN {listing}", {"after": 0, "limit": 5, "session_id": first.id}
        ).fetchall()

    assert "USING INDEX events_by_session" in plan[0][-1], plan
    events = await sqlite_repo.list_events(after=0, session_id=first.id)
    assert {event.session_id for event in events} == {first.id}
    assert len(events) == 6
    studies = await sqlite_repo.list_events(after=0, study_id="study-b")
    assert {event.session_id for event in studies} == {other.id}
    both = await sqlite_repo.list_events(after=0, session_id=first.id, study_id="study-b")
    assert both == []
