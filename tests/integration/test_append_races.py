"""An append racing a delete or an end of its session: a clear refusal, and a transcript that
never outlives its session."""

from __future__ import annotations

import asyncio

from src.core.errors import SessionEndedError, SessionNotFoundError
from src.domain.models.session import Session, SessionStatus
from src.domain.models.utterance import NewUtterance, Speaker, Utterance
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.builders import new_session

RACES = 600
HELLO = NewUtterance(turn_number=1, speaker=Speaker.INTERVIEWER, text="Hello")


async def test_an_append_racing_a_delete_is_stored_or_not_found(
    repo: SessionRepositoryProtocol,
) -> None:
    sessions = await asyncio.gather(*(repo.create(new_session()) for _ in range(RACES)))

    outcomes = await asyncio.gather(
        *(asyncio.gather(repo.append_utterance(s.id, HELLO), repo.delete(s.id)) for s in sessions),
        return_exceptions=True,
    )

    unexpected = [o for o in outcomes if not isinstance(o, list | SessionNotFoundError)]
    assert unexpected == []
    assert all(await asyncio.gather(*(_gone(repo, s) for s in sessions)))


async def _gone(repo: SessionRepositoryProtocol, session: Session) -> bool:
    return await repo.get(session.id) is None


async def test_an_append_racing_the_end_never_outlives_the_session(
    repo: SessionRepositoryProtocol,
) -> None:
    sessions = await asyncio.gather(*(repo.create(new_session()) for _ in range(RACES)))

    outcomes = await asyncio.gather(
        *(
            asyncio.gather(
                repo.append_utterance(s.id, HELLO),
                repo.transition(s.id, SessionStatus.COMPLETED),
                return_exceptions=True,
            )
            for s in sessions
        )
    )

    for appended, ended in outcomes:
        assert isinstance(ended, Session), ended
        assert isinstance(appended, Utterance | SessionEndedError), appended
        if isinstance(appended, Utterance):
            assert ended.ended_at is not None and appended.created_at <= ended.ended_at
