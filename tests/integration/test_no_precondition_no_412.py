"""A write sent without a precondition never fails a precondition (412), however writes race."""

from __future__ import annotations

import asyncio

import httpx

from src.core.errors import InvalidTransitionError
from src.domain.models.session import Session, SessionStatus
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.builders import NEW_SESSION_BODY, new_session, state_of

ROUNDS = 400


async def test_racing_pauses_and_resumes_are_done_or_not_allowed(
    repo: SessionRepositoryProtocol,
) -> None:
    session = await repo.create(new_session())
    moves = [SessionStatus.PAUSED, SessionStatus.ACTIVE] * (ROUNDS // 2)

    results = await asyncio.gather(
        *(repo.transition(session.id, target) for target in moves), return_exceptions=True
    )

    refused = [r for r in results if not isinstance(r, Session)]
    assert all(isinstance(r, InvalidTransitionError) for r in refused), refused
    current = await repo.get(session.id)
    assert current is not None and current.version == 1 + len(results) - len(refused)


async def test_racing_state_updates_and_moves_all_go_through(
    repo: SessionRepositoryProtocol,
) -> None:
    session = await repo.create(new_session())
    pauses = [SessionStatus.PAUSED, SessionStatus.ACTIVE] * (ROUNDS // 4)

    results = await asyncio.gather(
        *(
            repo.update_state(session.id, state_of(session, turn_count=n))
            for n in range(ROUNDS // 2)
        ),
        *(repo.transition(session.id, target) for target in pauses),
        return_exceptions=True,
    )

    updates, moves = results[: ROUNDS // 2], results[ROUNDS // 2 :]
    assert all(isinstance(r, Session) for r in updates), updates
    assert all(isinstance(r, Session | InvalidTransitionError) for r in moves), moves


async def test_racing_requests_without_if_match_never_get_412(client: httpx.AsyncClient) -> None:
    session = (await client.post("/sessions", json=NEW_SESSION_BODY)).json()
    paths = [f"/sessions/{session['id']}/{move}" for move in ("pause", "resume")] * 100

    responses = await asyncio.gather(*(client.post(path) for path in paths))

    assert {r.status_code for r in responses} <= {200, 409}
    assert all(r.json()["code"] == "invalid_transition" for r in responses if r.status_code == 409)
