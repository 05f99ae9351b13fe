"""Session repository for database operations, on SQLite through aiosqlite."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiosqlite
import structlog

from src.core.errors import (
    ParticipantNotFoundError,
    RepositoryClosedError,
    SessionError,
    StorageFullError,
    StorageUnavailableError,
)
from src.domain.models.erasure import Erasure
from src.domain.models.session import utc_now
from src.persistence.batching import WriteBatcher
from src.persistence.database import (
    STORE_CACHE_KIB,
    SameFileGuard,
    Synchronous,
    database_file_guard,
    database_file_problem,
    migrate,
    open_connection,
)
from src.persistence.event_watch import DataVersionWatch
from src.persistence.inline_reads import CACHE_KIB, NOT_HERE, InlineReader, Step
from src.persistence.repositories.core import RepositoryCore
from src.persistence.repositories.protocol import EventWatch
from src.persistence.repositories.statements import Statement, Unit
from src.persistence.sqlite_thread import raw_connection, run_on_thread

__all__ = ["SessionRepository", "sqlite_parameters", "to_text"]

T = TypeVar("T")

_log = structlog.get_logger(__name__)

# SQLite error names (sqlite3 exceptions' sqlite_errorname) that mean the
# database cannot serve the operation now, rather than a bug in the query.
_BUSY = "The database is busy; try again shortly."
_DAMAGED = "The database file is damaged."
# How many virtual machine steps a read takes between two looks at whether the store
# is closing (a few hundred microseconds): reads still queued or running then stop, so
# that a close does not wait for searches whose clients left long ago.
_CLOSING_CHECK_STEPS = 20_000
# A checkpoint starts the -wal file over only at a moment when no reader holds a
# snapshot in it. Reads one after another on the reading threads (searches, say) can
# deny it that moment for as long as they go on, and the file then grows with every
# write. Every LOG_CHECK_EVERY writes its size is looked at; past LOG_LIMIT_BYTES, reads
# bound for the threads wait while the writer checkpoints the whole log and truncates
# it, which waits for the reads already running.
LOG_LIMIT_BYTES = 64 * 1024 * 1024
LOG_CHECK_EVERY = 500
_UNAVAILABLE_ERRORS: Mapping[str, str] = {
    "SQLITE_BUSY": _BUSY,
    # Another process holds the log's index locks in a way SQLite gives up on.
    "SQLITE_PROTOCOL": _BUSY,
    "SQLITE_LOCKED": _BUSY,
    "SQLITE_READONLY": "The database cannot be written.",
    "SQLITE_IOERR": "The database cannot be read or written.",
    "SQLITE_CANTOPEN": "The database cannot be opened.",
    "SQLITE_CORRUPT": _DAMAGED,
    "SQLITE_NOTADB": _DAMAGED,
}


def to_text(moment: datetime) -> str:
    """Fixed-width UTC text, so that text order is time order."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(timespec="microseconds") + "Z"


def sqlite_parameters(statement: Statement, now: str | None) -> Mapping[str, Any]:
    """The statement's values as SQLite binds them: timestamps as text, `now` added."""
    query, parameters = statement
    bound = {**parameters, "now": now}
    for name in query.timestamps:
        if bound[name] is not None:
            bound[name] = to_text(bound[name])
    return bound


def _run(database: sqlite3.Connection, unit: Unit[T], atomic: bool) -> T:
    """Drive a write unit on the connection's thread: inside a batch's transaction, or alone
    with each statement committing as it goes; a savepoint makes an atomic unit one.

    An atomic unit run alone begins its own transaction with BEGIN IMMEDIATE: it may
    read before it writes, and a deferred transaction that another process's commit
    overtook between its read and its write would be refused at once, not waited for.
    """
    own_transaction = atomic and not database.in_transaction
    if own_transaction:
        database.execute("BEGIN IMMEDIATE")
    elif atomic:
        database.execute("SAVEPOINT unit")
    # One moment for the whole unit, taken once it holds the write lock, so writes are
    # stamped in commit order.
    now = to_text(utc_now())
    try:
        statement = next(unit)
        while True:
            rows = database.execute(
                statement.query.sqlite, sqlite_parameters(statement, now)
            ).fetchall()
            statement = unit.send(rows)
    except StopIteration as done:
        result: T = done.value
        if own_transaction:
            _commit(database)
    except BaseException:
        if own_transaction and database.in_transaction:
            database.execute("ROLLBACK")
        elif atomic and database.in_transaction:
            database.execute("ROLLBACK TO unit")
            database.execute("RELEASE unit")
        raise
    if atomic and not own_transaction:
        database.execute("RELEASE unit")
    return result


