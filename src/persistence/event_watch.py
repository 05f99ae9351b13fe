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

import aiosqlite
import asyncpg
import structlog

from src.persistence.repositories.statements import EVENT_CHANNEL

__all__ = ["DataVersionWatch", "NotifyWatch"]

_log = structlog.get_logger(__name__)

# How often SQLite's data_version is looked at: the cost is a call on the
# watch's own connection, no read of the database file's pages.
_DATA_VERSION_POLL = 0.01


class DataVersionWatch:
    """Wakes when the SQLite database changed; on its own connection (None: in-memory, where
    there is no other connection to watch, so each wait simply lasts one poll)."""

    # One server holds the subscribers of its writes: handing out soon after each
    # commit keeps delivery short while every pass costs little next to the writes.
    pace_seconds = 0.025

    def __init__(self, connection: aiosqlite.Connection | None) -> None:
        self._connection = connection
        self._seen: int | None = None

    async def wait(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            version = await self._data_version()
            if version is not None and version != self._seen:
                first, self._seen = self._seen is None, version
                if not first:
                    return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(_DATA_VERSION_POLL, remaining))

    async def _data_version(self) -> int | None:
        if self._connection is None:
            return None
        try:
            async with self._connection.execute("PRAGMA data_version") as cursor:
                row = await cursor.fetchone()
        except (sqlite3.Error, ValueError):
            return None  # the log's own read will say what is wrong
        return None if row is None else int(row[0])

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()


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
