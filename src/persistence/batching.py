"""Write batching: what arrives while the connection is busy goes in its next hop.

Batches run on the connection's worker thread. A batcher made with
`on_loop=True` runs a write that arrives alone on the event loop's own
thread instead: handing it to the worker and its answer back costs two
thread wake-ups, about 100 microseconds on a virtual machine, a third of
what the write itself takes. Writes that arrive together (in one round of
the event loop's callbacks) still go to the worker as one transaction: there
their commit's wait for the disk overlaps the event loop's work on the next
ones. Neither does what would hold the event loop run on it: a write whose
size grows with the data (`bulk`), one that would wait for another
connection's write lock, and any write after one that waited (on the disk,
or for the GIL) longer than `HERE_WAIT_LIMIT_SECONDS`, until a write on the
worker has waited less: a slow disk holds the event loop once, not again
and again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Final, TypeVar

import aiosqlite

from src.core.metrics import GROUP_COMMIT_WRITES
from src.persistence.database import BUSY_TIMEOUT_SECONDS
from src.persistence.sqlite_thread import raw_connection, run_on_thread

__all__ = ["Guard", "WriteBatcher"]

Work = Callable[[sqlite3.Connection], Any]
"""A unit of work run on the connection's thread; before it raises, it undoes its writes."""
Outcome = list[Any] | Exception
"""What a unit of work returned (in a list: an exception it returns is not its error), or
the error it fails with alone."""
Guard = Callable[[sqlite3.Connection, bool], None]
"""Raises if the connection must not serve; runs on its thread, told whether to commit."""
Runner = Callable[[sqlite3.Connection, Sequence[Work], Guard | None], list[Outcome]]
T = TypeVar("T")

HERE_WAIT_LIMIT_SECONDS: Final = 0.005
"""How long by the clock, beyond its own CPU time, a write may hold the event loop."""
_WAIT_MS: Final = int(BUSY_TIMEOUT_SECONDS * 1000)

# Each write of a batch runs in a savepoint. SQLite keeps the record of the pages it
# changes (its journal) in memory up to 64 KiB and spills the rest to a temporary file:
# for a turn, that file costs a third of the turn's time. A batch of small writes keeps
# its journals in memory whatever their size; a batch with a bulk write (a delete, a
# fork, an erasure, a sweep), whose journal grows with the rows it takes, spills to a
# file as SQLite does by default, so that memory does not grow with it.
_JOURNALS_IN_MEMORY: Final = "PRAGMA temp_store = MEMORY"
_JOURNALS_SPILL_TO_FILES: Final = "PRAGMA temp_store = DEFAULT"


def _run_alone(
    database: sqlite3.Connection, work: Sequence[Work], guard: Guard | None = None
) -> list[Outcome]:
    """One unit of work, outside any transaction."""
    (run,) = work
    try:
        return [[run(database)]]
    except Exception as exc:
        return [exc]


class _LockTaken(Exception):
    """Another connection holds the write lock: the batch waits for it on the worker."""


def _run_work(database: sqlite3.Connection, work: Work) -> Outcome:
    """Run one unit of work; any error it raises (it undoes its own writes) fails it alone."""
    try:
        return [work(database)]
    except Exception as exc:
        if not database.in_transaction:
            raise  # it ended the transaction (disk full, I/O): no write of the batch stands
        return exc


def _begin(database: sqlite3.Connection, *, wait: bool) -> None:
    """BEGIN IMMEDIATE; without `wait`, raise _LockTaken at once if another connection writes."""
    if wait:
        database.execute("BEGIN IMMEDIATE")
        return
    database.execute("PRAGMA busy_timeout = 0")
    try:
        database.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "").startswith("SQLITE_BUSY"):
            raise _LockTaken() from exc
        raise
    finally:
        # Whatever runs next on the connection (a checkpoint, say) waits as it should.
        database.execute(f"PRAGMA busy_timeout = {_WAIT_MS}")


def _run_writes(
    database: sqlite3.Connection,
    writes: Sequence[Work],
    guard: Guard | None = None,
    *,
    wait: bool = True,
) -> list[Outcome]:
    """Every write in one transaction, one commit, one fsync.

    The guard runs last before COMMIT, under the write lock: if it raises,
    the whole transaction is rolled back and every caller gets its error.
    Without `wait`, a write lock held by another connection raises _LockTaken
    before anything ran.
    """
    outcomes: list[Outcome] = []
    try:
        _begin(database, wait=wait)
    except _LockTaken:
        raise
    except Exception as exc:
        return [exc] * len(writes)
    GROUP_COMMIT_WRITES.observe(len(writes))
    try:
        for work in writes:
            outcomes.append(_run_work(database, work))
        if guard is not None:
            guard(database, True)
        database.execute("COMMIT")
    except Exception as exc:  # handed to every caller in the batch
        if database.in_transaction:
            database.execute("ROLLBACK")
        return [exc] * len(writes)
    return outcomes


class _Pending:
    """A unit of work waiting for its batch, with its caller's future; `alone`: to run
    outside any transaction; `bulk`: its rows grow with the data."""

    __slots__ = ("alone", "bulk", "future", "work")

    def __init__(
        self, work: Work, future: asyncio.Future[list[Any]], *, alone: bool, bulk: bool
    ) -> None:
        self.work = work
        self.future = future
        self.alone = alone
        self.bulk = bulk


