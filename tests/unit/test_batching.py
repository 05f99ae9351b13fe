"""Batching keeps every guarantee: commit before return, one error per caller, no loss."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiosqlite
import pytest

from src.core.errors import SessionExistsError
from src.domain.models.graph import GraphChange
from src.persistence.batching import WriteBatcher
from src.persistence.database import init_database, open_connection
from src.persistence.repositories.session_repo import SessionRepository
from src.persistence.sqlite_thread import raw_connection, run_on_thread
from tests.backends import stored_ids
from tests.builders import new_session

pytestmark = pytest.mark.sqlite


def sizes(transactions: list[tuple[int, int]]) -> list[int]:
    """How many writes each transaction held."""
    return [size for _, size in transactions]


@pytest.fixture
async def connection(db_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    await init_database(db_path)
    connection = await open_connection(db_path)
    yield connection
    await connection.close()


async def test_concurrent_creates_share_transactions_and_are_all_committed(
    sqlite_repo: SessionRepository, db_path: Path, transactions: list[tuple[int, int]]
) -> None:
    created = await asyncio.gather(*(sqlite_repo.create(new_session()) for _ in range(200)))

    assert {s.id for s in created} == stored_ids(db_path)
    batches = sizes(transactions)
    assert batches, "concurrent writes never shared a transaction"
    assert max(sizes(transactions)) > 1
    assert sum(batches) == 200 and len(batches) < 200  # fewer commits than writes


async def test_sequential_writes_run_alone(
    sqlite_repo: SessionRepository, transactions: list[tuple[int, int]]
) -> None:
    for _ in range(20):
        await sqlite_repo.create(new_session())

    assert sizes(transactions) == [1] * 20


async def test_a_taken_id_in_a_group_fails_alone(
    sqlite_repo: SessionRepository, db_path: Path, transactions: list[tuple[int, int]]
) -> None:
    taken = await sqlite_repo.create(new_session())
    sessions = [new_session() for _ in range(30)]
    sessions.insert(15, new_session(id=taken.id, concept_name="Intruder"))

    results = await asyncio.gather(
        *(sqlite_repo.create(s) for s in sessions), return_exceptions=True
    )

    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], SessionExistsError)
    assert stored_ids(db_path) == {s.id for s in sessions}
    assert await sqlite_repo.get(taken.id) == taken
    assert max(sizes(transactions)) > 1


async def test_a_failing_write_in_a_batch_fails_alone(
    connection: aiosqlite.Connection, db_path: Path
) -> None:
    batcher = WriteBatcher(connection)
    insert = (
        "INSERT INTO sessions (id, methodology, concept_id, concept_name, status, created_at,"
        " updated_at) VALUES (:id, 'mec', 'c', 'n', :status, 't', 't') RETURNING id"
    )
    statuses = ["active"] * 10 + ["archived"] + ["paused"] * 10

    def inserting(n: int, status: str) -> Callable[[sqlite3.Connection], list[sqlite3.Row]]:
        # One statement: SQLite undoes it alone when its CHECK fails.
        parameters = {"id": f"s{n}", "status": status}
        return lambda database: database.execute(insert, parameters).fetchall()

    results = await asyncio.gather(
        *(batcher.write_unit(inserting(n, st)) for n, st in enumerate(statuses)),
        return_exceptions=True,
    )

    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], sqlite3.IntegrityError)
    assert stored_ids(db_path) == {f"s{n}" for n in range(21)} - {"s10"}


async def test_close_waits_for_queued_writes(db_path: Path) -> None:
    repository = SessionRepository(db_path)
    await repository.get("warm-up")
    tasks = [asyncio.create_task(repository.create(new_session())) for _ in range(50)]
    await asyncio.sleep(0)

    await repository.close()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    acknowledged = {r.id for r in results if not isinstance(r, BaseException)}
    assert [r for r in results if isinstance(r, Exception)] == []
    assert acknowledged and acknowledged <= stored_ids(db_path)


async def temp_store(connection: aiosqlite.Connection) -> int:
    raw = raw_connection(connection)
    ((value,),) = await run_on_thread(
        connection, lambda: raw.execute("PRAGMA temp_store").fetchall()
    )
    return int(value)


async def test_small_writes_keep_their_journals_in_memory_and_bulk_ones_spill_to_files(
    sqlite_repo: SessionRepository,
) -> None:
    # A turn's savepoint journal would otherwise go to a temporary file; a bulk write's
    # grows with the rows it takes, and memory would keep that size.
    session = await sqlite_repo.create(new_session())
    writer, reader, _searcher = sqlite_repo.connections
    assert await temp_store(writer) == 2  # MEMORY

    await sqlite_repo.delete(session.id)
    assert await temp_store(writer) == 0  # SQLite's default: past 64 KiB, a file

    await sqlite_repo.create(new_session())
    assert await temp_store(writer) == 2
    # A reader's sorts (a long search, say) spill to files as SQLite's default has it.
    assert await temp_store(reader) == 0


async def test_a_graph_change_that_removes_nodes_spills_its_journals_to_files(
    sqlite_repo: SessionRepository,
) -> None:
    # Removing a node rewrites its rows and its edges': a few ids can take megabytes.
    session = await sqlite_repo.create(new_session())
    nodes = [{"id": f"n{n}", "type": "attribute", "label": f"n{n}"} for n in range(3)]
    await sqlite_repo.change_graph(session.id, GraphChange.model_validate({"nodes": nodes}))
    writer = sqlite_repo.connections[0]
    assert await temp_store(writer) == 2

    await sqlite_repo.change_graph(session.id, GraphChange(remove_nodes=["n0"]))
    assert await temp_store(writer) == 0


async def test_a_graph_change_of_many_upserts_spills_its_journals_to_files(
    sqlite_repo: SessionRepository,
) -> None:
    # Upserting stored nodes rewrites their rows, embeddings and all.
    session = await sqlite_repo.create(new_session())
    writer = sqlite_repo.connections[0]

    def upserts(count: int) -> GraphChange:
        nodes = [{"id": f"n{n}", "type": "attribute", "label": f"n{n}"} for n in range(count)]
        return GraphChange.model_validate({"nodes": nodes})

    await sqlite_repo.change_graph(session.id, upserts(5))
    assert await temp_store(writer) == 2

    await sqlite_repo.change_graph(session.id, upserts(200))
    assert await temp_store(writer) == 0
