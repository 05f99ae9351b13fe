"""Session repository on PostgreSQL through an asyncpg connection pool."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from functools import cache
from typing import Any, Self

import asyncpg

from src.core.errors import (
    RepositoryClosedError,
    SessionExistsError,
    SessionNotFoundError,
    StorageFullError,
    StorageUnavailableError,
)
from src.domain.lifecycle import FINAL_STATUSES
from src.domain.models.session import Session, SessionState, SessionStatus
from src.domain.models.utterance import NewUtterance, Utterance, metadata_json
from src.persistence.pagination import check_limit, decode_cursor
from src.persistence.postgres import create_pool, describe_dsn, migrate_postgres
from src.persistence.repositories.common import (
    bindable_version,
    list_every_active,
    list_filters,
    page_from_rows,
    session_from_row,
    state_refusal,
    transition_refusal,
    transition_sources,
)
from src.persistence.repositories.protocol import SessionPage, TurnRecord, UtterancePage
from src.persistence.repositories.transcript import (
    start_key,
    turn_refusal,
    utterance_from_row,
    utterance_page_from_rows,
    utterance_refusal,
)

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

# The session must exist and be open: the SELECT yields no row otherwise, so
# nothing is inserted and RETURNING says so.
_APPEND_UTTERANCE = """
INSERT INTO utterances (session_id, turn_number, speaker, text, metadata, created_at)
SELECT id, $2, $3, $4, $5, now()
FROM sessions
WHERE id = $1 AND status IN ('active', 'paused')
ON CONFLICT DO NOTHING
RETURNING session_id, turn_number, speaker, text, metadata, created_at
"""

_LIST_UTTERANCES = """
SELECT session_id, turn_number, speaker, text, metadata, created_at
FROM utterances
WHERE session_id = $1 AND (turn_number, speaker) > ($2, $3)
ORDER BY turn_number, speaker
LIMIT $4
"""

_LAST_UTTERANCES = """
SELECT session_id, turn_number, speaker, text, metadata, created_at
FROM utterances
WHERE session_id = $1
ORDER BY turn_number DESC, speaker DESC
LIMIT $2
"""

_SESSION_EXISTS = "SELECT 1 FROM sessions WHERE id = $1"

# A turn's state update also requires the session to be open.
_UPDATE_OPEN_STATE = _UPDATE_STATE.replace(
    "WHERE id = $1", "WHERE id = $1 AND status IN ('active', 'paused')"
)

# Idle: no write to the session row and no utterance since the cut-off.
_LIST_IDLE = """
SELECT id, methodology, concept_id, concept_name, status, turn_count, coverage_score,
       last_strategy, version, created_at, updated_at, ended_at
FROM sessions
WHERE status = $1 AND updated_at < $2
  AND NOT EXISTS (
      SELECT 1 FROM utterances
      WHERE utterances.session_id = sessions.id AND utterances.created_at >= $2
  )
