"""PostgreSQL connections terminated under the server: reads go on, writes get 503, never 500."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from src.core.config import Settings
from src.core.errors import StorageUnavailableError
from src.domain.models.session import Session
from src.persistence.repositories.postgres_session_repo import PostgresSessionRepository
from tests.backends import postgres_admin, postgres_schema
from tests.builders import NEW_SESSION_BODY, new_session, state_of
from tests.http import serve_in_process

pytestmark = pytest.mark.postgres


class NamedStore:
    """A schema of its own whose connections carry a name they can be found by."""

    def __init__(self, dsn: str, name: str) -> None:
        self.dsn = dsn
        self.name = name

    async def terminate_connections(self) -> int:
        async with postgres_admin() as admin:
            ended: int = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1",
                self.name,
            )
        return ended


@pytest.fixture
async def store() -> AsyncIterator[NamedStore]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    async with postgres_schema(application_name=name) as dsn:
        yield NamedStore(dsn, name)


async def test_reads_on_terminated_connections_are_answered(store: NamedStore) -> None:
    async with PostgresSessionRepository(store.dsn, pool_size=4) as repo:
        created = await repo.create(new_session())
        await asyncio.gather(*(repo.get(created.id) for _ in range(8)))  # fill the pool
        assert await store.terminate_connections() >= 1

        reads, pages, transcript = await asyncio.gather(
            asyncio.gather(*(repo.get(created.id) for _ in range(8))),
            asyncio.gather(*(repo.list_sessions() for _ in range(4))),
            repo.list_utterances(created.id),
        )

    assert reads == [created] * 8
    assert all(page.items == [created] for page in pages)
    assert transcript.items == []


async def test_writes_on_terminated_connections_are_done_or_unavailable(
    store: NamedStore,
) -> None:
    async with PostgresSessionRepository(store.dsn, pool_size=4) as repo:
        created = await repo.create(new_session())
        await asyncio.gather(*(repo.get(created.id) for _ in range(8)))
        assert await store.terminate_connections() >= 1

        writes = await asyncio.gather(
            *(repo.update_state(created.id, state_of(created, turn_count=n)) for n in range(8)),
            *(repo.create(new_session()) for _ in range(8)),
            return_exceptions=True,
        )
        # The pool is whole again afterwards.
        later = await repo.update_state(created.id, state_of(created, turn_count=99))

    assert all(isinstance(w, Session | StorageUnavailableError) for w in writes), writes
    assert later.state.turn_count == 99


async def test_requests_in_flight_when_connections_end_get_503_with_retry_after(
    store: NamedStore,
) -> None:
    settings = Settings(database_url=store.dsn, database_pool_size=4)
    async with serve_in_process(settings) as client:
        session = (await client.post("/sessions", json=NEW_SESSION_BODY)).json()

        async def traffic() -> list[httpx.Response]:
            return list(
                await asyncio.gather(
                    *(client.get(f"/sessions/{session['id']}") for _ in range(40)),
                    *(client.post("/sessions", json=NEW_SESSION_BODY) for _ in range(40)),
                )
            )

        during, _ = await asyncio.gather(traffic(), store.terminate_connections())
        after = await traffic()

    responses = during + after
    statuses = {r.status_code for r in responses}
    assert statuses <= {200, 201, 503}, [r.text for r in responses if r.status_code >= 500]
    assert all(r.headers["retry-after"] for r in responses if r.status_code == 503)
    # Once the connections are gone (not while they go), every read is answered.
    assert all(r.status_code == 200 for r in after if r.request.method == "GET")
