"""Session repository on PostgreSQL through an asyncpg connection pool."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import cache
from typing import Any, Self

import asyncpg

from src.core.errors import (
    RepositoryClosedError,
    SessionExistsError,
    StorageFullError,
    StorageUnavailableError,
)
from src.domain.lifecycle import FINAL_STATUSES
from src.domain.models.session import Session, SessionState, SessionStatus
from src.persistence.pagination import decode_cursor
from src.persistence.postgres import create_pool, describe_dsn, migrate_postgres
from src.persistence.repositories.common import (
    list_every_active,
    list_filters,
    page_from_rows,
    session_from_row,
    state_refusal,
    transition_refusal,
    transition_sources,
)
from src.persistence.repositories.protocol import SessionPage

__all__ = ["PostgresSessionRepository"]

# Timestamps come from the database clock (now(): the statement's
# transaction time), so several API processes share one clock.
_INSERT = """
INSERT INTO sessions (
    id, methodology, concept_id, concept_name, status, turn_count, coverage_score,
    last_strategy, version, created_at, updated_at, ended_at
) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, 1, now(), now(),
    CASE WHEN $9::timestamptz IS NULL AND $10 THEN now() ELSE $9::timestamptz END
)
ON CONFLICT (id) DO NOTHING
RETURNING id, methodology, concept_id, concept_name, status, turn_count, coverage_score,
          last_strategy, version, created_at, updated_at, ended_at
"""

_SELECT_BY_ID = """
SELECT id, methodology, concept_id, concept_name, status, turn_count, coverage_score,
       last_strategy, version, created_at, updated_at, ended_at
FROM sessions
WHERE id = $1
"""

_UPDATE_STATE = """
UPDATE sessions
SET turn_count = $5, coverage_score = $6, last_strategy = $7,
    version = version + 1, updated_at = now()
WHERE id = $1 AND methodology = $2 AND concept_id = $3 AND concept_name = $4
  AND ($8::integer IS NULL OR version = $8::integer)
RETURNING id, methodology, concept_id, concept_name, status, turn_count, coverage_score,
          last_strategy, version, created_at, updated_at, ended_at
"""

_TRANSITION = """
UPDATE sessions
SET status = $2, version = version + 1, updated_at = now(),
    ended_at = CASE WHEN $3 THEN now() ELSE ended_at END
WHERE id = $1
  AND status IN ($4, $5)
  AND ($6::integer IS NULL OR version = $6::integer)
RETURNING id, methodology, concept_id, concept_name, status, turn_count, coverage_score,
          last_strategy, version, created_at, updated_at, ended_at
