"""The retention sweeper outlives a failed sweep: it logs the error and sweeps again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, MutableMapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from structlog.testing import capture_logs

from src.core.config import Settings
from src.domain.models.session import SessionStatus, utc_now
from src.persistence.repositories.postgres_session_repo import PostgresSessionRepository
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.repositories.session_repo import SessionRepository
from src.persistence.retention import keep_sweeping
from tests.backends import postgres_admin, postgres_schema
from tests.builders import new_session

HOUR = timedelta(hours=1)
SWEEP_EVERY = timedelta(milliseconds=10)
WAIT_SECONDS = 15


def an_hour_later() -> datetime:
    """The sweeper's clock: every session written before now is an hour idle."""
    return utc_now() + 2 * HOUR


def retention(**database: Any) -> Settings:
    return Settings(idle_pause_after=HOUR, retention_sweep_interval=SWEEP_EVERY, **database)


async def wait_for(condition: Callable[[], Any], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"not within {WAIT_SECONDS} s: {what}"
        await asyncio.sleep(0.01)


async def paused(repository: SessionRepositoryProtocol, session_id: str) -> bool:
    session = await repository.get(session_id)
    return session is not None and session.status is SessionStatus.PAUSED


def failures(logs: Sequence[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == "retention_sweep_failed"]


def assert_alive(sweeper: asyncio.Task[None]) -> None:
    if sweeper.done():
        error = None if sweeper.cancelled() else sweeper.exception()
        pytest.fail(f"the sweeper stopped: {error!r}")


async def terminate(admin: asyncpg.Connection, application: str, *, waiting: bool) -> None:
    """Cut the connections of `application`, or only those waiting for a lock."""
    # Inside a transaction pg_stat_activity keeps showing its first snapshot.
    await admin.execute("SELECT pg_stat_clear_snapshot()")
    await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = $1 AND ($2::bool IS FALSE OR wait_event_type = 'Lock')",
        application,
        waiting,
    )


@pytest.mark.postgres
async def test_the_sweeper_goes_on_after_postgres_connections_are_terminated() -> None:
    application = f"sweeper-{uuid.uuid4().hex[:12]}"
    async with (
        postgres_schema(application_name=application) as dsn,
        postgres_admin() as admin,
        PostgresSessionRepository(dsn, pool_size=4) as repository,
    ):
        schema = parse_qs(urlsplit(dsn).query)["search_path"][0]
        await repository.ping()
        with capture_logs() as logs:
            sweeper = asyncio.create_task(
                keep_sweeping(repository, retention(database_url=dsn), clock=an_hour_later)
            )
            try:
                # Cut every connection the repository holds, again and again,
                # so that some sweeps lose theirs at any point of a query.
                for _ in range(300):
                    await terminate(admin, application, waiting=False)
                    await asyncio.sleep(0.01)
                    assert_alive(sweeper)
                    if len(failures(logs)) >= 20:
                        break
                # Then for certain: sweeps wait on a lock and are cut while
                # they wait, however often a query is retried.
                cut_before = len(failures(logs))
                async with admin.transaction():
                    await admin.execute(f'LOCK TABLE "{schema}".sessions')
                    for _ in range(500):
                        if len(failures(logs)) >= cut_before + 2:
                            break
                        await terminate(admin, application, waiting=True)
                        await asyncio.sleep(0.01)
                        assert_alive(sweeper)
                assert len(failures(logs)) >= cut_before + 2, "no sweep was cut while it waited"
                session = await repository.create(new_session())
                await wait_for(lambda: paused(repository, session.id), "the session paused")
                assert_alive(sweeper)
            finally:
                sweeper.cancel()
                await asyncio.gather(sweeper, return_exceptions=True)

    assert all(entry["error"] for entry in failures(logs))


@pytest.mark.sqlite
async def test_the_sweeper_goes_on_after_the_sqlite_file_is_briefly_away(
    db_path: Path, tmp_path: Path
) -> None:
    async with SessionRepository(db_path) as repository:
        before = await repository.create(new_session())
        db_path.rename(tmp_path / "aside.db")
        with capture_logs() as logs:
            sweeper = asyncio.create_task(
                keep_sweeping(repository, retention(database_path=db_path), clock=an_hour_later)
            )
            try:

                async def failed() -> bool:
                    return bool(failures(logs))

                await wait_for(failed, "a sweep failed while the file was away")
                assert_alive(sweeper)
                (tmp_path / "aside.db").rename(db_path)
                await wait_for(lambda: paused(repository, before.id), "the session paused")
                assert_alive(sweeper)
            finally:
                sweeper.cancel()
                await asyncio.gather(sweeper, return_exceptions=True)

    assert failures(logs)[0]["error"] == "The database file is missing."
