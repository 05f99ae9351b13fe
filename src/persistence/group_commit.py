"""Group commit: writes that queue up while one is in flight share one transaction."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import aiosqlite

__all__ = ["GroupCommitter"]

Parameters = Mapping[str, Any]
Outcome = list[sqlite3.Row] | sqlite3.Error


def _run_batch(
    connection: aiosqlite.Connection, writes: Sequence[tuple[str, Parameters]]
) -> list[Outcome]:
    """Run on the connection's thread: every write in one transaction, one commit, one fsync."""
    database = connection._conn
    database.execute("BEGIN IMMEDIATE")
    outcomes: list[Outcome] = []
    try:
        for sql, parameters in writes:
            try:
                outcomes.append(database.execute(sql, parameters).fetchall())
            except sqlite3.Error as exc:
                # A failing statement (a CHECK, say) is undone alone and fails
                # alone. An error that ended the whole transaction (disk full,
                # I/O) left nothing of this batch committed: it fails them all.
                if not database.in_transaction:
                    raise
                outcomes.append(exc)
        database.execute("COMMIT")
    except BaseException:
        if database.in_transaction:
            database.execute("ROLLBACK")
        raise
    return outcomes


class GroupCommitter:
    """Serializes the writes of one aiosqlite connection and batches the ones that wait.

    A write that finds no other in flight runs at once, as its own autocommit
    statement. Writes that arrive meanwhile queue up, and the queue runs as one
    transaction in one hop to the connection's thread, so a burst of
    concurrent writes costs one fsync instead of one each. Every caller still
    gets its own rows or its own error, only after the commit that holds it.
    """

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        self._queue: list[tuple[str, Parameters, asyncio.Future[list[sqlite3.Row]]]] = []
        self._busy = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, sql: str, parameters: Parameters) -> list[sqlite3.Row]:
        """Run one write statement and return its rows once it is committed."""
        if self._busy:
            future: asyncio.Future[list[sqlite3.Row]] = asyncio.get_running_loop().create_future()
            self._queue.append((sql, parameters, future))
            return await future
        self._busy = True
        self._idle.clear()
        try:
            return list(await self._connection.execute_fetchall(sql, parameters))
        finally:
            if self._queue:
                self._flusher = asyncio.create_task(self._flush())
            else:
                self._set_idle()

    async def drain(self) -> None:
        """Wait until the write in flight and every queued one has committed or failed."""
        await self._idle.wait()

    def _set_idle(self) -> None:
        self._busy = False
        self._flusher = None
        self._idle.set()

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                writes = [(sql, parameters) for sql, parameters, _ in batch]
                try:
                    # aiosqlite has no public way to run a function on its
                    # thread; _execute is that way in the pinned 0.22 release.
                    outcomes: list[Outcome] = await self._connection._execute(  # type: ignore[no-untyped-call]
                        _run_batch, self._connection, writes
                    )
                except Exception as exc:
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (*_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, sqlite3.Error):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._set_idle()
