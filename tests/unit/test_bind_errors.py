"""A statement whose parameters cannot be bound fails alone, whatever batch it shares."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from src.persistence.batching import WriteBatcher
from src.persistence.database import init_database, open_connection
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session, state_of

pytestmark = pytest.mark.sqlite

LONE_SURROGATE = "s-\ud800"  # str that cannot be encoded as UTF-8: UnicodeEncodeError
TOO_BIG = 2**63  # int past SQLite's 64-bit integers: OverflowError

INSERT = (
    "INSERT INTO sessions (id, methodology, concept_id, concept_name, status, created_at,"
    " updated_at) VALUES (:id, 'mec', 'c', 'n', 'active', 't', 't') RETURNING id"
)


@pytest.fixture
async def batcher(db_path: Path) -> AsyncIterator[WriteBatcher]:
    await init_database(db_path)
    connection = await open_connection(db_path)
    yield WriteBatcher(connection)
    await connection.close()


def inserting(session_id: object) -> Callable[[sqlite3.Connection], list[sqlite3.Row]]:
    # A value sqlite3 cannot bind fails the statement before it runs: nothing to undo.
    return lambda database: database.execute(INSERT, {"id": session_id}).fetchall()


def committed_ids(db_path: Path) -> set[str]:
    other = sqlite3.connect(db_path)
    try:
        return {row[0] for row in other.execute("SELECT id FROM sessions")}
    finally:
        other.close()


@pytest.mark.parametrize(
    ("bad_value", "error"), [(LONE_SURROGATE, UnicodeEncodeError), (TOO_BIG, OverflowError)]
)
async def test_an_unbindable_write_in_a_batch_fails_alone_and_the_rest_commit(
    batcher: WriteBatcher, db_path: Path, bad_value: object, error: type[Exception]
) -> None:
    writes = [batcher.write_unit(inserting(f"s{n}")) for n in range(40)]
    writes.insert(20, batcher.write_unit(inserting(bad_value)))

    results = await asyncio.gather(*writes, return_exceptions=True)

    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], error), failures[:3]
    assert committed_ids(db_path) == {f"s{n}" for n in range(40)}
    # The connection is left outside any transaction: later writes commit.
    assert [tuple(row) for row in await batcher.write_unit(inserting("after"))] == [("after",)]
    assert "after" in committed_ids(db_path)


async def test_other_clients_reads_and_writes_go_on_while_one_sends_an_unbindable_id(
    sqlite_repo: SessionRepository, db_path: Path
) -> None:
    existing = [await sqlite_repo.create(new_session()) for _ in range(10)]
    fresh = [new_session() for _ in range(30)]

    async def innocent(n: int) -> object:
        if n % 3 == 0:
            return await sqlite_repo.create(fresh[n // 3])
        if n % 3 == 1:
            return await sqlite_repo.get(existing[n % 10].id)
        target = existing[n % 10]
        return await sqlite_repo.update_state(target.id, state_of(target, turn_count=n))

    async def hostile(n: int) -> object:
        if n % 3 == 0:
            return await sqlite_repo.get(LONE_SURROGATE)
        if n % 3 == 1:
            return await sqlite_repo.delete(LONE_SURROGATE)
        return await sqlite_repo.update_state(LONE_SURROGATE, existing[0].state)

    calls = [innocent(n) for n in range(90)]
    for n in range(9):
        calls.insert(n * 10 + 5, hostile(n))

    results = await asyncio.gather(*calls, return_exceptions=True)

    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 9, failures[:5]
    assert all(isinstance(f, UnicodeEncodeError) for f in failures)
    assert {s.id for s in fresh} <= committed_ids(db_path)
    assert await sqlite_repo.get(existing[0].id) is not None
