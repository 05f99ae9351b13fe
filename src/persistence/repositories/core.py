"""The session repository's logic, once for every database.

Each public method is a unit of work (see `statements.Unit`): a generator
that yields statements and receives their rows, and may work in Python
between them. A backend runs it: the SQLite backend on its connection's
thread, inside the write transaction it shares with other units (group
commit), the PostgreSQL backend with `await` on one pooled connection. An
error a unit raises fails that call alone; an atomic unit's writes stand or
fall together (a savepoint, or a transaction). New features add units here,
their SQL in `statements`, and nothing to either backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, Self, TypeVar

from src.core.errors import (
    RepositoryClosedError,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    StaleSessionError,
    StorageUnavailableError,
)
from src.domain.audit import AuditAction, AuditEntry
from src.domain.lifecycle import FINAL_STATUSES, can_transition
from src.domain.models.session import Session, SessionState, SessionStatus
from src.domain.models.utterance import NewUtterance, Speaker, Utterance, metadata_json
from src.domain.search import parse_search_query
from src.persistence.pagination import check_limit, decode_cursor, walk_pages
from src.persistence.repositories import statements as sql
from src.persistence.repositories.audit import (
    AuditPage,
    audit_filters,
    audit_page_from_rows,
    audit_start,
    entries_json,
)
from src.persistence.repositories.common import (
    Row,
    bindable_version,
    list_filters,
    page_from_rows,
    session_from_row,
    state_refusal,
    transition_refusal,
    transition_sources,
)
from src.persistence.repositories.protocol import (
    SearchPage,
    SessionPage,
    TurnRecord,
    UtterancePage,
)
from src.persistence.repositories.search import search_filters, search_page_from_rows, search_start
from src.persistence.repositories.statements import Statement, Unit
from src.persistence.repositories.transcript import (
    start_key,
    utterance_from_row,
    utterance_page_from_rows,
    utterance_refusal,
)

__all__ = ["Backend", "RepositoryCore", "session_insert", "state_update"]

T = TypeVar("T")

# How often a write without an expected version is tried while others keep
# changing its session; past that, the caller is told to try again later.
_MAX_ATTEMPTS = 100


class Backend(Protocol):
    """What differs between databases: connections, running units, driver errors."""

    driver_errors: tuple[type[Exception], ...]
    """The driver's errors that mean the database could not answer a query."""

    async def open(self) -> None:
        """Connect and migrate; close whatever was opened if that fails."""

    async def close(self) -> None:
        """Release every connection; idempotent."""

    async def read(self, unit: Callable[[], Unit[T]]) -> T:
        """Run a unit (made by calling `unit`, again for a retry) that changes nothing."""

    async def write(self, unit: Callable[[], Unit[T]], *, atomic: bool = False) -> T:
        """Run a unit (made by calling `unit`) whose writes are committed before this returns.

        atomic: its writes stand or fall together. Without it, each statement
        commits on its own: enough for a unit whose only write comes first.
        """

    async def storage_problem(self) -> str | None:
        """What is wrong with the storage that a query cannot see; None if nothing."""


def _current(session_id: str) -> Unit[Session | None]:
    rows = yield Statement(sql.SELECT_BY_ID, {"id": session_id})
    return session_from_row(rows[0]) if rows else None


def _exists(session_id: str) -> Unit[bool]:
    return bool((yield Statement(sql.SESSION_EXISTS, {"id": session_id})))


# Write units return rows, not models: the caller builds the model after
# the unit, on the event loop, so the SQLite writer's thread (which holds the
# write lock for a whole batch) does no more Python work than it must.


def _one_row(statement: Statement) -> Unit[Row | None]:
    rows = yield statement
    return rows[0] if rows else None


def _guarded_write(
    statement: Statement,
    refusal: Callable[[Session | None], SessionError],
    expected_version: int | None,
) -> Unit[Row]:
    """Run a write whose WHERE clause holds its preconditions; if it matched no row, raise why.

    The reason is read after the write; on PostgreSQL another process may
    write in between. A write sent with no expected version is then simply
    tried again, so it never fails on a version its caller did not ask for.
    """
    for _ in range(_MAX_ATTEMPTS):
        written = yield from _one_row(statement)
        if written is not None:
            return written
        error = refusal((yield from _current(statement.parameters["id"])))
        if expected_version is not None or not isinstance(error, StaleSessionError):
            raise error
    raise StorageUnavailableError("The session is changing too fast to write now; try again.")