class WriteBatcher:
    """Runs an aiosqlite connection's writes in as few transactions as can be.

    A write that finds the connection idle runs at once, in one hop, as its
    own transaction. Writes that arrive while it is busy queue up and go
    together in its next hop, in one transaction, so a burst of concurrent
    writes costs one fsync instead of one each. Every caller gets its own
    result or its own error, and only after its commit.

    With `on_loop`, a write that arrives alone runs on the event loop's thread
    instead, while that is quick (see the module's docstring); the connection
    must then be open with check_same_thread=False. Either way one batch at a
    time uses it.

    A `guard`, if given, runs on the connection's thread inside every write
    transaction just before COMMIT (called with True): whatever it raises
    fails the whole transaction, and no write in it is committed.
    """

    def __init__(
        self,
        connection: aiosqlite.Connection,
        *,
        guard: Guard | None = None,
        on_loop: bool = False,
    ) -> None:
        self._connection = connection
        self._guard = guard
        self._on_loop = on_loop
        self._disk_slow = False  # the last write measured waited past the limit
        self._journals_in_memory = False  # SQLite's default until a batch says otherwise
        self._queue: list[_Pending] = []
        self._busy = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._flusher: asyncio.Task[None] | None = None

    async def write_unit(self, work: Callable[[sqlite3.Connection], T], *, bulk: bool = False) -> T:
        """Run `work`; return its result once its writes are committed.

        It runs inside a write transaction, alone or with the next batch's
        other writes. Before it raises, `work` must undo what it wrote (a
        SAVEPOINT), so that its error fails it alone. bulk: its rows grow
        with the data, so it never runs on the event loop's thread.
        """
        (result,) = await self._submit(work, bulk=bulk)
        return result  # type: ignore[no-any-return]

    async def run_alone(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` on the worker, outside any transaction, in its turn between batches."""
        (result,) = await self._submit(work, alone=True)
        return result  # type: ignore[no-any-return]

    async def drain(self) -> None:
        """Wait until the write in flight and every queued one have finished."""
        await self._idle.wait()

    async def _submit(self, work: Work, *, bulk: bool = False, alone: bool = False) -> list[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._queue.append(_Pending(work, future, alone=alone, bulk=bulk))
        if not self._busy:
            self._busy = True
            self._idle.clear()
            here = not (bulk or alone or self._disk_slow)
            if self._on_loop and here:
                # At the end of this round of callbacks, with whatever the round adds.
                loop.call_soon(self._flush_here)
            else:
                self._flush_on_worker()
        # The batch runs in a task of the batcher's own: a caller cancelled meanwhile
        # stops waiting, but the connection stays busy until the batch is done.
        return await future

    def _flush_on_worker(self) -> None:
        self._flusher = asyncio.create_task(self._flush())

    def _set_idle(self) -> None:
        self._busy = False
        self._flusher = None
        self._idle.set()

    def _flush_here(self) -> None:
        if len(self._queue) > 1:
            # Writes that arrive together go to the worker: there their commit's
            # wait for the disk overlaps the event loop's work on the next ones.
            self._flush_on_worker()
            return
        pending = self._queue.pop()
        try:
            (outcome,) = self._timed_writes(
                raw_connection(self._connection), [pending.work], self._guard, wait=False
            )
        except _LockTaken:
            # Another connection writes: wait for its lock on the worker.
            self._queue.append(pending)
        except Exception as exc:  # the connection was closed under the write, say
            _settle([pending], [exc])
        else:
            _settle([pending], [outcome])
        finally:
            if self._queue:
                self._flush_on_worker()
            else:
                self._set_idle()

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                writes = [pending for pending in batch if not pending.alone]
                if writes:
                    small = not any(pending.bulk for pending in writes)
                    await self._run(partial(self._timed_writes, small=small), writes)
                for pending in batch:
                    if pending.alone:
                        await self._run(_run_alone, [pending])
        finally:
            self._set_idle()

    def _timed_writes(
        self,
        database: sqlite3.Connection,
        writes: Sequence[Work],
        guard: Guard | None = None,
        *,
        wait: bool = True,
        small: bool = True,
    ) -> list[Outcome]:
        """_run_writes, its journals where `small` says, noting whether it waited (beyond
        its thread's CPU time) past the limit."""
        if small != self._journals_in_memory:
            # Outside any transaction, as SQLite requires.
            database.execute(_JOURNALS_IN_MEMORY if small else _JOURNALS_SPILL_TO_FILES)
            self._journals_in_memory = small
        clock, cpu = time.perf_counter(), time.thread_time()
        try:
            return _run_writes(database, writes, guard, wait=wait)
        finally:
            waited = (time.perf_counter() - clock) - (time.thread_time() - cpu)
            self._disk_slow = waited > HERE_WAIT_LIMIT_SECONDS

    async def _on_thread(self, run: Runner, works: list[Work]) -> list[Outcome]:
        database = raw_connection(self._connection)
        return await run_on_thread(self._connection, run, database, works, self._guard)

    async def _run(self, run: Runner, part: list[_Pending]) -> None:
        try:
            outcomes = await self._on_thread(run, [pending.work for pending in part])
        except Exception as exc:
            outcomes = [exc] * len(part)
        _settle(part, outcomes)


def _settle(part: list[_Pending], outcomes: Sequence[Outcome]) -> None:
    """Hand each caller still waiting its result or its error."""
    for pending, outcome in zip(part, outcomes, strict=True):
        if pending.future.done():
            continue
        if isinstance(outcome, Exception):
            pending.future.set_exception(outcome)
        else:
            pending.future.set_result(outcome)
