"""A search whose time grows with its matches holds up no other read: on SQLite it runs on a
connection of its own, on PostgreSQL searches hold at most half the pool."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import asyncpg
import pytest

from src.core.errors import RepositoryClosedError
from src.domain.models.session import utc_now
from src.persistence.repositories.postgres_session_repo import PostgresSessionRepository
from src.persistence.repositories.session_repo import SessionRepository, to_text
from tests.backends import PostgresBackend
from tests.builders import new_session

_MATCHES = 100_000


@pytest.mark.sqlite
async def test_a_slow_search_holds_up_no_other_read(sqlite_repo: SessionRepository) -> None:
    # A word in every utterance: a search weighs each match, a few µs apiece.
    session = await sqlite_repo.create(new_session(study_id="study-slow"))
    stamp = to_text(utc_now())
    with sqlite3.connect(sqlite_repo.db_path) as bulk:
        bulk.executemany(
            "INSERT INTO utterances (session_id, turn_number, speaker, text, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                (session.id, n // 2 + 1, ("interviewer", "respondent")[n % 2], f"coffee {n}", stamp)
                for n in range(_MATCHES)
            ),
        )

    searching = asyncio.ensure_future(sqlite_repo.search("coffee", limit=10))
    await asyncio.sleep(0.05)
    assert not searching.done(), "the search should take long enough to overlap other reads"
    summary = await sqlite_repo.study_summary("study-slow")
    graph = await sqlite_repo.get_graph(session.id)
    counts = await sqlite_repo.count_by_status()
    # Each answered while the search still weighed its matches.
    assert not searching.done()
    assert sum(summary.sessions.values()) == 1
    assert graph.nodes == [] and graph.edges == []
    assert sum(counts.values()) == 1
    page = await searching
    assert len(page.items) == 10


@pytest.mark.postgres
async def test_searches_at_once_leave_connections_for_other_reads(
    postgres_backend: PostgresBackend,
) -> None:
    async with PostgresSessionRepository(postgres_backend.dsn, pool_size=2) as repo:
        session = await repo.create(new_session())
        bulk = await asyncpg.connect(postgres_backend.dsn)
        try:
            await bulk.execute(
                "INSERT INTO utterances (session_id, turn_number, speaker, text, created_at)"
                " SELECT $1, n / 2 + 1, (ARRAY['interviewer', 'respondent'])[n % 2 + 1],"
                " repeat('coffee tea ', 100) || n, now() FROM generate_series(0, $2 - 1) AS n",
                session.id,
                _MATCHES // 2,
            )
        finally:
            await bulk.close()
        began = time.perf_counter()
        await repo.search("coffee", limit=10)
        one_search = time.perf_counter() - began

        searching = [asyncio.ensure_future(repo.search("coffee", limit=10)) for _ in range(4)]
        await asyncio.sleep(0.01)
        began = time.perf_counter()
        got = await repo.get(session.id)
        waited = time.perf_counter() - began
        pages = await asyncio.gather(*searching)

    assert got is not None
    assert all(len(page.items) == 10 for page in pages)
    # Two searches at once would hold both connections: the lookup would wait for one.
    assert waited < one_search / 2, (waited, one_search)


@pytest.mark.sqlite
async def test_closing_stops_the_searches_still_queued_or_running(db_path: Path) -> None:
    repository = SessionRepository(str(db_path))
    session = await repository.create(new_session())
    with sqlite3.connect(db_path) as bulk:
        bulk.executemany(
            "INSERT INTO utterances (session_id, turn_number, speaker, text, created_at)"
            " VALUES (?, ?, 'respondent', ?, ?)",
            ((session.id, n + 1, f"coffee {n}", to_text(utc_now())) for n in range(_MATCHES)),
        )
    # Searches whose clients left: each would weigh every match, one after another.
    searching = [asyncio.ensure_future(repository.search("coffee")) for _ in range(6)]
    await asyncio.sleep(0.05)

    began = time.perf_counter()
    await repository.close()
    took = time.perf_counter() - began
    outcomes = await asyncio.gather(*searching, return_exceptions=True)

    assert took < 1, took
    assert all(isinstance(outcome, RepositoryClosedError) for outcome in outcomes), outcomes
