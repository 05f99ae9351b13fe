"""SQLite's event watch: a hint that the file changed, looked for on the event loop's thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from src.persistence.event_watch import DataVersionWatch
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session

pytestmark = pytest.mark.sqlite


async def test_the_watch_wakes_when_another_connection_commits(
    sqlite_repo: SessionRepository,
) -> None:
    await sqlite_repo.create(new_session())
    watch = await sqlite_repo.watch_events()
    try:
        await watch.wait(0.05)  # learns the version it starts from
        waiting = asyncio.ensure_future(watch.wait(10))
        await asyncio.sleep(0.1)
        assert not waiting.done(), "nothing was written: the watch sleeps on"
        began = time.perf_counter()
        with sqlite3.connect(sqlite_repo.db_path) as other:
            other.execute("UPDATE sessions SET concept_name = 'Tea'")
        await asyncio.wait_for(waiting, 5)
        assert time.perf_counter() - began < 1
    finally:
        await watch.close()


async def test_watching_takes_no_thread_of_its_own(sqlite_repo: SessionRepository) -> None:
    # Each look is a call of a few microseconds: a worker thread's hop there and back,
    # a hundred times a second, would keep an idle server busy.
    await sqlite_repo.create(new_session())
    threads = threading.active_count()
    watch = await sqlite_repo.watch_events()
    try:
        await watch.wait(0.1)
        assert threading.active_count() == threads
    finally:
        await watch.close()


async def test_a_watch_that_cannot_open_the_file_waits_out_each_poll(tmp_path: Path) -> None:
    watch = DataVersionWatch(str(tmp_path / "missing-folder" / "store.db"))
    try:
        began = time.perf_counter()
        await watch.wait(0.2)
        assert time.perf_counter() - began >= 0.19
    finally:
        await watch.close()


async def test_a_watch_on_a_damaged_file_is_still_a_watch(sqlite_repo: SessionRepository) -> None:
    # The log's own read says what is wrong (503); the watch only stops hinting.
    for _ in range(20):
        await sqlite_repo.create(new_session())
    with sqlite3.connect(sqlite_repo.db_path) as checkpoint:
        checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(sqlite_repo.db_path, "r+b") as file:
        file.seek(8192)
        file.write(b"\xa5" * 65536)
    watch = await sqlite_repo.watch_events()
    try:
        await watch.wait(0.05)
    finally:
        await watch.close()
