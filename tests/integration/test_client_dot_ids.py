"""src.client reaches sessions whose ids are "." or "..", which URL normalisation would eat.

`quote` leaves dots as they are, and httpx removes the dot segments of a
path: `/sessions/..` became `/`, so the client read the docs redirect and
failed to parse it, and a delete or write went to another path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from src.client import AsyncClient
from src.domain.models.session import Session, SessionState, SessionStatus
from src.persistence.repositories.session_repo import SessionRepository
from tests.servers import running_server

pytestmark = pytest.mark.sqlite

DOT_IDS = [".", "..", "...", ".hidden"]


def imported(session_id: str) -> Session:
    state = SessionState(methodology="mec", concept_id="c", concept_name="Coffee")
    return Session(
        id=session_id, methodology="mec", concept_id="c", concept_name="Coffee", state=state
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("dot-ids")
    db_path = folder / "dots.db"

    async def store() -> None:
        # Ids the server never picks, but `create` stores as given (imports).
        async with SessionRepository(db_path) as repo:
            for session_id in DOT_IDS:
                await repo.create(imported(session_id))

    asyncio.run(store())
    with running_server(folder, {"DATABASE_PATH": str(db_path), "DATABASE_URL": ""}) as url:
        yield url


@pytest.mark.parametrize("session_id", DOT_IDS)
async def test_a_dot_id_is_read_paused_and_deleted_as_itself(server: str, session_id: str) -> None:
    async with AsyncClient(server) as client:
        read = await client.get_session(session_id)
        paused = await client.pause(session_id)
        await client.delete_session(session_id)
        left = [session.id async for session in client.list_sessions(status="paused")]

    assert read.id == session_id
    assert (paused.id, paused.status) == (session_id, SessionStatus.PAUSED)
    assert session_id not in left