"""

_DELETE = "DELETE FROM sessions WHERE id = $1 RETURNING id"

_PING = "SELECT 1 FROM sessions LIMIT 1"

# SQLSTATE classes that mean the server cannot serve now, not that the query
# is wrong: connection exceptions, insufficient resources (disk full, too many
# connections), operator intervention (shutdown, recovery), system errors.
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")
_DISK_FULL = "53100"


@cache
def _list_query(filtered: tuple[str, ...], after_key: bool) -> str:
    # Only column names from list_filters() are ever joined in; values are bound.
    conditions = [f"{column} = ${n}" for n, column in enumerate(filtered, start=2)]
    if after_key:
        first = len(filtered) + 2
        conditions.append(f"(created_at, id) < (${first}::timestamptz, ${first + 1}::text)")
    where = "WHERE " + " AND ".join(conditions) if conditions else ""
    return (
        "SELECT id, methodology, concept_id, concept_name, status, turn_count, coverage_score,"  # noqa: S608
        " last_strategy, version, created_at, updated_at, ended_at"
        f" FROM sessions {where} ORDER BY created_at DESC, id DESC LIMIT $1"
    )


def _storable(session_id: str) -> bool:
    # PostgreSQL text cannot hold NUL, so no stored session has such an id.
    return "\x00" not in session_id


class PostgresSessionRepository:
    """Session CRUD and lifecycle on PostgreSQL; the same contract as SessionRepository.

    The pool is created on first use, inside the running event loop, and
    closed by `close()`. Each call takes its own connection from the pool, so
    concurrent calls never share one.
    """

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._connect_lock = asyncio.Lock()
        self._closed = False

    async def __aenter__(self) -> Self:
        await self._run(_PING, ())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pool; later calls raise RepositoryClosedError. Idempotent."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def create(self, session: Session) -> Session:
        """Store a new session, stamped with the time of the write, at version 1.

        Raises:
            SessionExistsError: a session with this id exists; it is left as it was.
        """
        rows = await self._run(
            _INSERT,
            (
                session.id,
                session.methodology,
                session.concept_id,
                session.concept_name,
                session.status.value,
                session.state.turn_count,
                session.state.coverage_score,
                session.state.last_strategy,
                session.ended_at,
                session.status in FINAL_STATUSES,
            ),
        )
        if not rows:
            raise SessionExistsError(session.id)
        return session_from_row(rows[0])

    async def get(self, session_id: str) -> Session | None:
        """The session with this id, read from the database, or None."""
        if not _storable(session_id):
            return None
        rows = await self._run(_SELECT_BY_ID, (session_id,))
        return session_from_row(rows[0]) if rows else None

    async def update_state(
        self, session_id: str, state: SessionState, *, expected_version: int | None = None
    ) -> Session:
        """Store a new state for the session and bump its version.

        Raises:
            SessionNotFoundError: no session has this id.
            SessionMismatchError: the state names another methodology or concept.
            StaleSessionError: `expected_version` is given and the session is at another.
        """
        if _storable(session_id):
            rows = await self._run(
                _UPDATE_STATE,
                (
                    session_id,
                    state.methodology,
                    state.concept_id,
                    state.concept_name,
                    state.turn_count,
                    state.coverage_score,
                    state.last_strategy,
                    expected_version,
                ),
            )
            if rows:
                return session_from_row(rows[0])
        current = await self.get(session_id)
        raise state_refusal(session_id, current, state, expected_version)

    async def transition(
        self,
        session_id: str,
        to_status: SessionStatus | str,
        *,
        expected_version: int | None = None,
    ) -> Session:
        """Move the session to another status, as the lifecycle allows, and bump its version.

        Raises:
            SessionNotFoundError: no session has this id.
            InvalidTransitionError: the lifecycle does not allow this move.
            StaleSessionError: `expected_version` is given and the session is at another.
        """
        target = SessionStatus(to_status)
        first, second = transition_sources(target)
        if _storable(session_id):
            rows = await self._run(
                _TRANSITION,
                (
                    session_id,
                    target.value,
                    target in FINAL_STATUSES,
                    first,
                    second,
                    expected_version,
                ),
            )
            if rows:
                return session_from_row(rows[0])
        current = await self.get(session_id)
        raise transition_refusal(session_id, current, target, expected_version)

    async def list_active(self) -> list[Session]:
        """Every active session, newest first; prefer the bounded `list_sessions` for users."""
        return await list_every_active(self)

    async def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        methodology: str | None = None,
        concept_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SessionPage:
        """One page of sessions, newest first (ties by id), after `cursor` if given.

        Raises:
            InvalidCursorError: (a ValueError) the cursor was not handed out by a listing.
            ValueError: `limit` is outside 1..500 or `status` is not a status.
        """
        filters = list_filters(status, methodology, concept_id, limit)
        if not all(_storable(value) for value in filters.values()):
            return SessionPage([], None)
        parameters: list[Any] = [limit + 1, *filters.values()]
        if cursor is not None:
            parameters.extend(decode_cursor(cursor))
        rows = await self._run(_list_query(tuple(filters), cursor is not None), parameters)
        return page_from_rows(rows, limit)

    async def delete(self, session_id: str) -> bool:
        """Delete the session; True if it existed."""
        if not _storable(session_id):
            return False
        return bool(await self._run(_DELETE, (session_id,)))

    async def ping(self) -> None:
        """Check that the database answers.

        Raises:
            StorageUnavailableError: the server cannot be reached or cannot serve.
        """
        try:
            await self._run(_PING, ())
        except asyncpg.PostgresError as exc:
            raise StorageUnavailableError("The database cannot be read.") from exc

    async def _connect(self) -> asyncpg.Pool:
        if self._closed:
            raise RepositoryClosedError()
        if self._pool is not None:
            return self._pool
        async with self._connect_lock:
            if self._pool is None:
                pool = await create_pool(self.dsn, self.pool_size)
                try:
                    async with pool.acquire() as connection:
                        await migrate_postgres(connection, describe_dsn(self.dsn))
                except BaseException:
                    await pool.close()
                    raise
                if self._closed:
                    await pool.close()
                    raise RepositoryClosedError()
                self._pool = pool
            return self._pool

    async def _run(self, sql: str, parameters: Sequence[Any]) -> list[asyncpg.Record]:
        try:
            pool = await self._connect()
            return await pool.fetch(sql, *parameters)
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
