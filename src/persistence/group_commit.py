"""Group commit for write units: statements on the event loop's thread, the commit on a worker.

A unit's statements cost SQLite tens of microseconds; a COMMIT costs an
fsync, which may take milliseconds and must not hold the event loop. So a
batch runs its units on the loop's own thread, inside one transaction, and
hands only the COMMIT to the connection's worker thread. Units that arrive
meanwhile queue up and form the next batch: a burst of writes costs one
fsync, and no unit's statements pay two thread switches each.

A batch is handed whole to the worker instead, where it waits and reports
as every write did before, when SQLite would make it wait for a lock
another process holds, when it runs past a small time budget, when the
database fails under it, or when the files are no longer the ones opened.
Nothing of a batch abandoned on the loop is committed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

import aiosqlite

from src.core.metrics import GROUP_COMMIT_WRITES
from src.persistence.database import BUSY_TIMEOUT_SECONDS, SameFileGuard
from src.persistence.sqlite_thread import raw_connection, run_on_thread

__all__ = ["GroupCommit", "Work"]

T = TypeVar("T")

Work = Callable[[sqlite3.Connection, bool], Any]
"""A write unit: called with the connection and whether other units share its
transaction (then it must undo its own writes before it raises, with a SAVEPOINT)."""
Outcome = list[Any] | Exception  # [what the unit returned] or its error

BUDGET_SECONDS: Final = 0.002
"""How long a batch may hold the event loop before it is handed to the worker."""
_CHECK_EVERY: Final = 1000
_WAIT_MS: Final = int(BUSY_TIMEOUT_SECONDS * 1000)


class _GiveUp(Exception):
    """The batch cannot finish on the loop: the worker runs it again from the start."""


class GroupCommit:
    """Runs write units on one connection, a batch at a time, each batch one transaction."""

    def __init__(self, connection: aiosqlite.Connection, guard: SameFileGuard | None) -> None:
        self._connection = connection
        self._database = raw_connection(connection)
        self._guard = guard
        self._queue: list[tuple[Work, bool, asyncio.Future[Any]]] = []
        self._busy = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._flusher: asyncio.Task[None] | None = None
        self._deadline: float | None = None
        self._over = False
        # On the loop a lock held elsewhere must not be waited for; the worker waits.
        self._database.execute("PRAGMA busy_timeout = 0")
        self._database.set_progress_handler(self._over_budget, _CHECK_EVERY)

    async def run(self, work: Work, *, long: bool = False) -> Any:
        """Run `work` in a write transaction; return its result once that is committed.

        long: it may take long (an erasure, a sweep): it runs on the worker.
        """
        if self._busy:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._queue.append((work, long, future))
            return await future
        self._busy = True
        self._idle.clear()
        try:
            (outcome,) = await self._batch([(work, long)])
        finally:
            self._after_batch()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome[0]

    async def run_alone(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """Run `function` on the worker, outside any transaction, with no batch in flight."""
        while self._busy:
            await self._idle.wait()
        self._busy = True
        self._idle.clear()
        try:
            return await run_on_thread(self._connection, _waiting, function, self._database)
        finally:
            self._after_batch()

    async def drain(self) -> None:
        """Wait until the batch in flight and every queued unit have finished."""
        await self._idle.wait()

    def _after_batch(self) -> None:
        if self._queue:
            self._flusher = asyncio.create_task(self._flush())
        else:
            self._busy = False
            self._flusher = None
            self._idle.set()

    async def _flush(self) -> None:
        try:
            while self._queue:
                queued, self._queue = self._queue, []
                outcomes = await self._batch([(work, long) for work, long, _ in queued])
                for (_, _, future), outcome in zip(queued, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome[0])
        finally:
            self._busy = False
            self._flusher = None
            self._idle.set()

    async def _batch(self, works: list[tuple[Work, bool]]) -> list[Outcome]:
        GROUP_COMMIT_WRITES.observe(len(works))
        units = [work for work, _ in works]
        if not any(long for _, long in works):
            try:
                outcomes = self._on_loop(units)
            except _GiveUp:
                pass
            except Exception as exc:  # an error that ended the transaction: none stands
                return [exc] * len(units)
            else:
                if not self._database.in_transaction:
                    return outcomes  # a lone unit that failed: nothing to commit
                try:
                    await run_on_thread(self._connection, _commit, self._database)
                except Exception as exc:  # nothing of the batch is committed
                    return [exc] * len(units)
                return outcomes
        try:
            return await run_on_thread(
                self._connection, _waiting, _run_batch, self._database, units, self._guard
            )
        except Exception as exc:
            return [exc] * len(units)

    def _on_loop(self, units: list[Work]) -> list[Outcome]:
        """The batch's statements, on this thread; the transaction is left open to commit."""
        database = self._database
        try:
            database.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # locked by another process: the worker waits
            raise _GiveUp from exc
        self._over = False
        self._deadline = time.perf_counter() + BUDGET_SECONDS
        try:
            outcomes = _run_units(database, units)
        except BaseException as exc:
            self._deadline = None
            if database.in_transaction:
                database.rollback()
            if isinstance(exc, sqlite3.Error):  # it failed under the batch: the worker reports it
                raise _GiveUp from exc
            raise
        # No budget past the units': an interrupted ROLLBACK or COMMIT would leave the
        # transaction open.
        self._deadline = None
        if (
            self._over
            or any(isinstance(outcome, sqlite3.Error) for outcome in outcomes)
            or (
                database.in_transaction
                and self._guard is not None
                and self._guard.problem() is not None
            )
        ):
            if database.in_transaction:
                database.rollback()
            raise _GiveUp
        return outcomes

    def _over_budget(self) -> bool:
        deadline = self._deadline
        if deadline is not None and time.perf_counter() > deadline:
            self._over = True
            return True
        return False