def _append_or_refuse(session_id: str, utterance: NewUtterance) -> Unit[Row]:
    rows = yield _append(session_id, utterance)
    if rows:
        return rows[0]
    raise utterance_refusal(session_id, (yield from _current(session_id)), utterance)


def session_insert(session: Session) -> Statement:
    """The statement that stores a new session (the benchmark runs it bare, too)."""
    return Statement(
        sql.INSERT,
        {
            "id": session.id,
            "methodology": session.methodology,
            "concept_id": session.concept_id,
            "concept_name": session.concept_name,
            "status": session.status.value,
            "turn_count": session.state.turn_count,
            "coverage_score": session.state.coverage_score,
            "last_strategy": session.state.last_strategy,
            "ended_at": session.ended_at,
            "final": session.status in FINAL_STATUSES,
        },
    )


def state_update(session_id: str, state: SessionState, expected_version: int | None) -> Statement:
    """The statement that stores a session's new state (the benchmark runs it bare, too)."""
    return Statement(
        sql.UPDATE_STATE,
        {
            "id": session_id,
            "methodology": state.methodology,
            "concept_id": state.concept_id,
            "concept_name": state.concept_name,
            "turn_count": state.turn_count,
            "coverage_score": state.coverage_score,
            "last_strategy": state.last_strategy,
            "expected_version": bindable_version(expected_version),
        },
    )


def _append(session_id: str, utterance: NewUtterance) -> Statement:
    return Statement(
        sql.APPEND_UTTERANCE,
        {
            "session_id": session_id,
            "turn_number": utterance.turn_number,
            "speaker": utterance.speaker.value,
            "text": utterance.text,
            "metadata": metadata_json(utterance.metadata),
        },
    )