def _drive(unit: Unit[T], step: Step) -> T:
    """Run a read unit's statements through `step`, one after another; its result."""
    try:
        statement = next(unit)
        while True:
            query, parameters = statement
            if query.timestamps:
                parameters = sqlite_parameters(statement, None)
            statement = unit.send(step(query.sqlite, parameters))
    except StopIteration as done:
        result: T = done.value
        return result


def _read_on_thread(
    connection: aiosqlite.Connection, unit: Callable[[], Unit[T]], guard: SameFileGuard | None
) -> T:
    """A read unit on the connection's own thread, in one read transaction, then the guard."""
    database = raw_connection(connection)
    database.execute("BEGIN")
    try:
        result = _drive(
            unit(), lambda sql, parameters: database.execute(sql, parameters).fetchall()
        )
    except Exception:
        database.rollback()
        if guard is not None:
            # A refusal ("not found") read from a file swapped under the server is not one.
            guard(database, False)
        raise
    database.rollback()
    if guard is not None:
        guard(database, False)
    return result


def _stop_when(database: sqlite3.Connection, closing: Callable[[], bool]) -> None:
    database.set_progress_handler(closing, _CLOSING_CHECK_STEPS)


def _commit(database: sqlite3.Connection) -> None:
    try:
        database.execute("COMMIT")
    except BaseException:
        # A commit that failed (a full disk, say) leaves nothing of the unit behind.
        if database.in_transaction:
            database.execute("ROLLBACK")
        raise


