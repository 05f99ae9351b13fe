"""Random sequences of calls, each checked against a plain in-memory model of the store."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from src.core.errors import (
    InvalidTransitionError,
    SessionEndedError,
    SessionExistsError,
    SessionNotFoundError,
    StaleSessionError,
    UtteranceExistsError,
)
from src.domain.lifecycle import ALLOWED_TRANSITIONS, FINAL_STATUSES
from src.domain.models.session import SessionStatus
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session, state_of

pytestmark = pytest.mark.sqlite

IDS = st.sampled_from([f"s-{n}" for n in range(6)])
STATUSES = st.sampled_from(list(SessionStatus))
# Few turns, so that appends and turns often meet an utterance already there.
TURNS = st.integers(0, 1)
SPEAKERS = st.sampled_from(list(Speaker))


@dataclass
class Expected:
    status: SessionStatus
    version: int
    turn_count: int
    created_at: datetime
    utterances: dict[tuple[int, str], str] = field(default_factory=dict)


class RepositoryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp())
        self.runner = asyncio.Runner()
        self.repo = SessionRepository(self.folder / "machine.db")
        self.model: dict[str, Expected] = {}

    def teardown(self) -> None:
        self.runner.run(self.repo.close())
        self.runner.close()
        shutil.rmtree(self.folder)

    @rule(session_id=IDS, status=STATUSES)
    def create(self, session_id: str, status: SessionStatus) -> None:
        session = new_session(id=session_id, status=status)
        if session_id in self.model:
            with pytest.raises(SessionExistsError):
                self.runner.run(self.repo.create(session))
            return
        created = self.runner.run(self.repo.create(session))
        assert (created.status, created.version) == (status, 1)
        self.model[session_id] = Expected(status, 1, 0, created.created_at)

    @rule(session_id=IDS, turn_count=st.integers(0, 1000), stale=st.booleans())
    def update_state(self, session_id: str, turn_count: int, stale: bool) -> None:
        expected = self.model.get(session_id)
        state = state_of(new_session(), turn_count=turn_count)
        version = None if expected is None else expected.version - 1 if stale else expected.version
        call = self.repo.update_state(session_id, state, expected_version=version)
        if expected is None:
            with pytest.raises(SessionNotFoundError):
                self.runner.run(call)
        elif expected.status in FINAL_STATUSES:
            with pytest.raises(SessionEndedError):
                self.runner.run(call)
        elif stale:
            with pytest.raises(StaleSessionError):
                self.runner.run(call)
        else:
            updated = self.runner.run(call)
            expected.version += 1
            expected.turn_count = turn_count
            assert (updated.version, updated.state.turn_count) == (expected.version, turn_count)

    @rule(session_id=IDS, to_status=STATUSES)
    def transition(self, session_id: str, to_status: SessionStatus) -> None:
        target = to_status
        expected = self.model.get(session_id)
        call = self.repo.transition(session_id, target)
        if expected is None:
            with pytest.raises(SessionNotFoundError):
                self.runner.run(call)
        elif target not in ALLOWED_TRANSITIONS[expected.status]:
            with pytest.raises(InvalidTransitionError):
                self.runner.run(call)
        else:
            moved = self.runner.run(call)
            expected.status, expected.version = target, expected.version + 1
            assert (moved.status, moved.version) == (target, expected.version)
            assert (moved.ended_at is not None) == (target in FINAL_STATUSES)

    @rule(session_id=IDS)
    def delete(self, session_id: str) -> None:
        assert self.runner.run(self.repo.delete(session_id)) is (session_id in self.model)
        self.model.pop(session_id, None)

    @rule(session_id=IDS, turn=TURNS, speaker=SPEAKERS, text=st.text(min_size=1, max_size=20))
    def append_utterance(self, session_id: str, turn: int, speaker: Speaker, text: str) -> None:
        text = text.replace("\x00", "?")
        expected = self.model.get(session_id)
        call = self.repo.append_utterance(
            session_id, NewUtterance(turn_number=turn, speaker=speaker, text=text)
        )
        if expected is None:
            with pytest.raises(SessionNotFoundError):
                self.runner.run(call)
        elif expected.status in FINAL_STATUSES:
            with pytest.raises(SessionEndedError):
                self.runner.run(call)
        elif (turn, speaker.value) in expected.utterances:
            with pytest.raises(UtteranceExistsError):
                self.runner.run(call)
        else:
            stored = self.runner.run(call)
            assert stored.text == text
            expected.utterances[(turn, speaker.value)] = text

    @rule(
        session_id=IDS,
        turn=TURNS,
        speakers=st.lists(SPEAKERS, min_size=1, max_size=3),
        stale=st.booleans(),
    )
    def record_turn(self, session_id: str, turn: int, speakers: list[Speaker], stale: bool) -> None:
        expected = self.model.get(session_id)
        utterances = [
            NewUtterance(turn_number=turn, speaker=speaker, text=f"{speaker} {turn} {n}")
            for n, speaker in enumerate(speakers)
        ]
        state = state_of(new_session(), turn_count=turn)
        version = None if expected is None else expected.version - 1 if stale else expected.version
        call = self.repo.record_turn(session_id, utterances, state, expected_version=version)
        keys = [(turn, speaker.value) for speaker in speakers]
        if expected is None:
            error: type[Exception] | None = SessionNotFoundError
        elif expected.status in FINAL_STATUSES:
            error = SessionEndedError
        elif stale:
            error = StaleSessionError
        elif len(set(keys)) < len(keys) or set(keys) & expected.utterances.keys():
            error = UtteranceExistsError
        else:
            error = None
        if error is not None:
            with pytest.raises(error):
                self.runner.run(call)
            return
        assert expected is not None
        record = self.runner.run(call)
        expected.version += 1
        expected.turn_count = turn
        expected.utterances.update(
            {key: utterance.text for key, utterance in zip(keys, utterances, strict=True)}
        )
        assert record.session.version == expected.version
        assert [u.text for u in record.utterances] == [u.text for u in utterances]

    @rule(limit=st.integers(1, 4), status=st.none() | STATUSES)
    def walk_every_page(self, limit: int, status: SessionStatus | None) -> None:
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = self.runner.run(
                self.repo.list_sessions(status=status, limit=limit, cursor=cursor)
            )
            assert len(page.items) <= limit
            seen += [session.id for session in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        wanted = [
            session_id
            for session_id, expected in self.model.items()
            if status is None or expected.status == status
        ]
        wanted.sort(key=lambda i: (self.model[i].created_at, i), reverse=True)
        assert seen == wanted

    @invariant()
    def every_session_reads_back_as_modelled(self) -> None:
        for session_id, expected in self.model.items():
            stored = self.runner.run(self.repo.get(session_id))
            assert stored is not None
            assert (stored.status, stored.version, stored.state.turn_count) == (
                expected.status,
                expected.version,
                expected.turn_count,
            )
            transcript = self.runner.run(self.repo.list_utterances(session_id, limit=500))
            assert [((u.turn_number, u.speaker.value), u.text) for u in transcript.items] == sorted(
                expected.utterances.items()
            )


RepositoryMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None
)
TestRepositoryMachine = RepositoryMachine.TestCase