class RepositoryCore:
    """Session CRUD and lifecycle on a database a backend connects to.

    Nothing is opened until first use, inside the running event loop; every
    write is committed before its method returns. `close()` is idempotent,
    and a call after it raises RepositoryClosedError.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._open_lock = asyncio.Lock()
        self._opened = False
        self._closed = False
        self._cursor_key = b""

    async def __aenter__(self) -> Self:
        await self._ready()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the connections; later calls raise RepositoryClosedError. Idempotent."""
        self._closed = True
        await self._backend.close()

    async def create(self, session: Session) -> Session:
        """Store a new session, stamped with the time of the write, at version 1.

        Raises:
            SessionExistsError: a session with this id exists; it is left as it was.
        """
        insert = session_insert(session)
        created = await self._write(lambda: _one_row(insert))
        if created is None:
            raise SessionExistsError(session.id)
        return session_from_row(created)

    async def get(self, session_id: str) -> Session | None:
        """The session with this id, read from the database, or None."""
        return await self._read(lambda: _current(session_id))

    async def update_state(
        self, session_id: str, state: SessionState, *, expected_version: int | None = None
    ) -> Session:
        """Store a new state for the session and bump its version.

        Raises:
            SessionNotFoundError: no session has this id.
            SessionEndedError: the session is completed or abandoned.
            SessionMismatchError: the state names another methodology or concept.
            StaleSessionError: `expected_version` is given and the session is at another.
        """
        written = await self._write(
            lambda: _guarded_write(
                state_update(session_id, state, expected_version),
                lambda current: state_refusal(session_id, current, state, expected_version),
                expected_version,
            )
        )
        return session_from_row(written)

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
        move = Statement(
            sql.TRANSITION,
            {
                "id": session_id,
                "to_status": target.value,
                "from_status_1": first,
                "from_status_2": second,
                "ends": target in FINAL_STATUSES,
                "expected_version": bindable_version(expected_version),
            },
        )

        written = await self._write(
            lambda: _guarded_write(
                move,
                lambda current: transition_refusal(session_id, current, target, expected_version),
                expected_version,
            )
        )
        return session_from_row(written)

    async def list_active(self) -> list[Session]:
        """Every active session, newest first; prefer the bounded `list_sessions` for users."""
        pages = walk_pages(
            lambda cursor: self.list_sessions(status=SessionStatus.ACTIVE, limit=500, cursor=cursor)
        )
        return [session async for session in pages]

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
        key = await self._key()
        parameters: dict[str, Any] = {**filters, "limit": limit + 1}
        if cursor is not None:
            parameters["after_created_at"], parameters["after_id"] = decode_cursor(key, cursor)
        listing = Statement(sql.list_query(tuple(filters), cursor is not None), parameters)

        def unit() -> Unit[SessionPage]:
            return page_from_rows((yield listing), limit, key)

        return await self._read(unit)

    async def delete(self, session_id: str) -> bool:
        """Delete the session; True if it existed."""

        def unit() -> Unit[bool]:
            return bool((yield Statement(sql.DELETE, {"id": session_id})))

        return await self._write(unit)

    async def append_utterance(self, session_id: str, utterance: NewUtterance) -> Utterance:
        """Append one utterance to an active or paused session's record.

        Raises:
            SessionNotFoundError: no session has this id.
            SessionEndedError: the session is completed or abandoned.
            UtteranceExistsError: the session has this speaker's utterance in this turn.
        """

        return utterance_from_row(
            await self._write(lambda: _append_or_refuse(session_id, utterance))
        )

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
        key = await self._key()
        after_turn_key, after_speaker = start_key(after_turn, cursor, limit, key)
        listing = Statement(
            sql.LIST_UTTERANCES,
            {
                "session_id": session_id,
                "after_turn": after_turn_key,
                "after_speaker": after_speaker,
                "limit": limit + 1,
            },
        )

        def unit() -> Unit[UtterancePage]:
            rows = yield listing
            if not rows and not (yield from _exists(session_id)):
                raise SessionNotFoundError(session_id)
            return utterance_page_from_rows(rows, limit, key)

        return await self._read(unit)

    async def last_utterances(self, session_id: str, count: int) -> list[Utterance]:
        """The session's last `count` utterances, in turn order.

        Raises:
            SessionNotFoundError: no session has this id.
            ValueError: `count` is outside 1..500.
        """
        check_limit(count)

        def unit() -> Unit[list[Utterance]]:
            rows = yield Statement(sql.LAST_UTTERANCES, {"session_id": session_id, "count": count})
            if not rows and not (yield from _exists(session_id)):
                raise SessionNotFoundError(session_id)
            return [utterance_from_row(row) for row in reversed(rows)]

        return await self._read(unit)

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

        def unit() -> Unit[tuple[Row, list[Row]]]:
            session = yield from _guarded_write(
                state_update(session_id, state, expected_version),
                lambda current: state_refusal(session_id, current, state, expected_version),
                expected_version,
            )
            stored = []
            for utterance in utterances:
                stored.append((yield from _append_or_refuse(session_id, utterance)))
            return session, stored

        # An utterance refused after the state update undoes it: atomic.
        session, stored = await self._write(unit, atomic=True)
        return TurnRecord(session_from_row(session), [utterance_from_row(row) for row in stored])

    async def list_idle(
        self, status: SessionStatus, *, idle_since: datetime, limit: int = 100
    ) -> list[Session]:
        """Sessions in `status` with no write and no utterance since `idle_since`, oldest first."""
        check_limit(limit)
        idle = Statement(
            sql.LIST_IDLE,
            {"status": SessionStatus(status).value, "idle_since": idle_since, "limit": limit},
        )

        def unit() -> Unit[list[Session]]:
            return [session_from_row(row) for row in (yield idle)]

        return await self._read(unit)

    async def move_idle(
        self,
        from_status: SessionStatus,
        to_status: SessionStatus,
        *,
        idle_since: datetime,
        limit: int = 100,
    ) -> list[Session]:
        """Move up to `limit` sessions in `from_status` with no write and no utterance since
        `idle_since` to `to_status`, oldest first; return them as moved.

        The check and the move are one statement, so a session written in the
        meantime (an utterance appended, say) is left as it is.

        Raises:
            ValueError: the lifecycle does not lead from `from_status` to `to_status`, or
                `limit` is outside 1..500.
        """
        check_limit(limit)
        source, target = SessionStatus(from_status), SessionStatus(to_status)
        if not can_transition(source, target):
            raise ValueError(f"sessions cannot go from {source.value!r} to {target.value!r}")
        move = Statement(
            sql.MOVE_IDLE,
            {
                "status": source.value,
                "to_status": target.value,
                "ends": target in FINAL_STATUSES,
                "idle_since": idle_since,
                "limit": limit,
            },
        )

        def unit() -> Unit[Sequence[Row]]:
            return (yield move)

        return [session_from_row(row) for row in await self._write(unit)]

    async def search(
        self,
        query: str,
        *,
        speaker: Speaker | str | None = None,
        methodology: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SearchPage:
        """One page of the utterances that match `query`, best first, after `cursor` if given.

        The query's words must all match, "quoted phrases" as phrases and
        `word*` as a prefix; case and accents do not count. Nothing in it is
        search syntax (see `src.domain.search`).

        Raises:
            InvalidSearchQueryError: (a ValueError) the query is blank, too long or has no word.
            InvalidCursorError: (a ValueError) the cursor was not handed out by a search.
            ValueError: `limit` is outside 1..500 or `speaker` is not a speaker.
        """
        parsed = parse_search_query(query)
        filters = search_filters(speaker, methodology, limit)
        key = await self._key()
        parameters: dict[str, Any] = {
            **filters,
            **search_start(cursor, key),
            "match": parsed.fts5(),
            "phrases": parsed.phrases(),
            "prefixes": parsed.prefixes(),
            "limit": limit + 1,
        }
        search = Statement(sql.search_query(tuple(filters), cursor is not None), parameters)

        def unit() -> Unit[SearchPage]:
            return search_page_from_rows((yield search), limit, key)

        return await self._read(unit)

    async def ping(self) -> None:
        """Check that the database is there and answers.

        Raises:
            StorageUnavailableError: the database is missing, locked, damaged or unreachable.
        """

        def unit() -> Unit[None]:
            yield Statement(sql.PING, {})

        try:
            await self._read(unit)
        except self._backend.driver_errors as exc:
            raise StorageUnavailableError("The database cannot be read.") from exc
        problem = await self._backend.storage_problem()
        if problem is not None:
            raise StorageUnavailableError(problem)

    async def _ready(self) -> Backend:
        if self._closed:
            raise RepositoryClosedError()
        if not self._opened:
            async with self._open_lock:
                if not self._opened:
                    await self._open()
        return self._backend

    async def _open(self) -> None:
        await self._backend.open()
        try:
            if self._closed:
                raise RepositoryClosedError()

            def unit() -> Unit[bytes]:
                ((key,),) = yield Statement(sql.CURSOR_KEY, {})
                return bytes(key)

            self._cursor_key = await self._backend.read(unit)
        except BaseException:
            await self._backend.close()
            raise
        self._opened = True

    async def _key(self) -> bytes:
        await self._ready()
        return self._cursor_key

    async def _read(self, unit: Callable[[], Unit[T]]) -> T:
        backend = self._backend if self._opened and not self._closed else await self._ready()
        return await backend.read(unit)

    async def _write(self, unit: Callable[[], Unit[T]], *, atomic: bool = False) -> T:
        backend = self._backend if self._opened and not self._closed else await self._ready()
        return await backend.write(unit, atomic=atomic)

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Add entries to the audit log, in their order, as one write."""
        if not entries:
            return
        append = Statement(sql.AUDIT_APPEND, {"entries": entries_json(entries)})

        def unit() -> Unit[None]:
            yield append

        await self._write(unit)

    async def list_audit(
        self,
        *,
        action: AuditAction | str | None = None,
        key_name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> AuditPage:
        """One page of the audit log, newest first, after `cursor` if given.

        Raises:
            InvalidCursorError: (a ValueError) the cursor was not handed out by this listing.
            ValueError: `limit` is outside 1..500 or `action` is not an action.
        """
        filters = audit_filters(action, key_name, limit)
        key = await self._key()
        parameters: dict[str, Any] = {**filters, **audit_start(cursor, key), "limit": limit + 1}
        listing = Statement(sql.audit_list_query(tuple(filters), cursor is not None), parameters)

        def unit() -> Unit[AuditPage]:
            return audit_page_from_rows((yield listing), limit, key)

        return await self._read(unit)