def _unavailable(exc: sqlite3.DatabaseError) -> StorageUnavailableError | None:
    """The domain error for a database that cannot serve now; None for a bug."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    if name.startswith("SQLITE_FULL"):
        return StorageFullError()
    for prefix, detail in _UNAVAILABLE_ERRORS.items():
        if name.startswith(prefix):
            return StorageUnavailableError(detail)
    return None


def _optimize_search_index(database: sqlite3.Connection) -> None:
    # Deleting from FTS5 adds tombstones; the deleted words stay in the old
    # segments until they are merged. 'optimize' merges every segment into one.
    database.execute("INSERT INTO utterance_search (utterance_search) VALUES ('optimize')")


def _empty_log(database: sqlite3.Connection) -> bool:
    """Checkpoint the whole -wal file into the database and truncate it; True if it could.

    Run on the writer between its transactions, never inside one.
    """
    (busy, _, _) = database.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return int(busy) == 0


class _SqliteBackend:
    """Three connections: one writes (group commit), one reads, so that reads go on
    while a write waits for a lock another process holds, and one searches, so that
    a search, whose time grows with its matches, holds up no other read."""

    driver_errors: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)

    def __init__(self, db_path: str, synchronous: Synchronous, read_cache_kib: int | None) -> None:
        self.db_path = db_path
        self.synchronous = synchronous
        self.read_cache_kib = read_cache_kib
        self.connections: tuple[aiosqlite.Connection, ...] = ()
        self._writes: WriteBatcher | None = None
        self._guard: SameFileGuard | None = None
        self._reader: aiosqlite.Connection | None = None
        self._searcher: aiosqlite.Connection | None = None
        self._inline: InlineReader | None = None
        self._closed = False
        self._writes_unchecked = 0
        self._reads_held: asyncio.Event | None = None
        self._log_emptying: asyncio.Task[None] | None = None

    async def open(self) -> None:
        # An in-memory database exists only on its one connection, which reads and
        # searches too, on its own thread: its writes stay there. A file's writer also
        # writes on the event loop's thread.
        in_memory = self.db_path == ":memory:"
        writer = await open_connection(self.db_path, self.synchronous, any_thread=not in_memory)
        opened = [writer]
        try:
            await migrate(writer, self.db_path)
            if not in_memory:
                cache_kib = self.read_cache_kib or STORE_CACHE_KIB
                for _ in ("reader", "searcher"):
                    opened.append(
                        await open_connection(self.db_path, self.synchronous, cache_kib=cache_kib)
                    )
            for reading in opened[1:]:
                await run_on_thread(reading, _stop_when, raw_connection(reading), self._closing)
            same_file = database_file_guard(self.db_path)
            if same_file is not None:
                self._inline = InlineReader(
                    self.db_path,
                    same_file,
                    cache_kib=min(self.read_cache_kib or CACHE_KIB, CACHE_KIB),
                )
        except BaseException:
            for connection in opened:
                await connection.close()
            raise
        self.connections = tuple(opened)
        self._guard = same_file
        self._writes = WriteBatcher(writer, guard=same_file, on_loop=not in_memory)
        self._reader, self._searcher = opened[1 % len(opened)], opened[-1]

    async def close(self) -> None:
        self._closed = True
        writes, self._writes = self._writes, None
        self._reader = self._searcher = None
        if writes is not None:
            await writes.drain()
        inline, self._inline = self._inline, None
        if inline is not None:
            inline.close()
        connections, self.connections = self.connections, ()
        for connection in reversed(connections):
            await connection.close()
        guard, self._guard = self._guard, None
        if guard is not None:
            await asyncio.to_thread(guard.close)

    # Every call passes through read or write: plain try/except, not a
    # context manager, keeps what each call costs on the event loop small.
    async def read(
        self, unit: Callable[[], Unit[T]], *, scan: bool = False, search: bool = False
    ) -> T:
        inline = None if scan or search else self._inline
        if inline is not None:
            answer = inline.run(lambda step: _drive(unit(), step))
            if answer is not NOT_HERE:
                return answer  # type: ignore[return-value]
        held = self._reads_held
        if held is not None:
            await held.wait()
        reader = self._searcher if search else self._reader
        if reader is None:  # closed since the call began
            raise RepositoryClosedError()
        try:
            return await run_on_thread(reader, _read_on_thread, reader, unit, self._guard)
        except (sqlite3.DatabaseError, ValueError) as exc:
            mapped = self._domain_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def write(
        self, unit: Callable[[], Unit[T]], *, atomic: bool = False, bulk: bool = False
    ) -> T:
        writes = self._writes
        if writes is None:
            raise RepositoryClosedError()
        try:
            result = await writes.write_unit(
                lambda database: _run(database, unit(), atomic), bulk=bulk
            )
        except (sqlite3.DatabaseError, ValueError) as exc:
            mapped = self._domain_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        self._writes_unchecked += 1
        if self._writes_unchecked >= LOG_CHECK_EVERY:
            self._writes_unchecked = 0
            self._bound_log(writes)
        return result

    def _bound_log(self, writes: WriteBatcher) -> None:
        """Empty the log, holding reads meanwhile, if it has grown past LOG_LIMIT_BYTES."""
        if self._reads_held is not None or self.db_path == ":memory:":
            return
        try:
            size = os.stat(f"{self.db_path}-wal").st_size
        except OSError:
            return  # none yet, or gone: the guard reports a log swapped under the store
        if size > LOG_LIMIT_BYTES:
            self._reads_held = held = asyncio.Event()
            self._log_emptying = asyncio.create_task(self._empty_log_holding_reads(writes, held))

    async def _empty_log_holding_reads(self, writes: WriteBatcher, held: asyncio.Event) -> None:
        try:
            emptied = await writes.run_alone(_empty_log)
        except (sqlite3.Error, ValueError) as exc:  # closed meanwhile, say
            _log.warning("log_not_emptied", error=type(exc).__name__, detail=str(exc))
        else:
            if not emptied:
                _log.warning("log_not_emptied", reason="a reader holds an older snapshot")
        finally:
            self._reads_held = self._log_emptying = None
            held.set()

    async def storage_problem(self) -> str | None:
        if self.db_path == ":memory:":
            return None
        # What refuses every write until a restart first: the file, or its -wal,
        # is no longer the one the connections opened.
        guard = self._guard
        refused = None if guard is None else await asyncio.to_thread(guard.problem)
        return refused or await asyncio.to_thread(database_file_problem, self.db_path)

    async def watch(self) -> EventWatch:
        if self.db_path == ":memory:":
            return DataVersionWatch(None)
        return DataVersionWatch(self.db_path)

    async def purge_erased(self) -> None:
        """Merge the search index into one segment and empty the log into the file.

        A checkpoint that a reader of an older snapshot keeps from finishing
        (within the busy timeout) is logged; the log's older pages then stay
        until a later checkpoint, at the latest when the last connection closes.
        """
        writes = self._writes
        if writes is None:  # closed since the erasure committed: its answer stands
            _log.error("erasure_purge_failed", error="RepositoryClosedError")
            return
        try:
            await writes.write_unit(_optimize_search_index, bulk=True)
            emptied = await writes.run_alone(_empty_log)
        except (sqlite3.Error, ValueError) as exc:
            # The erasure itself is committed: its answer stands, and the next
            # erasure's purge takes what this one left.
            _log.error("erasure_purge_failed", error=type(exc).__name__, detail=str(exc))
            return
        if not emptied:
            _log.warning("erasure_log_not_emptied", reason="a reader holds an older snapshot")

    def _closing(self) -> bool:
        return self._closed

    def _domain_error(self, exc: sqlite3.DatabaseError | ValueError) -> SessionError | None:
        """The store's own error for a driver error that is not a bug; None for a bug."""
        if isinstance(exc, sqlite3.DatabaseError):
            if self._closed and getattr(exc, "sqlite_errorname", "") == "SQLITE_INTERRUPT":
                return RepositoryClosedError()  # stopped by the close
            return _unavailable(exc)
        # aiosqlite's way of saying its connection was closed under us.
        return RepositoryClosedError() if self._closed else None