ORDER BY updated_at, id
LIMIT $3
"""

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


def _state_parameters(
    session_id: str, state: SessionState, expected_version: int | None
) -> tuple[Any, ...]:
    return (
        session_id,
        state.methodology,
        state.concept_id,
        state.concept_name,
        state.turn_count,
        state.coverage_score,
        state.last_strategy,
        bindable_version(expected_version),
    )


def _utterance_parameters(session_id: str, utterance: NewUtterance) -> tuple[Any, ...]:
    return (
        session_id,
        utterance.turn_number,
        utterance.speaker.value,
        utterance.text,
        metadata_json(utterance.metadata),
    )


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
                _UPDATE_STATE, _state_parameters(session_id, state, expected_version)
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
                    bindable_version(expected_version),
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

    async def append_utterance(self, session_id: str, utterance: NewUtterance) -> Utterance:
        """Append one utterance to an active or paused session's record.

        Raises:
            SessionNotFoundError: no session has this id.
            SessionEndedError: the session is completed or abandoned.
            UtteranceExistsError: the session has this speaker's utterance in this turn.
        """
        if _storable(session_id):
            rows = await self._run(_APPEND_UTTERANCE, _utterance_parameters(session_id, utterance))
            if rows:
                return utterance_from_row(rows[0])
        current = await self.get(session_id)
        raise utterance_refusal(session_id, current, utterance)

    async def list_utterances(
        self,
        session_id: str,
        *,
        after_turn: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> UtterancePage:
        """One page of the session's utterances in turn order, interviewer first in a turn.

        Raises:
            SessionNotFoundError: no session has this id.
            InvalidCursorError: (a ValueError) the cursor was not handed out by a listing.
            ValueError: `limit` is outside 1..500 or `after_turn` is negative.
        """
        after_turn_key, after_speaker = start_key(after_turn, cursor, limit)
        if not _storable(session_id):
            raise SessionNotFoundError(session_id)
        rows = await self._run(
            _LIST_UTTERANCES, (session_id, after_turn_key, after_speaker, limit + 1)
        )
        if not rows and not await self._run(_SESSION_EXISTS, (session_id,)):
            raise SessionNotFoundError(session_id)
        return utterance_page_from_rows(rows, limit)

    async def last_utterances(self, session_id: str, count: int) -> list[Utterance]:
        """The session's last `count` utterances, in turn order.

        Raises:
            SessionNotFoundError: no session has this id.
            ValueError: `count` is outside 1..500.
        """
        check_limit(count)
        if not _storable(session_id):
            raise SessionNotFoundError(session_id)
        rows = await self._run(_LAST_UTTERANCES, (session_id, count))
        if not rows and not await self._run(_SESSION_EXISTS, (session_id,)):
            raise SessionNotFoundError(session_id)
        return [utterance_from_row(row) for row in reversed(rows)]

    async def record_turn(
        self,
        session_id: str,
        utterances: Sequence[NewUtterance],
        state: SessionState,
        *,
        expected_version: int | None = None,
    ) -> TurnRecord:
        """Store a turn's utterances and the session's new state together, or neither.

        Raises:
            ValueError: `utterances` is empty.
            SessionNotFoundError, SessionEndedError, SessionMismatchError,
            StaleSessionError, UtteranceExistsError: as their names say; nothing is stored.
        """
        if not utterances:
            raise ValueError("a turn needs at least one utterance")
        results: list[list[asyncpg.Record]] = [[]]
        steps: list[tuple[str, Sequence[Any]]] = [
            (_UPDATE_OPEN_STATE, _state_parameters(session_id, state, expected_version))
        ]
        steps += [
            (_APPEND_UTTERANCE, _utterance_parameters(session_id, utterance))
            for utterance in utterances
        ]
        if _storable(session_id):
            results = await self._run_all_or_nothing(steps)
        if len(results) == len(steps) and results[-1]:
            return TurnRecord(
                session_from_row(results[0][0]),
                [utterance_from_row(rows[0]) for rows in results[1:]],
            )
        refused = None if len(results) == 1 else utterances[len(results) - 2]
        current = await self.get(session_id)
        raise turn_refusal(session_id, current, state, expected_version, refused)

    async def list_idle(
        self, status: SessionStatus, *, idle_since: datetime, limit: int = 100
    ) -> list[Session]:
        """Sessions in `status` with no write and no utterance since `idle_since`, oldest first."""
        check_limit(limit)
        rows = await self._run(_LIST_IDLE, (SessionStatus(status).value, idle_since, limit))
        return [session_from_row(row) for row in rows]

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
        with self._domain_errors():
            pool = await self._connect()
            return await pool.fetch(sql, *parameters)

    async def _run_all_or_nothing(
        self, steps: Sequence[tuple[str, Sequence[Any]]]
    ) -> list[list[asyncpg.Record]]:
        """Run statements in one transaction; the first that returns no row undoes them all."""
        results: list[list[asyncpg.Record]] = []
        with self._domain_errors(), suppress(_Refused):
            pool = await self._connect()
            async with pool.acquire() as connection, connection.transaction():
                for sql, parameters in steps:
                    results.append(await connection.fetch(sql, *parameters))
                    if not results[-1]:
                        raise _Refused()
        return results

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


class _Refused(Exception):
    """Raised inside a transaction to roll it back when a step matched no row."""
