"""Statement batching: what arrives while the connection is busy goes in its next hops."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import aiosqlite

from src.persistence.sqlite_thread import raw_connection, run_on_thread

__all__ = ["StatementBatcher"]

Parameters = Mapping[str, Any]
Step = tuple[str, Parameters]
Rows = list[sqlite3.Row]
Work = Callable[[sqlite3.Connection], Any]  # a unit of work run on the connection's thread
Outcome = list[Any] | Exception  # the rows of each step that ran, or [what the work returned]
Statement = tuple[bool, tuple[Step, ...] | Work]  # (is_write, steps or work)
T = TypeVar("T")


def _run_reads(connection: aiosqlite.Connection, reads: Sequence[Statement]) -> list[Outcome]:
    """Run on the connection's thread: each read on its own."""
    database = raw_connection(connection)
    outcomes: list[Outcome] = []
    for _, ((sql, parameters),) in reads:  # type: ignore[misc]
        try:
            outcomes.append([database.execute(sql, parameters).fetchall()])
        except sqlite3.Error as exc:
            outcomes.append(exc)
    return outcomes


def _run_unit(database: sqlite3.Connection, steps: tuple[Step, ...]) -> list[Rows]:
    """Run steps that stand or fall together; the first to return no row undoes them all."""
    if len(steps) == 1:
        # One statement is atomic on its own: no savepoint needed.
        ((sql, parameters),) = steps
        return [database.execute(sql, parameters).fetchall()]
    database.execute("SAVEPOINT unit")
    results: list[Rows] = []
    try:
        for sql, parameters in steps:
            results.append(database.execute(sql, parameters).fetchall())
            if not results[-1]:
                database.execute("ROLLBACK TO unit")
                break
    except sqlite3.Error:
        if database.in_transaction:
            database.execute("ROLLBACK TO unit")
            database.execute("RELEASE unit")
        raise
    database.execute("RELEASE unit")
    return results


def _run_work(database: sqlite3.Connection, work: Work) -> Outcome:
    """Run one unit of work; any error it raises (it undoes its own writes) fails it alone."""
    try:
        return [work(database)]
    except Exception as exc:
        if not database.in_transaction:
            raise  # it ended the transaction (disk full, I/O): no write of the batch stands
        return exc


def _run_writes(connection: aiosqlite.Connection, writes: Sequence[Statement]) -> list[Outcome]:
    """Run on the connection's thread: every write in one transaction, one commit, one fsync."""
    database = raw_connection(connection)
    outcomes: list[Outcome] = []
    try:
        database.execute("BEGIN IMMEDIATE")
        for _, steps in writes:
            if callable(steps):
                outcomes.append(_run_work(database, steps))
                continue
            try:
                outcomes.append(_run_unit(database, steps))
            except sqlite3.Error as exc:
                # A failing write (a CHECK, say) is undone alone and fails
                # alone. An error that ended the transaction (disk full, I/O)
                # left none of these writes committed.
                if not database.in_transaction:
                    raise
                outcomes.append(exc)
        database.execute("COMMIT")
    except sqlite3.Error as exc:
        if database.in_transaction:
            database.execute("ROLLBACK")
        return [exc] * len(writes)
    return outcomes


class StatementBatcher:
    """Sends an aiosqlite connection's statements in as few hops to its thread as can be.

    A statement that finds the connection idle runs at once, in one hop, as
    its own autocommit transaction. Statements that arrive while it is busy
    queue up and go together in its next hop: reads each on their own, then
    writes in one transaction, so a burst of concurrent writes costs one
    fsync instead of one each, and a burst of reads one thread switch. Every
    caller gets its own rows or its own error, a write only after its commit.
    """

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        self._queue: list[tuple[Statement, asyncio.Future[list[Rows]]]] = []
        self._busy = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._flusher: asyncio.Task[None] | None = None

    async def read(self, sql: str, parameters: Parameters) -> Rows:
        """Run one statement that changes nothing and return its rows."""
        (rows,) = await self._submit((False, ((sql, parameters),)))
        return rows

    async def write(self, sql: str, parameters: Parameters) -> Rows:
        """Run one write statement and return its rows once it is committed."""
        (rows,) = await self._submit((True, ((sql, parameters),)))
        return rows

    async def write_all_or_nothing(self, steps: Sequence[Step]) -> list[Rows]:
        """Run write statements that stand or fall together; return each one's rows.

        Each must return at least one row (RETURNING): the first that returns
        none undoes them all, and the result ends with its empty rows.
        """
        return await self._submit((True, tuple(steps)))

    async def write_unit(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` on the connection's thread; return its result once its writes are committed.

        Run at once when the connection is idle (its statements commit as they
        go), otherwise inside the next batch's write transaction. Either way,
        before it raises, `work` must undo what it wrote (a SAVEPOINT), so
        that its error fails it alone.
        """
        (result,) = await self._submit((True, work))
        return result  # type: ignore[return-value]

    async def drain(self) -> None:
        """Wait until the statement in flight and every queued one have finished."""
        await self._idle.wait()

    async def _submit(self, statement: Statement) -> list[Rows]:
        if self._busy:
            future: asyncio.Future[list[Rows]] = asyncio.get_running_loop().create_future()
            self._queue.append((statement, future))
            return await future
        self._busy = True
        self._idle.clear()
        try:
            _, steps = statement
            if callable(steps):
                # Alone, a unit needs no shared transaction: each statement
                # commits on its own, or its own savepoint makes it one.
                database = raw_connection(self._connection)
                return [await run_on_thread(self._connection, steps, database)]
            if len(steps) == 1:
                ((sql, parameters),) = steps
                return [list(await self._connection.execute_fetchall(sql, parameters))]
            unit: asyncio.Future[list[Rows]] = asyncio.get_running_loop().create_future()
            await self._run(_run_writes, [(statement, unit)])
            return await unit
        finally:
            if self._queue:
                self._flusher = asyncio.create_task(self._flush())
            else:
                self._set_idle()

    def _set_idle(self) -> None:
        self._busy = False
        self._flusher = None
        self._idle.set()

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                # Reads first, in a hop of their own: their callers go on
                # (building models, say) while the writes commit and fsync, and
                # none of them can see a write before it is committed.
                for is_write, run in ((False, _run_reads), (True, _run_writes)):
                    part = [(st, future) for st, future in batch if st[0] is is_write]
                    if part:
                        await self._run(run, part)
        finally:
            self._set_idle()

    async def _run(
        self,
        run: Callable[[aiosqlite.Connection, Sequence[Statement]], list[Outcome]],
        part: list[tuple[Statement, asyncio.Future[list[Rows]]]],
    ) -> None:
        try:
            outcomes = await run_on_thread(
                self._connection, run, self._connection, [statement for statement, _ in part]
            )
        except Exception as exc:
            for _, future in part:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), outcome in zip(part, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
