"""Session repository on PostgreSQL through an asyncpg connection pool."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from src.core.errors import RepositoryClosedError, StorageFullError, StorageUnavailableError
from src.persistence.postgres import create_pool, describe_dsn, migrate_postgres
from src.persistence.repositories.core import RepositoryCore
from src.persistence.repositories.statements import Statement, Unit

__all__ = ["PostgresSessionRepository"]

T = TypeVar("T")

# SQLSTATE classes that mean the server cannot serve now, not that the query
# is wrong: connection exceptions, insufficient resources (disk full, too many
# connections), operator intervention (shutdown, recovery), system errors.
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")
_DISK_FULL = "53100"


def _arguments(statement: Statement) -> list[Any] | None:
    """The statement's values in $n order; None when it can match no stored row.

    PostgreSQL text cannot hold NUL, so no stored value has one (the models
    refuse it on the way in): a statement asking for one is answered, as
    SQLite would answer it, with no row, instead of failing to bind.
    """
    query, parameters = statement
    values = [parameters[name] for name in query.names]
    if any(isinstance(value, str) and "\x00" in value for value in values):
        return None
    return values


async def _run(connection: asyncpg.Connection | PoolConnectionProxy, unit: Unit[T]) -> T:
    try:
        statement = next(unit)
        while True:
            values = _arguments(statement)
            rows: Sequence[Any] = []
            if values is not None:
                rows = await connection.fetch(statement.query.postgres, *values)
            statement = unit.send(rows)
    except StopIteration as done:
        result: T = done.value
        return result


class _PostgresBackend:
    """A pool, created on first use; each unit takes a connection of its own."""

    driver_errors: tuple[type[Exception], ...] = (asyncpg.PostgresError,)

    def __init__(self, dsn: str, pool_size: int) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._closed = False

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

    async def read(self, unit: Unit[T]) -> T:
        with self._domain_errors():
            async with self._connected().acquire() as connection:
                return await _run(connection, unit)

    async def write(self, unit: Unit[T], *, atomic: bool = False) -> T:
        with self._domain_errors():
            async with self._connected().acquire() as connection:
                if not atomic:
                    return await _run(connection, unit)
                async with connection.transaction():
                    return await _run(connection, unit)

    async def storage_problem(self) -> str | None:
        return None

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
            if not exc.sqlstate.startswith(_UNAVAILABLE_CLASSES):
                raise
            raise StorageUnavailableError("The database cannot serve this request now.") from exc
        except (OSError, TimeoutError) as exc:
            raise StorageUnavailableError("The database cannot be reached.") from exc
        except asyncpg.InterfaceError as exc:
            # The pool was closed while this call waited for a connection.
            if self._closed:
                raise RepositoryClosedError() from exc
            raise


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
