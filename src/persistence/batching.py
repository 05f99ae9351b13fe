"""Statement batching: what arrives while the connection is busy goes in its next hops."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import aiosqlite

from src.core.metrics import GROUP_COMMIT_WRITES
from src.persistence.sqlite_thread import raw_connection, run_on_thread

__all__ = ["Guard", "StatementBatcher"]

Parameters = Mapping[str, Any]
Step = tuple[str, Parameters]
Rows = list[sqlite3.Row]
# The rows of each step that ran, or the error of this statement alone: an
# SQLite error, or a parameter it cannot bind (OverflowError for an int past
# 64 bits, UnicodeEncodeError for a lone surrogate), which sqlite3 raises as
# a Python error of its own before the statement runs.
Outcome = list[Any] | Exception  # or [what a unit of work returned]
Work = Callable[[sqlite3.Connection], Any]  # a unit of work run on the connection's thread
Statement = tuple[bool, tuple[Step, ...] | Work]  # (is_write, steps or work)
Guard = Callable[[sqlite3.Connection, bool], None]
"""Raises if the connection must not serve; runs on its thread, told whether to commit."""
Runner = Callable[[aiosqlite.Connection, Sequence[Statement], Guard | None], list[Outcome]]
T = TypeVar("T")


def _run_reads(
    connection: aiosqlite.Connection, reads: Sequence[Statement], guard: Guard | None = None
) -> list[Outcome]:
    """Run on the connection's thread: each read on its own, then the guard for them all."""
    database = raw_connection(connection)
    outcomes: list[Outcome] = []
    for _, ((sql, parameters),) in reads:  # type: ignore[misc]
        try:
            outcomes.append([database.execute(sql, parameters).fetchall()])
        except Exception as exc:  # handed to this read's caller alone
            outcomes.append(exc)
    if guard is not None:
        try:
            guard(database, False)
        except Exception as exc:  # handed to every caller in the batch
            return [exc] * len(reads)
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
    except Exception:
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


def _run_writes(
    connection: aiosqlite.Connection, writes: Sequence[Statement], guard: Guard | None = None
) -> list[Outcome]:
    """Run on the connection's thread: every write in one transaction, one commit, one fsync.

    The guard runs last before COMMIT, under the write lock: if it raises,
    the whole transaction is rolled back and every caller gets its error.
    """
    database = raw_connection(connection)
    outcomes: list[Outcome] = []
    GROUP_COMMIT_WRITES.observe(len(writes))
    try:
        database.execute("BEGIN IMMEDIATE")
        for _, steps in writes:
            if callable(steps):
                outcomes.append(_run_work(database, steps))
                continue
            try:
                outcomes.append(_run_unit(database, steps))
            except Exception as exc:
                # A failing write (a CHECK, a value it cannot bind) is undone
                # alone and fails alone. An error that ended the transaction
                # (disk full, I/O) left none of these writes committed.
                if not database.in_transaction:
                    raise
                outcomes.append(exc)
        if guard is not None:
            guard(database, True)
        database.execute("COMMIT")
    except Exception as exc:  # handed to every caller in the batch
        if database.in_transaction:
            database.execute("ROLLBACK")
        return [exc] * len(writes)
    return outcomes


class StatementBatcher:
    """Sends an aiosqlite connection's statements in as few hops to its thread as can be.

    A statement that finds the connection idle runs at once, in one hop, as
    its own transaction. Statements that arrive while it is busy
    queue up and go together in its next hop: reads each on their own, then
    writes in one transaction, so a burst of concurrent writes costs one
    fsync instead of one each, and a burst of reads one thread switch. Every
    caller gets its own rows or its own error, a write only after its commit.

    A `guard`, if given, runs on the connection's thread inside every write
    transaction just before COMMIT (called with True), and after every hop
    of reads (with False): whatever it raises fails the whole hop, and no
    write in it is committed.
    """

    def __init__(self, connection: aiosqlite.Connection, *, guard: Guard | None = None) -> None:
        self._connection = connection
        self._guard = guard
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

        It runs inside a write transaction, alone or with the next batch's
        other writes. Before it raises, `work` must undo what it wrote (a
        SAVEPOINT), so that its error fails it alone.
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
            run = _run_writes if statement[0] else _run_reads
            (outcome,) = await self._on_thread(run, [statement])
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
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

    async def _on_thread(self, run: Runner, statements: list[Statement]) -> list[Outcome]:
        return await run_on_thread(self._connection, run, self._connection, statements, self._guard)

    async def _run(
        self,
        run: Runner,
        part: list[tuple[Statement, asyncio.Future[list[Rows]]]],
    ) -> None:
        try:
            outcomes = await self._on_thread(run, [statement for statement, _ in part])
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
