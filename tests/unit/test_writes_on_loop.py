"""Write batches run on the event loop's thread while that is quick, on the worker when not."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from src.persistence import batching
from src.persistence.batching import WriteBatcher
from src.persistence.database import BUSY_TIMEOUT_SECONDS, init_database, open_connection
from src.persistence.repositories.session_repo import SessionRepository
from tests.backends import stored_ids
from tests.builders import new_session, state_of

pytestmark = pytest.mark.sqlite

INSERT = (
    "INSERT INTO sessions (id, methodology, concept_id, concept_name, status, created_at,"
    " updated_at) VALUES (?, 'mec', 'c', 'n', 'active', 't', 't')"
)


@pytest.fixture
async def writer(db_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    await init_database(db_path)
    connection = await open_connection(db_path, any_thread=True)
    yield connection
    await connection.close()


def inserting(session_id: str) -> batching.Work:
    """A unit of work that inserts a row and answers the thread it ran on."""

    def work(database: sqlite3.Connection) -> int:
        database.execute(INSERT, (session_id,))
        return threading.get_ident()

    return work


async def test_a_write_that_arrives_alone_runs_on_the_event_loops_thread(
    writer: aiosqlite.Connection, db_path: Path
) -> None:
    batcher = WriteBatcher(writer, on_loop=True)

    thread = await batcher.write_unit(inserting("here"))

    assert thread == threading.get_ident()
    assert stored_ids(db_path) == {"here"}


async def test_a_bulk_write_runs_on_the_worker(writer: aiosqlite.Connection) -> None:
    batcher = WriteBatcher(writer, on_loop=True)

    thread = await batcher.write_unit(inserting("bulk"), bulk=True)

    assert thread != threading.get_ident()


async def test_writes_that_arrive_together_share_one_transaction_on_the_worker(
    writer: aiosqlite.Connection, db_path: Path, transactions: list[tuple[int, int]]
) -> None:
    batcher = WriteBatcher(writer, on_loop=True)

    threads = await asyncio.gather(*(batcher.write_unit(inserting(f"s{n}")) for n in range(50)))

    assert threading.get_ident() not in set(threads)
    assert [size for _, size in transactions] == [50]
    assert stored_ids(db_path) == {f"s{n}" for n in range(50)}


async def test_a_write_lock_held_elsewhere_is_waited_for_on_the_worker(
    writer: aiosqlite.Connection, db_path: Path
) -> None:
    batcher = WriteBatcher(writer, on_loop=True)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    write = asyncio.create_task(batcher.write_unit(inserting("after-the-lock")))
    await asyncio.sleep(0.3)
    ticks_while_locked = ticks
    other.execute("ROLLBACK")
    other.close()
    thread = await write
    ticker.cancel()

    # The event loop went on while the write waited: it waited on the worker.
    assert ticks_while_locked >= 20
    assert thread != threading.get_ident()
    assert stored_ids(db_path) == {"after-the-lock"}


async def test_after_a_write_that_waited_writes_go_to_the_worker_until_one_is_quick(
    writer: aiosqlite.Connection,
) -> None:
    slow_commits = 3

    def disk(database: sqlite3.Connection, committing: bool) -> None:
        nonlocal slow_commits
        if slow_commits:
            slow_commits -= 1
            time.sleep(2 * batching.HERE_WAIT_LIMIT_SECONDS)  # waits without using the CPU

    batcher = WriteBatcher(writer, guard=disk, on_loop=True)

    threads = [await batcher.write_unit(inserting(f"s{n}")) for n in range(5)]

    here = threading.get_ident()
    assert [thread == here for thread in threads] == [True, False, False, False, True]


async def test_a_slow_disk_holds_the_event_loop_once_not_again_and_again(
    writer: aiosqlite.Connection,
) -> None:
    def slow_disk(database: sqlite3.Connection, committing: bool) -> None:
        time.sleep(2 * batching.HERE_WAIT_LIMIT_SECONDS)

    batcher = WriteBatcher(writer, guard=slow_disk, on_loop=True)
    threads: list[int] = []
    started = time.perf_counter()
    while time.perf_counter() - started < 1.5:
        threads.append(await batcher.write_unit(inserting(f"s{len(threads)}")))

    assert threads.count(threading.get_ident()) == 1


async def test_work_run_alone_never_overlaps_a_batch(writer: aiosqlite.Connection) -> None:
    batcher = WriteBatcher(writer, on_loop=True)
    spans: dict[str, tuple[float, float]] = {}

    def checkpoint(database: sqlite3.Connection) -> None:
        started = time.perf_counter()
        time.sleep(0.1)
        database.execute("PRAGMA wal_checkpoint(PASSIVE)")
        spans["alone"] = (started, time.perf_counter())

    def insert(database: sqlite3.Connection) -> None:
        started = time.perf_counter()
        database.execute(INSERT, ("during",))
        spans["write"] = (started, time.perf_counter())

    alone = asyncio.create_task(batcher.run_alone(checkpoint))
    await asyncio.sleep(0.02)
    await batcher.write_unit(insert)
    await alone

    assert spans["write"][0] >= spans["alone"][1]


async def test_a_repository_write_runs_on_the_loop_and_a_delete_on_the_worker(
    db_path: Path, transactions: list[tuple[int, int]]
) -> None:
    repository = SessionRepository(db_path)
    try:
        session = await repository.create(new_session())
        await repository.delete(session.id)
    finally:
        await repository.close()

    (create, delete) = (thread for thread, _ in transactions)
    assert create == threading.get_ident() != delete


async def test_a_cancelled_caller_leaves_the_connection_busy_until_its_write_is_done(
    writer: aiosqlite.Connection,
) -> None:
    batcher = WriteBatcher(writer, on_loop=True)
    spans: dict[str, tuple[float, float]] = {}

    def long_write(database: sqlite3.Connection) -> None:
        started = time.perf_counter()
        for n in range(10):
            database.execute(INSERT, (f"bulk-{n}",))
            time.sleep(0.01)
        spans["bulk"] = (started, time.perf_counter())

    def next_write(database: sqlite3.Connection) -> None:
        spans["next"] = (time.perf_counter(), time.perf_counter())
        database.execute(INSERT, ("next",))

    cancelled = asyncio.create_task(batcher.write_unit(long_write, bulk=True))
    await asyncio.sleep(0.03)
    cancelled.cancel()
    await asyncio.sleep(0)
    await batcher.write_unit(next_write)

    assert spans["next"][0] >= spans["bulk"][1]


async def test_work_run_alone_gets_its_turn_between_back_to_back_writes(
    writer: aiosqlite.Connection,
) -> None:
    batcher = WriteBatcher(writer, on_loop=True)
    writing = True
    written = 0

    async def write_back_to_back() -> None:
        nonlocal written
        while writing:
            await batcher.write_unit(inserting(f"w{written}"))
            written += 1

    writer_task = asyncio.create_task(write_back_to_back())
    await asyncio.sleep(0.02)
    try:
        await asyncio.wait_for(
            batcher.run_alone(lambda db: db.execute("PRAGMA wal_checkpoint").fetchall()), 5
        )
    finally:
        writing = False
        await writer_task
    assert written > 0


async def test_the_writer_waits_for_locks_again_after_a_write_on_the_loop(
    writer: aiosqlite.Connection,
) -> None:
    batcher = WriteBatcher(writer, on_loop=True)
    await batcher.write_unit(inserting("here"))

    timeout = await batcher.run_alone(lambda db: db.execute("PRAGMA busy_timeout").fetchone()[0])

    assert timeout == BUSY_TIMEOUT_SECONDS * 1000


async def test_an_in_memory_store_serves_concurrent_reads_and_writes() -> None:
    # Its one connection reads as well as writes, on its worker thread only.
    repository = SessionRepository(":memory:")
    try:
        sessions = [await repository.create(new_session()) for _ in range(5)]

        async def read() -> None:
            for n in range(300):
                assert await repository.get(sessions[n % 5].id) is not None

        async def write() -> None:
            for n in range(300):
                target = sessions[n % 5]
                await repository.update_state(target.id, state_of(target, turn_count=n))

        await asyncio.gather(read(), read(), write())
    finally:
        await repository.close()
