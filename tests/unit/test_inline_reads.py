"""Short reads run on the event loop's thread; what they cannot finish goes to the worker."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from src.core.errors import StorageUnavailableError
from src.domain.models.session import SessionStatus
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.database import database_file_guard, init_database
from src.persistence.inline_reads import (
    BUDGET_SECONDS,
    NOT_HERE,
    WAIT_LIMIT_SECONDS,
    InlineReader,
    Step,
)
from src.persistence.repositories.session_repo import SessionRepository
from src.persistence.sqlite_thread import raw_connection, run_on_thread
from tests.builders import new_session

pytestmark = pytest.mark.sqlite

_COUNT_FAR = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 50000000)"
    " SELECT count(*) FROM c"
)


def spin_for(seconds: float) -> None:
    """Hold this thread's CPU (and the GIL, but for the interpreter's switches)."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


async def test_short_reads_answer_while_the_reader_thread_is_busy(
    sqlite_repo: SessionRepository,
) -> None:
    created = await sqlite_repo.create(new_session())
    await sqlite_repo.append_utterance(
        created.id, NewUtterance(turn_number=1, speaker=Speaker.RESPONDENT, text="hello")
    )
    reader = sqlite_repo.connections[1]
    release = threading.Event()
    busy = asyncio.ensure_future(run_on_thread(reader, release.wait, 10))
    try:
        got = await asyncio.wait_for(sqlite_repo.get(created.id), 2)
        page = await asyncio.wait_for(sqlite_repo.list_sessions(), 2)
        transcript = await asyncio.wait_for(sqlite_repo.list_utterances(created.id), 2)
    finally:
        release.set()
        await busy
    assert got == created
    assert [session.id for session in page.items] == [created.id]
    assert [utterance.text for utterance in transcript.items] == ["hello"]


async def test_a_read_sees_the_write_that_returned_before_it(
    sqlite_repo: SessionRepository,
) -> None:
    created = await sqlite_repo.create(new_session())
    for _ in range(20):
        moved = await sqlite_repo.transition(
            created.id,
            SessionStatus.PAUSED
            if created.status is SessionStatus.ACTIVE
            else SessionStatus.ACTIVE,
        )
        got = await sqlite_repo.get(created.id)
        assert got is not None
        assert (got.status, got.version) == (moved.status, moved.version)
        created = moved


async def test_a_read_past_the_budget_is_given_up_at_once(db_path: Path) -> None:
    await init_database(db_path)
    guard = database_file_guard(db_path)
    assert guard is not None
    reader = InlineReader(str(db_path), guard)
    try:
        began = time.perf_counter()
        result = reader.run(lambda step: step(_COUNT_FAR, {}))
        took = time.perf_counter() - began
        # The same reader goes on serving short reads afterwards.
        again = reader.run(lambda step: step("SELECT 42", {})[0][0])
    finally:
        reader.close()
    assert result is NOT_HERE
    assert took < BUDGET_SECONDS + 0.05
    assert again == 42


async def test_a_short_read_asks_for_no_cpu_clock(
    sqlite_repo: SessionRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The thread's CPU clock is a system call, slow on a busy machine: a lookup by key
    # ends before the first look at the clocks, and never asks for it.
    created = await sqlite_repo.create(new_session())
    looks = []
    real_thread_time = time.thread_time

    def counted() -> float:
        looks.append(1)
        return real_thread_time()

    monkeypatch.setattr(time, "thread_time", counted)
    for _ in range(10):
        assert await sqlite_repo.get(created.id) == created
    assert looks == []
    # A long read still looks, and is given up at its budget.
    guard = database_file_guard(sqlite_repo.db_path)
    assert guard is not None
    reader = InlineReader(sqlite_repo.db_path, guard)
    try:
        assert reader.run(lambda step: step(_COUNT_FAR, {})) is NOT_HERE
    finally:
        reader.close()
    assert looks


def test_a_read_that_waits_for_other_threads_is_not_given_up(db_path: Path) -> None:
    # SQLite lets go of the GIL for every row; while another thread computes, each
    # row waits for its turn: by the clock the read runs long, on the CPU it does not.
    asyncio.run(init_database(db_path))
    guard = database_file_guard(db_path)
    assert guard is not None
    reader = InlineReader(str(db_path), guard)
    rows = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 60) SELECT x FROM c"
    )
    stop = threading.Event()

    def compute() -> None:
        while not stop.is_set():
            spin_for(0.001)

    waited = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)  # as the server sets it
    busy = threading.Thread(target=compute)
    busy.start()
    try:
        # On a loaded machine few reads fall within both limits: try for a while.
        give_up_at = time.perf_counter() + 10
        while time.perf_counter() < give_up_at:
            began, spent = time.perf_counter(), time.thread_time()
            result = reader.run(lambda step: len(step(rows, {})))
            took, spent = time.perf_counter() - began, time.thread_time() - spent
            # Only a read that waited far more than it worked, within both limits,
            # shows the difference.
            if 3 * spent < took and spent < BUDGET_SECONDS and 0.001 < took < WAIT_LIMIT_SECONDS:
                waited.append(result)
                if len(waited) == 3:
                    break
    finally:
        stop.set()
        busy.join()
        sys.setswitchinterval(interval)
        reader.close()
    assert waited
    assert waited == [60] * len(waited)