def _run_units(database: sqlite3.Connection, units: list[Work]) -> list[Outcome]:
    """Every unit in the open transaction; one that fails is undone alone (a lone one:
    the whole transaction), and an error that ended the transaction fails them all."""
    if len(units) == 1:
        try:
            return [[units[0](database, False)]]
        except Exception as exc:
            if not database.in_transaction:
                raise  # it ended the transaction: the caller reports or retries it
            database.execute("ROLLBACK")  # all its writes, with no savepoint to pay for
            return [exc]
    outcomes: list[Outcome] = []
    for unit in units:
        try:
            outcomes.append([unit(database, True)])
        except Exception as exc:
            if not database.in_transaction:
                raise  # it ended the transaction (disk full, I/O): no write of the batch stands
            outcomes.append(exc)
    return outcomes


def _run_batch(
    database: sqlite3.Connection, units: list[Work], guard: SameFileGuard | None
) -> list[Outcome]:
    """On the worker: the batch in one transaction, one commit, one fsync; the guard runs
    last before COMMIT, under the write lock, and whatever it raises fails them all."""
    try:
        database.execute("BEGIN IMMEDIATE")
        outcomes = _run_units(database, units)
        if not database.in_transaction:
            return outcomes  # a lone unit that failed: nothing to commit
        if guard is not None:
            guard(database, True)
        database.execute("COMMIT")
    except Exception as exc:
        if database.in_transaction:
            database.execute("ROLLBACK")
        return [exc] * len(units)
    return outcomes


def _commit(database: sqlite3.Connection) -> None:
    try:
        database.execute("COMMIT")
    except BaseException:
        # A commit that failed (a full disk, say) leaves nothing of the batch behind.
        if database.in_transaction:
            database.execute("ROLLBACK")
        raise


def _waiting(function: Callable[..., T], database: sqlite3.Connection, *args: Any) -> T:
    """Run `function` on the worker with the busy timeout that waits for other processes."""
    database.execute(f"PRAGMA busy_timeout = {_WAIT_MS:d}")
    try:
        return function(database, *args)
    finally:
        database.execute("PRAGMA busy_timeout = 0")
