"""Short reads on the event loop's own thread.

A lookup by key takes SQLite a few microseconds; handing it to a worker
thread and back costs tens. So a read first runs here, on a connection of
its own that never waits: one that SQLite would make wait (a lock), that
runs past a small time budget, or that fails in any way is abandoned
(nothing of it was returned) and the caller runs it again on the worker,
which waits, and reports errors, as every read did before.

The budget counts this thread's CPU time, not the clock's: SQLite lets go
of the GIL for every row it steps to, and under load each row then waits
for the other threads' turn, so a page of 50 rows that takes SQLite half a
millisecond can take ten by the clock. Measured on a busy server, a clock
budget gave up nine list pages in ten, to run them again on the worker
behind every other read. A looser limit by the clock still bounds a read
that waits on the disk.

The CPU time is counted from the first look at the clocks, a few thousand
steps into a read: most reads end before it. The thread's CPU clock is a
system call (the wall clock is not), and on a busy machine one took 19 µs
on average, past 8 ms at worst, in every short read that asked for it.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from src.persistence.database import SameFileGuard, connection_pragmas

__all__ = ["CACHE_KIB", "NOT_HERE", "InlineReader"]

T = TypeVar("T")

BUDGET_SECONDS: Final = 0.002
"""The CPU time a read may spend on the event loop's thread before it is handed to the worker."""
WAIT_LIMIT_SECONDS: Final = 0.02
"""How long by the clock a read may hold the event loop, its waits included."""
_CHECK_EVERY: Final = 2000
"""Virtual machine steps between two looks at the clocks (about half a microsecond)."""

# Short reads touch the b-trees' upper pages and a few leaves: SQLite's own 2 MiB
# cache holds them. The store's 8 MiB would only fill, as exports and long
# listings pass through, and stay filled beside the worker's (measured: a study's
# jsonl export at 600 sessions peaked 6.9 MiB above one at 200; 0.1 MiB at 2 MiB).
CACHE_KIB: Final = 2048

NOT_HERE: Final = object()
"""What `InlineReader.run` returns for a read it gave up: run it on the worker."""

Step = Callable[[str, Mapping[str, Any]], list[sqlite3.Row]]


class InlineReader:
    """One read-only connection, used only from the event loop's thread."""

    def __init__(self, db_path: str, guard: SameFileGuard, *, cache_kib: int = CACHE_KIB) -> None:
        # timeout=0: a read that would wait for a lock fails at once (and goes to the worker).
        self._database = sqlite3.connect(
            db_path, isolation_level=None, timeout=0, check_same_thread=False
        )
        try:
            self._database.executescript(
                connection_pragmas(cache_kib=cache_kib) + "PRAGMA query_only = ON;"
            )
        except BaseException:
            self._database.close()
            raise
        self._database.row_factory = sqlite3.Row
        self._database.set_progress_handler(self._over_budget, _CHECK_EVERY)
        self._guard = guard
        self._deadline: float | None = math.inf
        """The CPU time at which a read is given up; None until its first look."""
        self._wait_deadline = math.inf

    def run(self, drive: Callable[[Step], T]) -> T | object:
        """`drive(step)` in one read transaction (one snapshot); NOT_HERE if given up.

        `drive` runs the read's statements through `step`; an exception it raises
        of its own (not the database's) is the read's answer and passes through.
        """
        database = self._database
        self._deadline = None
        self._wait_deadline = time.perf_counter() + WAIT_LIMIT_SECONDS
        try:
            database.execute("BEGIN")
            try:
                result = drive(self._step)
            finally:
                # No budget past the statements: an interrupted COMMIT would leave the
                # connection in its snapshot, holding back every checkpoint.
                self._deadline = self._wait_deadline = math.inf
                if database.in_transaction:
                    database.rollback()
        except sqlite3.Error:
            return NOT_HERE
        except Exception:
            # An answer read from a file swapped under the server (say, "not found")
            # is not one: the worker's read reports what happened.
            if self._guard.read_problem() is not None:
                return NOT_HERE
            raise
        # The file or the log's index was swapped under the server: the worker's
        # read reports it (and does what must be done).
        if self._guard.read_problem() is not None:
            return NOT_HERE
        return result

    def close(self) -> None:
        self._database.close()

    def _step(self, sql: str, parameters: Mapping[str, Any]) -> list[sqlite3.Row]:
        return self._database.execute(sql, parameters).fetchall()

    def _over_budget(self) -> bool:
        if time.perf_counter() > self._wait_deadline:
            return True
        if self._deadline == math.inf:
            return False
        spent = time.thread_time()
        if self._deadline is None:
            # The steps before this first look cost a small part of the budget.
            self._deadline = spent + BUDGET_SECONDS
            return False
        return spent > self._deadline