async def test_a_read_that_fails_in_the_database_is_given_up(db_path: Path) -> None:
    await init_database(db_path)
    guard = database_file_guard(db_path)
    assert guard is not None
    reader = InlineReader(str(db_path), guard)

    def missing_table(step: Step) -> object:
        return step("SELECT * FROM no_such_table", {})

    try:
        assert reader.run(missing_table) is NOT_HERE
        # A connection that only reads: a write asked of it fails, and is given up too.
        assert reader.run(lambda step: step("DELETE FROM sessions", {})) is NOT_HERE
    finally:
        reader.close()


async def test_a_long_read_still_answers_through_the_worker(
    sqlite_repo: SessionRepository, db_path: Path
) -> None:
    await sqlite_repo.ping()
    stamp = "2026-01-01T00:00:00.000000Z"
    with sqlite3.connect(db_path, isolation_level=None) as bulk:
        bulk.execute("BEGIN")
        bulk.executemany(
            "INSERT INTO sessions (id, methodology, concept_id, concept_name, status,"
            " created_at, updated_at) VALUES (?, 'mec', 'c', 'C', 'active', ?, ?)",
            ((f"s{n:07d}", stamp, stamp) for n in range(200_000)),
        )
        bulk.execute("COMMIT")
    reader = sqlite_repo.connections[1]
    release = threading.Event()
    busy = asyncio.ensure_future(run_on_thread(reader, release.wait, 10))
    counting = asyncio.ensure_future(sqlite_repo.count_sessions())
    # A count of 200,000 rows takes longer than the budget: it waits for the worker.
    await asyncio.sleep(0.2)
    assert not counting.done()
    release.set()
    await busy
    assert await counting == 200_000


async def test_reads_past_the_budget_never_leave_the_connection_in_a_snapshot(
    db_path: Path,
) -> None:
    await init_database(db_path)
    guard = database_file_guard(db_path)
    assert guard is not None
    reader = InlineReader(str(db_path), guard)

    def slow(step: Step) -> object:
        spin_for(BUDGET_SECONDS * 1.2)
        return step("SELECT 1", {})

    try:
        # The progress handler looks at the clocks every few thousand steps of a
        # statement, counted over its runs: the cached COMMIT or ROLLBACK of some
        # of these reads runs past the deadline.
        for _ in range(600):
            reader.run(slow)
        answer = reader.run(lambda step: step("SELECT 42", {})[0][0])
    finally:
        reader.close()
    assert answer == 42


@pytest.mark.parametrize("read", ["turns", "versions", "version"])
async def test_a_refusal_read_from_a_replaced_file_is_reported_as_the_replacement(
    sqlite_repo: SessionRepository, db_path: Path, tmp_path: Path, read: str
) -> None:
    await sqlite_repo.create(new_session())
    with sqlite3.connect(tmp_path / "other.db") as other:
        other.execute("CREATE TABLE t (x)")
    other.close()
    os.replace(tmp_path / "other.db", db_path)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "turns": lambda: sqlite_repo.list_turns("nope"),
        "versions": lambda: sqlite_repo.list_versions("nope"),
        "version": lambda: sqlite_repo.get_version("nope", 99),
    }

    with pytest.raises(StorageUnavailableError, match="replaced"):
        await calls[read]()


async def test_the_inline_reader_keeps_a_smaller_page_cache_than_the_worker(
    sqlite_repo: SessionRepository, db_path: Path
) -> None:
    # What exports and long listings pass through must not stay in two 8 MiB caches.
    guard = database_file_guard(db_path)
    assert guard is not None
    inline = InlineReader(str(db_path), guard)
    one_pass = InlineReader(str(db_path), guard, cache_kib=256)
    try:
        inline_cache = inline.run(lambda step: step("PRAGMA cache_size", {})[0][0])
        one_pass_cache = one_pass.run(lambda step: step("PRAGMA cache_size", {})[0][0])
    finally:
        inline.close()
        one_pass.close()
    worker = sqlite_repo.connections[-1]
    ((worker_cache,),) = await run_on_thread(
        worker, lambda: raw_connection(worker).execute("PRAGMA cache_size").fetchall()
    )
    assert inline_cache == -2048
    assert worker_cache == -8192
    assert one_pass_cache == -256
