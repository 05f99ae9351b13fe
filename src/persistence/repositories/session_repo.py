"""Session repository for database operations, on SQLite through aiosqlite."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import Any, Self

import aiosqlite

from src.core.errors import (
    RepositoryClosedError,
    SessionExistsError,
    SessionNotFoundError,
    StorageFullError,
    StorageUnavailableError,
)
from src.domain.lifecycle import FINAL_STATUSES
from src.domain.models.session import (
    Session,
    SessionState,
    SessionStatus,
    utc_now,
)
from src.domain.models.utterance import NewUtterance, Utterance, metadata_json
from src.persistence.batching import StatementBatcher
from src.persistence.database import (
    Synchronous,
    database_file_guard,
    database_file_problem,
    migrate,
    open_connection,
)
from src.persistence.pagination import check_limit, decode_cursor
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

__all__ = ["SessionRepository"]

_INSERT = """
INSERT INTO sessions (
    id, methodology, concept_id, concept_name, status, turn_count, coverage_score,
    last_strategy, version, created_at, updated_at, ended_at
) VALUES (
    :id, :methodology, :concept_id, :concept_name, :status, :turn_count, :coverage_score,
    :last_strategy, 1, :now, :now, :ended_at
)
ON CONFLICT (id) DO NOTHING
RETURNING id, methodology, concept_id, concept_name, status, turn_count, coverage_score,
          last_strategy, version, created_at, updated_at, ended_at
"""

_SELECT_BY_ID = """
SELECT id, methodology, concept_id, concept_name, status, turn_count, coverage_score,
       last_strategy, version, created_at, updated_at, ended_at
FROM sessions
WHERE id = :id
"""

# The WHERE clause carries every precondition, so a write is one statement
# and one round trip; when no row comes back, _explain_refusal says why.
_UPDATE_STATE = """
UPDATE sessions
SET turn_count = :turn_count, coverage_score = :coverage_score, last_strategy = :last_strategy,
    version = version + 1, updated_at = :now
WHERE id = :id
  AND methodology = :methodology AND concept_id = :concept_id AND concept_name = :concept_name
  AND (:expected_version IS NULL OR version = :expected_version)
RETURNING id, methodology, concept_id, concept_name, status, turn_count, coverage_score,
          last_strategy, version, created_at, updated_at, ended_at
"""

_TRANSITION = """
UPDATE sessions
SET status = :to_status, version = version + 1, updated_at = :now,
    ended_at = CASE WHEN :ends THEN :now ELSE ended_at END
WHERE id = :id
  AND status IN (:from_status_1, :from_status_2)
  AND (:expected_version IS NULL OR version = :expected_version)
RETURNING id, methodology, concept_id, concept_name, status, turn_count, coverage_score,
          last_strategy, version, created_at, updated_at, ended_at
"""

_DELETE = "DELETE FROM sessions WHERE id = :id RETURNING id"

_PING = "SELECT 1 FROM sessions LIMIT 1"

# The session must exist and be open: the SELECT yields no row otherwise, so
# nothing is inserted and RETURNING says so.
_APPEND_UTTERANCE = """
INSERT INTO utterances (session_id, turn_number, speaker, text, metadata, created_at)
SELECT id, :turn_number, :speaker, :text, :metadata, :now
FROM sessions
WHERE id = :session_id AND status IN ('active', 'paused')
ON CONFLICT DO NOTHING
RETURNING session_id, turn_number, speaker, text, metadata, created_at
"""

_LIST_UTTERANCES = """
SELECT session_id, turn_number, speaker, text, metadata, created_at
FROM utterances
WHERE session_id = :session_id AND (turn_number, speaker) > (:after_turn, :after_speaker)
ORDER BY turn_number, speaker
LIMIT :limit
"""

_LAST_UTTERANCES = """
SELECT session_id, turn_number, speaker, text, metadata, created_at
FROM utterances
WHERE session_id = :session_id
ORDER BY turn_number DESC, speaker DESC
LIMIT :count
"""

_SESSION_EXISTS = "SELECT 1 FROM sessions WHERE id = :id"

# A turn's state update also requires the session to be open.
_UPDATE_OPEN_STATE = _UPDATE_STATE.replace(
    "WHERE id = :id", "WHERE id = :id AND status IN ('active', 'paused')"
)

# Idle: no write to the session row and no utterance since the cut-off.
_LIST_IDLE = """
SELECT id, methodology, concept_id, concept_name, status, turn_count, coverage_score,
       last_strategy, version, created_at, updated_at, ended_at
FROM sessions
WHERE status = :status AND updated_at < :idle_since
  AND NOT EXISTS (
      SELECT 1 FROM utterances
      WHERE utterances.session_id = sessions.id AND utterances.created_at >= :idle_since
  )
