"""Hints that events were written, per database: a wake-up, never the truth.

Whoever waits reads the log after each wake (or timeout): the log is the
truth, a hint only saves waiting for the next poll. SQLite: the database's
`PRAGMA data_version` changes when any connection, in any process, commits.
PostgreSQL: LISTEN for the NOTIFY each event's transaction sends on commit.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import suppress

import asyncpg
import structlog

from src.persistence.repositories.statements import EVENT_CHANNEL

__all__ = ["DataVersionWatch", "NotifyWatch"]

_log = structlog.get_logger(__name__)

# How often SQLite's data_version is looked at: the cost is a call on the
# watch's own connection, on the event loop's thread (a few microseconds: no
# read of the database file's pages), so an idle server stays idle.
_DATA_VERSION_POLL = 0.01


class DataVersionWatch:
    """Wakes when the SQLite database changed; looks through a connection of its own, used
    only from the event loop's thread, that never waits for a lock (None: in-memory, where
    there is no other connection to watch, so each wait simply lasts one poll)."""

    # One server holds the subscribers of its writes: handing out soon after each
    # commit keeps delivery short while every pass costs little next to the writes.
    pace_seconds = 0.025

    def __init__(self, db_path: str | None) -> None:
        self._database: sqlite3.Connection | None = None
        self._seen: int | None = None
        if db_path is None:
            return
        try:
            # timeout=0: a look that would wait for a lock fails at once, and the next
            # poll looks again; the event loop never waits on the file.
            self._database = sqlite3.connect(
                db_path, isolation_level=None, timeout=0, check_same_thread=False
            )
        except sqlite3.Error as exc:
            # Without hints the log is still read at every poll interval.
            _log.warning("event_watch_unavailable", error=type(exc).__name__)

    async def wait(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            version = self._data_version()
            if version is not None and version != self._seen:
                first, self._seen = self._seen is None, version
                if not first:
                    return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(_DATA_VERSION_POLL, remaining))

    def _data_version(self) -> int | None:
        if self._database is None:
            return None
        try:
            row = self._database.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            return None  # the log's own read will say what is wrong
        return None if row is None else int(row[0])

    async def close(self) -> None:
        database, self._database = self._database, None
        if database is not None:
            database.close()


class NotifyWatch:
    """Wakes on a NOTIFY from any server on the PostgreSQL database; reconnects when its
    connection is lost, and wakes once reconnected (notifications in between are lost)."""

    # Several servers may share the database, each reading the log at every pass and
    # sending to its own streams, on machines that may also run the writers: fewer,
    # larger passes leave them the time, and an event still reaches every server's
    # streams in well under a quarter of a second.
    pace_seconds = 0.15

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._connection: asyncpg.Connection | None = None
        self._woken = asyncio.Event()
        self._closed = False

    def _notified(self, *_: object) -> None:
        self._woken.set()

    async def _listening(self) -> bool:
        if self._connection is not None and not self._connection.is_closed():
            return True
        try:
            connection = await asyncpg.connect(self._dsn)
            await connection.add_listener(EVENT_CHANNEL, self._notified)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            _log.warning("event_listen_failed", error=type(exc).__name__)
            return False
        self._connection = connection
        self._woken.set()  # whatever was written while not listening is in the log
        return True

    async def wait(self, seconds: float) -> None:
        if not await self._listening():
            await asyncio.sleep(seconds)
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), seconds)
        self._woken.clear()

    async def close(self) -> None:
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            with suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await connection.close(timeout=2)
