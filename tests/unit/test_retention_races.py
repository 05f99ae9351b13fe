"""The sweep never moves a session that was written to after it looked for idle ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from src.domain.models.session import SessionStatus
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.retention import sweep
from tests.builders import new_session

HOUR = timedelta(hours=1)


class UtteranceArrivesDuringTheSweep:
    """The repository, with an utterance acknowledged for a session between the sweep's
    search for idle sessions and its write, as a client racing the sweep would."""

    def __init__(self, repository: SessionRepositoryProtocol, session_id: str) -> None:
        self._repository = repository
        self._session_id = session_id
        self._turn = 0

    async def _utterance(self) -> None:
        self._turn += 1
        utterance = NewUtterance(turn_number=self._turn, speaker=Speaker.RESPONDENT, text="Hi")
        await self._repository.append_utterance(self._session_id, utterance)

    async def list_idle(self, *args: Any, **kwargs: Any) -> Any:
        found = await self._repository.list_idle(*args, **kwargs)
        await self._utterance()
        return found

    async def move_idle(self, *args: Any, **kwargs: Any) -> Any:
        await self._utterance()
        return await self._repository.move_idle(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repository, name)


async def test_an_utterance_after_the_sweep_looked_keeps_the_session_active(
    repo: SessionRepositoryProtocol,
) -> None:
    session = await repo.create(new_session())
    racing: Any = UtteranceArrivesDuringTheSweep(repo, session.id)

    # Idle for anything before now; the utterance arrives after this cut-off.
    result = await sweep(racing, idle_pause_after=timedelta(0), abandon_paused_after=None)

    current = await repo.get(session.id)
    assert result.paused == []
    assert current is not None and current.status == SessionStatus.ACTIVE


async def test_an_utterance_after_the_sweep_looked_keeps_a_paused_session(
    repo: SessionRepositoryProtocol,
) -> None:
    session = await repo.create(new_session(status="paused"))
    racing: Any = UtteranceArrivesDuringTheSweep(repo, session.id)

    result = await sweep(racing, idle_pause_after=None, abandon_paused_after=timedelta(0))

    current = await repo.get(session.id)
    assert result.abandoned == []
    assert current is not None and current.status == SessionStatus.PAUSED


async def test_a_move_the_lifecycle_forbids_is_refused(repo: SessionRepositoryProtocol) -> None:
    session = await repo.create(new_session(status="completed"))

    with pytest.raises(ValueError, match="cannot go from 'completed' to 'paused'"):
        await repo.move_idle(
            SessionStatus.COMPLETED, SessionStatus.PAUSED, idle_since=session.updated_at + HOUR
        )

    assert await repo.get(session.id) == session