ORDER BY updated_at, id
LIMIT :limit
"""

# SQLite error names (sqlite3 exceptions' sqlite_errorname) that mean the
# database cannot serve the operation now, rather than a bug in the query.
_BUSY = "The database is busy; try again shortly."
_DAMAGED = "The database file is damaged."
_UNAVAILABLE_ERRORS: Mapping[str, str] = {
    "SQLITE_BUSY": _BUSY,
    "SQLITE_LOCKED": _BUSY,
    "SQLITE_READONLY": "The database cannot be written.",
    "SQLITE_IOERR": "The database cannot be read or written.",
    "SQLITE_CANTOPEN": "The database cannot be opened.",
    "SQLITE_CORRUPT": _DAMAGED,
    "SQLITE_NOTADB": _DAMAGED,
}


def _unavailable(exc: sqlite3.DatabaseError) -> StorageUnavailableError | None:
    """The domain error for a database that cannot serve now; None for a bug."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    if name.startswith("SQLITE_FULL"):
        return StorageFullError()
    for prefix, detail in _UNAVAILABLE_ERRORS.items():
        if name.startswith(prefix):
            return StorageUnavailableError(detail)
    return None


@cache
def _list_query(filtered: tuple[str, ...], after_key: bool) -> str:
    # Only column names from list_filters() are ever joined in; values are bound.
    conditions = [f"{column} = :{column}" for column in filtered]
    if after_key:
        conditions.append("(created_at, id) < (:after_created_at, :after_id)")
    where = "WHERE " + " AND ".join(conditions) if conditions else ""
    return (
        "SELECT id, methodology, concept_id, concept_name, status, turn_count, coverage_score,"  # noqa: S608
        " last_strategy, version, created_at, updated_at, ended_at"
        f" FROM sessions {where} ORDER BY created_at DESC, id DESC LIMIT :limit"
    )


