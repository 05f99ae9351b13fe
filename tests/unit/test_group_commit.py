"""Group commit: a batch's statements on the event loop's thread, its commit on the worker."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from src.persistence.database import database_file_guard, init_database, open_connection
from src.persistence.group_commit import BUDGET_SECONDS, GroupCommit, Work

pytestmark = pytest.mark.sqlite

_COUNT_FAR = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3000000)"
    " SELECT count(*) FROM c"
)


@pytest.fixture
async def writer(db_path: Path) -> AsyncIterator[tuple[GroupCommit, aiosqlite.Connection]]:
    await init_database(db_path)
    connection = await open_connection(db_path)
    await connection.execute("CREATE TABLE notes (n INTEGER PRIMARY KEY)")
    group = GroupCommit(connection, database_file_guard(db_path))
    yield group, connection
    await group.drain()
    await connection.close()


def notes(db_path: Path) -> list[int]:
    with sqlite3.connect(db_path) as database:
        return [n for (n,) in database.execute("SELECT n FROM notes ORDER BY n")]


async def test_a_short_unit_runs_on_the_loop_and_a_long_one_on_the_worker(
    writer: tuple[GroupCommit, aiosqlite.Connection], db_path: Path
) -> None:
    group, _ = writer

    def note(n: int) -> Work:
        def work(database: sqlite3.Connection, shared: bool) -> int:
            database.execute("INSERT INTO notes VALUES (?)", (n,))
            return threading.get_ident()

        return work

    short = await group.run(note(1))
    long = await group.run(note(2), long=True)

    assert short == threading.get_ident() != long
    assert notes(db_path) == [1, 2]


async def test_a_unit_past_the_budget_is_undone_and_run_once_on_the_worker(
    writer: tuple[GroupCommit, aiosqlite.Connection], db_path: Path
) -> None:
    group, _ = writer
    threads: list[int] = []

    def heavy(database: sqlite3.Connection, shared: bool) -> int:
        threads.append(threading.get_ident())
        database.execute("INSERT INTO notes VALUES (7)")
        (count,) = database.execute(_COUNT_FAR).fetchone()
        return int(count)

    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.01)
    result = await group.run(heavy)
    stop.set()
    await ticking

    assert result == 3_000_000
    assert notes(db_path) == [7]  # the loop's attempt left nothing behind
    assert threads[0] == threading.get_ident() != threads[-1]
    # The loop went on while the worker counted.
    assert max(gaps) < 0.25, max(gaps)
    assert BUDGET_SECONDS < 0.01


async def test_a_lone_unit_that_fails_leaves_none_of_its_writes(
    writer: tuple[GroupCommit, aiosqlite.Connection], db_path: Path
) -> None:
    group, _ = writer

    def half_done(database: sqlite3.Connection, shared: bool) -> None:
        database.execute("INSERT INTO notes VALUES (1)")
        raise LookupError("refused after a write")

    def fine(database: sqlite3.Connection, shared: bool) -> None:
        database.execute("INSERT INTO notes VALUES (2)")

    with pytest.raises(LookupError):
        await group.run(half_done)
    await group.run(fine)

    assert notes(db_path) == [2]


async def test_units_that_arrive_during_a_commit_share_the_next_one(
    writer: tuple[GroupCommit, aiosqlite.Connection], db_path: Path
) -> None:
    group, _ = writer
    shared_flags: list[bool] = []

    def note(n: int) -> Work:
        def work(database: sqlite3.Connection, shared: bool) -> None:
            shared_flags.append(shared)
            if shared:
                database.execute("SAVEPOINT note")
            database.execute("INSERT INTO notes VALUES (?)", (n,))
            if n == 13:
                # What every unit does when others share its transaction.
                if shared:
                    database.execute("ROLLBACK TO note")
                    database.execute("RELEASE note")
                raise ValueError("this one alone")
            if shared:
                database.execute("RELEASE note")

        return work

    results = await asyncio.gather(*(group.run(note(n)) for n in range(40)), return_exceptions=True)

    assert [n for n, result in enumerate(results) if isinstance(result, Exception)] == [13]
    assert notes(db_path) == [n for n in range(40) if n != 13]
    assert shared_flags.count(True) >= 30  # all but the first went in shared batches
