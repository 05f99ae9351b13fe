"""Random sequences of state patches, turns with records, relabels, moves and forks, each
checked against a plain model: the data, the usage totals, the records, and every version."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from src.core.errors import (
    SessionEndedError,
    SessionNotFoundError,
    TurnNotRecordedError,
    TurnRecordExistsError,
)
from src.domain.lifecycle import ALLOWED_TRANSITIONS, FINAL_STATUSES
from src.domain.merge_patch import apply_merge_patch
from src.domain.models.session import Session, SessionStatus
from src.domain.models.turn import TurnRecordData
from src.domain.models.utterance import NewUtterance
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session, state_of

pytestmark = pytest.mark.sqlite

IDS = st.sampled_from([f"s-{n}" for n in range(3)])
KEYS = st.sampled_from(["mode", "tracker", "history", "n"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4).map(lambda text: text.replace("\x00", "?"))
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=6,
)
DATA = st.dictionaries(KEYS, JSON, max_size=4)
PATCH = st.dictionaries(KEYS, JSON, max_size=3)
TURNS = st.integers(1, 4)


@dataclass
class Expected:
    status: SessionStatus
    data: dict[str, Any]
    records: dict[int, TurnRecordData] = field(default_factory=dict)
    turns: dict[int, int] = field(default_factory=dict)
    """The version each turn's write left the session at, by turn number."""
    versions: list[Session] = field(default_factory=list)

    @property
    def version(self) -> int:
        return self.versions[-1].version


def record(turn: int, tokens: int) -> TurnRecordData:
    return TurnRecordData.model_validate(
        {
            "strategy": f"s{turn}",
            "scores": {"depth": turn / 3},
            "signals": {"turn": turn},
            "usage": {"input_tokens": tokens, "output_tokens": 1, "cost_usd": tokens / 8},
        }
    )


class InterviewMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp())
        self.runner = asyncio.Runner()
        self.repo = SessionRepository(self.folder / "machine.db")
        self.model: dict[str, Expected] = {}
        self.forks = 0

    def teardown(self) -> None:
        self.runner.run(self.repo.close())
        self.runner.close()
        shutil.rmtree(self.folder)

    def run(self, call: Any) -> Any:
        return self.runner.run(call)

    @rule(session_id=IDS, data=DATA)
    def create(self, session_id: str, data: dict[str, Any]) -> None:
        if session_id in self.model:
            return
        session = new_session(id=session_id, config={"max_turns": 12}, labels={"run": "1"})
        session.state = state_of(session, data=data)
        created = self.run(self.repo.create(session))
        assert created.state.data == data
        self.model[session_id] = Expected(created.status, data, versions=[created])

    @rule(session_id=IDS, patch=PATCH)
    def patch_state(self, session_id: str, patch: dict[str, Any]) -> None:
        expected = self.model.get(session_id)
        call = self.repo.patch_state(session_id, {"data": patch})
        if expected is None:
            with pytest.raises(SessionNotFoundError):
                self.run(call)
            return
        if expected.status in FINAL_STATUSES:
            with pytest.raises(SessionEndedError):
                self.run(call)
            return
        patched = self.run(call)
        expected.data = apply_merge_patch(expected.data, patch)
        assert patched.state.data == expected.data
        expected.versions.append(patched)

    @rule(session_id=IDS, data=DATA)
    def put_state(self, session_id: str, data: dict[str, Any]) -> None:
        expected = self.model.get(session_id)
        if expected is None or expected.status in FINAL_STATUSES:
            return
        current = expected.versions[-1]
        updated = self.run(self.repo.update_state(session_id, state_of(current, data=data)))
        expected.data = data
        assert updated.state.data == data
        expected.versions.append(updated)

    @rule(session_id=IDS, turn=TURNS, tokens=st.integers(0, 10**6), patch=PATCH)
    def turn(self, session_id: str, turn: int, tokens: int, patch: dict[str, Any]) -> None:
        expected = self.model.get(session_id)
        if expected is None:
            return
        said = NewUtterance(turn_number=turn, speaker="interviewer", text=f"q{turn}")
        call = self.repo.record_turn(
            session_id, [said], state_patch={"data": patch}, record=record(turn, tokens)
        )
        if expected.status in FINAL_STATUSES:
            error: type[Exception] | None = SessionEndedError
        elif turn in expected.records:
            error = TurnRecordExistsError
        else:
            error = None
        if error is not None:
            with pytest.raises(error):
                self.run(call)
            return
        stored = self.run(call)
        expected.data = apply_merge_patch(expected.data, patch)
        expected.records[turn] = record(turn, tokens)
        expected.turns[turn] = stored.session.version
        expected.versions.append(stored.session)

    @rule(
        session_id=IDS,
        labels=st.dictionaries(st.sampled_from(["a", "b"]), st.none() | st.text("xy", max_size=2)),
    )
    def relabel(self, session_id: str, labels: dict[str, str | None]) -> None:
        expected = self.model.get(session_id)
        if expected is None:
            return
        relabelled = self.run(self.repo.patch_session(session_id, {"labels": labels}))
        wanted = apply_merge_patch(expected.versions[-1].labels, labels)
        assert relabelled.labels == wanted
        expected.versions.append(relabelled)

    @rule(session_id=IDS, to_status=st.sampled_from(list(SessionStatus)))
    def transition(self, session_id: str, to_status: SessionStatus) -> None:
        expected = self.model.get(session_id)
        if expected is None or to_status not in ALLOWED_TRANSITIONS[expected.status]:
            return
        moved = self.run(self.repo.transition(session_id, to_status))
        expected.status = to_status
        expected.versions.append(moved)

    @rule(session_id=IDS, at_turn=st.integers(0, 5))
    def fork(self, session_id: str, at_turn: int) -> None:
        expected = self.model.get(session_id)
        if expected is None:
            return
        self.forks += 1
        fork_id = f"{session_id}-fork-{self.forks}"
        call = self.repo.fork(session_id, at_turn, new_id=fork_id)
        if at_turn > max(expected.turns, default=0):
            with pytest.raises(TurnNotRecordedError):
                self.run(call)
            return
        forked = self.run(call)
        records = {turn: r for turn, r in expected.records.items() if turn <= at_turn}
        assert forked.usage.turns == len(records)
        assert forked.usage.input_tokens == sum(r.usage.input_tokens for r in records.values())
        # The state as turn `at_turn` left it; for a turn with nothing said, as the
        # session was when the last turn before it was said; as created for none.
        said_by_then = [version for turn, version in expected.turns.items() if turn <= at_turn]
        then_version = expected.turns.get(
            at_turn, max(said_by_then, default=expected.versions[0].version)
        )
        then = next(v for v in expected.versions if v.version == then_version)
        assert forked.state == then.state
        turns = self.run(self.repo.list_turns(fork_id, limit=500)).items
        assert {t.turn_number: t.record for t in turns} == records
        self.run(self.repo.delete(fork_id))

    @invariant()
    def sessions_history_records_and_usage_read_back_as_modelled(self) -> None:
        for session_id, expected in self.model.items():
            stored = self.run(self.repo.get(session_id))
            assert stored == expected.versions[-1]
            assert stored is not None
            assert stored.state.data == expected.data
            assert stored.usage.turns == len(expected.records)
            assert stored.usage.input_tokens == sum(
                r.usage.input_tokens for r in expected.records.values()
            )
            history = self.run(self.repo.list_versions(session_id, limit=500)).items
            assert [v.version for v in history] == [s.version for s in expected.versions]
            for listed, written in zip(history, expected.versions, strict=True):
                assert listed.state == written.state
                assert self.run(self.repo.get_version(session_id, written.version)) == written
            turns = self.run(self.repo.list_turns(session_id, limit=500)).items
            assert {t.turn_number: t.record for t in turns} == expected.records


InterviewMachine.TestCase.settings = settings(
    max_examples=50, stateful_step_count=25, deadline=None
)
TestInterviewMachine = InterviewMachine.TestCase