def _to_text(moment: datetime) -> str:
    """Fixed-width UTC text, so that text order is time order."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(timespec="microseconds") + "Z"


def _insert_parameters(session: Session, now: datetime) -> dict[str, Any]:
    ended_at = session.ended_at
    if ended_at is None and session.status in FINAL_STATUSES:
        ended_at = now
    return {
        "id": session.id,
        "methodology": session.methodology,
        "concept_id": session.concept_id,
        "concept_name": session.concept_name,
        "status": session.status.value,
        "turn_count": session.state.turn_count,
        "coverage_score": session.state.coverage_score,
        "last_strategy": session.state.last_strategy,
        "now": _to_text(now),
        "ended_at": None if ended_at is None else _to_text(ended_at),
    }


def _state_parameters(
    session_id: str, state: SessionState, expected_version: int | None, now: datetime
) -> dict[str, Any]:
    return {
        "id": session_id,
        "methodology": state.methodology,
        "concept_id": state.concept_id,
        "concept_name": state.concept_name,
        "turn_count": state.turn_count,
        "coverage_score": state.coverage_score,
        "last_strategy": state.last_strategy,
        "expected_version": bindable_version(expected_version),
        "now": _to_text(now),
    }


def _utterance_parameters(session_id: str, utterance: NewUtterance, now: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "turn_number": utterance.turn_number,
        "speaker": utterance.speaker.value,
        "text": utterance.text,
        "metadata": metadata_json(utterance.metadata),
        "now": now,
    }


class SessionRepository:
    """Repository for session CRUD operations and lifecycle, on SQLite.

    Two connections, opened on first use inside the running event loop and
    kept until `close()`: one writes, one reads, so that reads go on while a
    write waits for a lock another process holds. Every write is committed
    before its method returns.
    """

    def __init__(
        self, db_path: str | os.PathLike[str], *, synchronous: Synchronous = "full"
    ) -> None:
        self.db_path = os.fspath(db_path)
        self.synchronous = synchronous
        self._connection: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._writes: StatementBatcher | None = None
        self._reads: StatementBatcher | None = None
        self._connect_lock = asyncio.Lock()
        self._closed = False

    async def __aenter__(self) -> Self:
        await self._connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the connection; later calls raise RepositoryClosedError. Idempotent."""
        self._closed = True
        batchers, self._reads, self._writes = (self._reads, self._writes), None, None
        for batcher in batchers:
            if batcher is not None:
                await batcher.drain()
        reader, writer = self._reader, self._connection
        self._reader = self._connection = None
        if reader is not None and reader is not writer:
            await reader.close()
        if writer is not None:
            await writer.close()

    async def create(self, session: Session) -> Session:
        """Store a new session, stamped with the time of the write, at version 1.

        Raises:
            SessionExistsError: a session with this id exists; it is left as it was.
        """
        rows = await self._write(_INSERT, _insert_parameters(session, utc_now()))
        if not rows:
            raise SessionExistsError(session.id)
        return session_from_row(rows[0])

    async def get(self, session_id: str) -> Session | None:
        """The session with this id, read from the database, or None."""
        rows = await self._fetch(_SELECT_BY_ID, {"id": session_id})
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
        rows = await self._write(
            _UPDATE_STATE, _state_parameters(session_id, state, expected_version, utc_now())
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
        rows = await self._write(
            _TRANSITION,
            {
                "id": session_id,
                "to_status": target.value,
                "from_status_1": first,
                "from_status_2": second,
                "ends": target in FINAL_STATUSES,
                "expected_version": bindable_version(expected_version),
                "now": _to_text(utc_now()),
            },
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
        parameters: dict[str, Any] = {**filters, "limit": limit + 1}
        if cursor is not None:
            after_created_at, after_id = decode_cursor(cursor)
            parameters["after_created_at"] = _to_text(after_created_at)
            parameters["after_id"] = after_id
        rows = await self._fetch(_list_query(tuple(filters), cursor is not None), parameters)
        return page_from_rows(rows, limit)

    async def delete(self, session_id: str) -> bool:
        """Delete the session; True if it existed."""
        return bool(await self._write(_DELETE, {"id": session_id}))

    async def append_utterance(self, session_id: str, utterance: NewUtterance) -> Utterance:
        """Append one utterance to an active or paused session's record.

        Raises:
            SessionNotFoundError: no session has this id.
            SessionEndedError: the session is completed or abandoned.
            UtteranceExistsError: the session has this speaker's utterance in this turn.
        """
        rows = await self._write(
            _APPEND_UTTERANCE, _utterance_parameters(session_id, utterance, _to_text(utc_now()))
        )
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
        rows = await self._fetch(
            _LIST_UTTERANCES,
            {
                "session_id": session_id,
                "after_turn": after_turn_key,
                "after_speaker": after_speaker,
                "limit": limit + 1,
            },
        )
        if not rows and not await self._fetch(_SESSION_EXISTS, {"id": session_id}):
            raise SessionNotFoundError(session_id)
        return utterance_page_from_rows(rows, limit)

    async def last_utterances(self, session_id: str, count: int) -> list[Utterance]:
        """The session's last `count` utterances, in turn order.

        Raises:
            SessionNotFoundError: no session has this id.
            ValueError: `count` is outside 1..500.
        """
        check_limit(count)
        rows = await self._fetch(_LAST_UTTERANCES, {"session_id": session_id, "count": count})
        if not rows and not await self._fetch(_SESSION_EXISTS, {"id": session_id}):
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
        now = utc_now()
        steps = [(_UPDATE_OPEN_STATE, _state_parameters(session_id, state, expected_version, now))]
        steps += [
            (_APPEND_UTTERANCE, _utterance_parameters(session_id, utterance, _to_text(now)))
            for utterance in utterances
        ]
        with self._domain_errors():
            results = await (await self._writer()).write_all_or_nothing(steps)
        if results[-1] and len(results) == len(steps):
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
        rows = await self._fetch(
            _LIST_IDLE,
            {
                "status": SessionStatus(status).value,
                "idle_since": _to_text(idle_since),
                "limit": limit,
            },
        )
        return [session_from_row(row) for row in rows]

    async def ping(self) -> None:
        """Check that the database file is there and can be read.

        Raises:
            StorageUnavailableError: the file is missing, locked, damaged or unreadable.
        """
        try:
            await self._fetch(_PING, {})
        except sqlite3.DatabaseError as exc:
            raise StorageUnavailableError("The database cannot be read.") from exc
        if self.db_path != ":memory:":
            problem = await asyncio.to_thread(database_file_problem, self.db_path)
            if problem is not None:
                raise StorageUnavailableError(problem)

    async def _connect(self) -> None:
        if self._closed:
            raise RepositoryClosedError()
        if self._writes is not None:
            return
        async with self._connect_lock:
            if self._writes is None:
                writer = await open_connection(self.db_path, self.synchronous)
                opened = [writer]
                try:
                    await migrate(writer, self.db_path)
                    same_file = database_file_guard(self.db_path)
                    # An in-memory database exists only on its one connection.
                    reader = writer
                    if self.db_path != ":memory:":
                        reader = await open_connection(self.db_path, self.synchronous)
                        opened.append(reader)
                    if self._closed:
                        raise RepositoryClosedError()
                except BaseException:
                    for connection in opened:
                        await connection.close()
                    raise
                self._connection, self._reader = writer, reader
                self._reads = StatementBatcher(reader, guard=same_file)
                self._writes = StatementBatcher(writer, guard=same_file)

    @contextmanager
    def _domain_errors(self) -> Iterator[None]:
        """Turn driver errors that are not bugs into the store's own errors."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            unavailable = _unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc
        except ValueError as exc:
            # aiosqlite's way of saying its connection was closed under us.
            if self._closed:
                raise RepositoryClosedError() from exc
            raise

    async def _fetch(self, sql: str, parameters: Mapping[str, Any]) -> Sequence[sqlite3.Row]:
        with self._domain_errors():
            if self._reads is None:
                await self._connect()
            assert self._reads is not None
            return await self._reads.read(sql, parameters)

    async def _write(self, sql: str, parameters: Mapping[str, Any]) -> Sequence[sqlite3.Row]:
        with self._domain_errors():
            return await (await self._writer()).write(sql, parameters)

    async def _writer(self) -> StatementBatcher:
        if self._writes is None:
            await self._connect()
        assert self._writes is not None
        return self._writes
