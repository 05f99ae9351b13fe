"""Session repository on PostgreSQL through an asyncpg connection pool."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import asyncpg
from asyncpg.exceptions import InternalClientError
from asyncpg.pool import PoolConnectionProxy

from src.core.errors import RepositoryClosedError, StorageFullError, StorageUnavailableError
from src.persistence.event_watch import NotifyWatch
from src.persistence.postgres import create_pool, describe_dsn, migrate_postgres
from src.persistence.repositories.core import RepositoryCore
from src.persistence.repositories.protocol import EventWatch
from src.persistence.repositories.statements import Statement, Unit

__all__ = ["PostgresSessionRepository"]

T = TypeVar("T")
Connection = asyncpg.Connection | PoolConnectionProxy

# SQLSTATE classes that mean the server cannot serve now, not that the query
# is wrong: connection exceptions, insufficient resources (disk full, too many
# connections), operator intervention (shutdown, recovery), system errors.
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")
_DISK_FULL = "53100"
_LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout ran out


def _arguments(statement: Statement, *, reading: bool) -> list[Any] | None:
    """The statement's values in $n order; None when it can match no stored row.

    PostgreSQL text cannot hold NUL, so no stored value has one (the models
    refuse it on the way in). A read binds such a value as NULL, which equals
    no stored value either, so that it answers as SQLite does (no row matches,
    a count is 0); a write asking for one is answered with no row.
    """
    query, parameters = statement
    values = [parameters[name] for name in query.names]
    if not any(_holds_nul(value) for value in values):
        return values
    if reading:
        return [None if _holds_nul(value) else value for value in values]
    return None


def _holds_nul(value: Any) -> bool:
    return isinstance(value, str) and "\x00" in value


class _ConnectionLost(Exception):
    """The connection broke under a unit (its server process ended, say); the unit may be fine."""


# How a connection whose server process ended shows, depending on where its
# protocol was. InterfaceError is also asyncpg's word for misuse, so it
# counts only once the connection is closed.
_LOST = (asyncpg.PostgresConnectionError, InternalClientError, ConnectionError)


def _lost(exc: Exception, connection: Connection | None) -> bool:
    if isinstance(exc, asyncpg.InterfaceError):
        return connection is not None and _closed(connection)
    return isinstance(exc, _LOST)


def _closed(connection: Connection) -> bool:
    try:
        return connection.is_closed()
    except asyncpg.InterfaceError:  # the pool has already let go of it
        return True


async def _drive(connection: Connection, unit: Unit[T], *, reading: bool) -> T:
    try:
        statement = next(unit)
        while True:
            values = _arguments(statement, reading=reading)
            rows: Sequence[Any] = []
            if values is not None:
                rows = await connection.fetch(statement.query.postgres, *values)
            statement = unit.send(rows)
    except StopIteration as done:
        result: T = done.value
        return result


async def _run(
    pool: asyncpg.Pool, unit: Unit[T], *, atomic: bool, snapshot: bool = False, reading: bool
) -> T:
    """Run the unit on a connection of the pool; raise _ConnectionLost if the connection broke.

    atomic: in a transaction. snapshot: in a read-only one that sees one snapshot for all
    of the unit's statements (REPEATABLE READ), not one per statement. reading: the unit
    only reads (see `_arguments`).
    """
    done: list[T] = []
    connection: Connection | None = None
    try:
        async with pool.acquire() as connection:
            if atomic:
                async with connection.transaction():
                    done.append(await _drive(connection, unit, reading=reading))
            elif snapshot:
                async with connection.transaction(isolation="repeatable_read", readonly=True):
                    done.append(await _drive(connection, unit, reading=reading))
            else:
                done.append(await _drive(connection, unit, reading=reading))
    except (*_LOST, asyncpg.InterfaceError) as exc:
        if done:
            return done[0]  # committed; only handing the connection back failed
        if not _lost(exc, connection):
            raise
        raise _ConnectionLost() from exc
    return done[0]


class _PostgresBackend:
    """A pool, created on first use; each unit takes a connection of its own."""

    driver_errors: tuple[type[Exception], ...] = (asyncpg.PostgresError,)

    def __init__(self, dsn: str, pool_size: int) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._closed = False
        # However many searches come at once, they hold at most half the pool: other reads
        # and the writes still find connections (a search's time grows with its matches).
        self._searches = asyncio.Semaphore(max(1, pool_size // 2))

    async def open(self) -> None:
        with self._domain_errors():
            pool = await create_pool(self.dsn, self.pool_size)
            try:
                async with pool.acquire() as connection:
                    await migrate_postgres(connection, describe_dsn(self.dsn))
            except BaseException:
                await pool.close()
                raise
            self._pool = pool

    async def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def read(
        self, unit: Callable[[], Unit[T]], *, scan: bool = False, search: bool = False
    ) -> T:
        if search:
            async with self._searches:
                return await self.read(unit, scan=True)
        with self._domain_errors():
            pool = self._connected()
            try:
                return await _run(pool, unit(), atomic=False, snapshot=scan, reading=True)
            except _ConnectionLost:
                # A read changes nothing, so it is tried once more, on a new
                # connection: the others in the pool may have been ended too.
                await pool.expire_connections()
                return await _run(pool, unit(), atomic=False, snapshot=scan, reading=True)

    async def write(
        self, unit: Callable[[], Unit[T]], *, atomic: bool = False, bulk: bool = False
    ) -> T:
        with self._domain_errors():
            return await _run(self._connected(), unit(), atomic=atomic, reading=False)

    async def storage_problem(self) -> str | None:
        return None

    async def watch(self) -> EventWatch:
        return NotifyWatch(self.dsn)

    def _connected(self) -> asyncpg.Pool:
        if self._pool is None:  # closed since the call began
            raise RepositoryClosedError()
        return self._pool

    @contextmanager
    def _domain_errors(self) -> Iterator[None]:
        """Turn driver errors that are not bugs into the store's own errors."""
        try:
            yield
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == _DISK_FULL:
                raise StorageFullError() from exc
            if exc.sqlstate == _LOCK_NOT_AVAILABLE:
                raise StorageUnavailableError("The database is busy; try again shortly.") from exc
            if not exc.sqlstate.startswith(_UNAVAILABLE_CLASSES):
                raise
            raise StorageUnavailableError("The database cannot serve this request now.") from exc
        except (OSError, TimeoutError, _ConnectionLost, asyncpg.InterfaceError) as exc:
            # The pool was closed while this call waited for a connection.
            if self._closed:
                raise RepositoryClosedError() from exc
            if isinstance(exc, asyncpg.InterfaceError):
                raise
            raise StorageUnavailableError("The database cannot be reached.") from exc


class PostgresSessionRepository(RepositoryCore):
    """Session CRUD and lifecycle on PostgreSQL; the same contract as SessionRepository.

    The pool is created on first use, inside the running event loop, and
    closed by `close()`. Each call takes its own connection from the pool, so
    concurrent calls never share one.
    """

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        super().__init__(_PostgresBackend(dsn, pool_size))