class SessionRepository(RepositoryCore):
    """Repository for session CRUD operations and lifecycle, on SQLite.

    Three connections, opened on first use inside the running event loop and
    kept until `close()`: one writes, one reads, so that reads go on while a
    write waits for a lock another process holds, and one searches. Every write
    is committed before its method returns.

    read_cache_kib: the page cache of each reading connection, for a process that
    reads the store once through (an export from the command line), where a
    cache would only fill; by default 8 MiB, 2 MiB for short reads.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "full",
        read_cache_kib: int | None = None,
    ) -> None:
        self.db_path = os.fspath(db_path)
        self.synchronous = synchronous
        self._sqlite = _SqliteBackend(self.db_path, synchronous, read_cache_kib)
        super().__init__(self._sqlite)

    @property
    def connections(self) -> Sequence[aiosqlite.Connection]:
        """The open connections: the writer, the reader, the searcher (none before first
        use or after close; the writer alone for an in-memory database)."""
        return self._sqlite.connections

    async def erase_participant(self, participant_id: str) -> Erasure:
        """Erase the participant's sessions, then purge what SQLite keeps of them.

        Deleting leaves the erased words in the search index's old segments and
        in the -wal file's older page images: the index is merged into one
        segment (secure_delete zeroes the pages it frees) and the log is
        checkpointed and truncated. So is a participant no session names any
        more (the answer is still ParticipantNotFoundError).
        """
        try:
            erased = await super().erase_participant(participant_id)
        except ParticipantNotFoundError:
            # Their sessions may all have been deleted, which leaves the words in
            # the same places: purged all the same.
            await self._sqlite.purge_erased()
            raise
        await self._sqlite.purge_erased()
        return erased
