"""Nothing is written to a completed or abandoned session: every write answers 409 session_ended."""

from __future__ import annotations

import httpx
import pytest

from src.core.errors import SessionEndedError
from src.domain.models.session import SessionStatus
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.builders import NEW_SESSION_BODY, new_session, state_of


@pytest.mark.parametrize("ended", [SessionStatus.COMPLETED, SessionStatus.ABANDONED])
@pytest.mark.parametrize("if_match", [False, True])
async def test_a_state_update_to_an_ended_session_is_refused(
    repo: SessionRepositoryProtocol, ended: SessionStatus, if_match: bool
) -> None:
    session = await repo.transition((await repo.create(new_session())).id, ended)
    expected_version = session.version if if_match else None

    with pytest.raises(SessionEndedError) as raised:
        await repo.update_state(
            session.id, state_of(session, turn_count=9), expected_version=expected_version
        )

    assert raised.value.session_status == ended.value
    assert await repo.get(session.id) == session


@pytest.mark.parametrize("ended", ["complete", "abandon"])
async def test_a_state_put_to_an_ended_session_is_a_409(
    client: httpx.AsyncClient, ended: str
) -> None:
    session = (await client.post("/sessions", json=NEW_SESSION_BODY)).json()
    ended_session = (await client.post(f"/sessions/{session['id']}/{ended}")).json()
    state = {**session["state"], "turn_count": 9}

    response = await client.put(f"/sessions/{session['id']}/state", json=state)

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "session_ended"
    assert (await client.get(f"/sessions/{session['id']}")).json() == ended_session
