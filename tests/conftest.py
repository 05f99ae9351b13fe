from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from src.persistence import batching
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.repositories.session_repo import SessionRepository
from tests.backends import PostgresBackend, SqliteBackend, postgres_schema


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A database file that does not exist yet, in a folder of its own."""
    return tmp_path / "store" / "sessions.db"


@pytest.fixture
def sqlite_backend(db_path: Path) -> SqliteBackend:
    return SqliteBackend(db_path)


@pytest.fixture
async def postgres_backend() -> AsyncIterator[PostgresBackend]:
    async with postgres_schema() as dsn:
        yield PostgresBackend(dsn)


@pytest.fixture(
    params=[
        pytest.param("sqlite_backend", marks=pytest.mark.sqlite),
        pytest.param("postgres_backend", marks=pytest.mark.postgres),
    ]
)
def backend(request: pytest.FixtureRequest) -> SqliteBackend | PostgresBackend:
    """Each backend in turn; only the one a test runs with is ever built."""
    chosen: SqliteBackend | PostgresBackend = request.getfixturevalue(request.param)
    return chosen


@pytest.fixture
async def repo(
    backend: SqliteBackend | PostgresBackend,
) -> AsyncIterator[SessionRepositoryProtocol]:
    """A repository on each backend, closed in the loop that opened it."""
    async with backend.open() as repository:
        yield repository


@pytest.fixture
async def sqlite_repo(db_path: Path) -> AsyncIterator[SessionRepository]:
    """A repository on a real SQLite file, for what only SQLite has."""
    async with SessionRepository(str(db_path)) as repository:
        yield repository


@pytest.fixture
def transactions(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """For every write transaction: the thread it ran on and how many writes it held."""
    seen: list[tuple[int, int]] = []
    real_run_writes = batching._run_writes

    def recording(
        database: sqlite3.Connection,
        writes: Sequence[batching.Work],
        guard: batching.Guard | None = None,
        *,
        wait: bool = True,
    ) -> list[batching.Outcome]:
        seen.append((threading.get_ident(), len(writes)))
        return real_run_writes(database, writes, guard, wait=wait)

    monkeypatch.setattr(batching, "_run_writes", recording)
    return seen
