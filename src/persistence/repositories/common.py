"""What every backend shares: rows to sessions, why a write was refused, walking pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from src.core.errors import (
    InvalidTransitionError,
    SessionError,
    SessionMismatchError,
    SessionNotFoundError,
    StaleSessionError,
)
from src.domain.lifecycle import can_transition
from src.domain.models.session import (
    SESSION_STATE_IDENTITY,
    Session,
    SessionState,
    SessionStatus,
)

if TYPE_CHECKING:
    from src.persistence.repositories.protocol import SessionRepositoryProtocol

__all__ = [
    "SESSION_COLUMNS",
    "Row",
    "list_every_active",
    "session_from_row",
    "state_refusal",
    "transition_refusal",
]


SESSION_COLUMNS = (
    "id",
    "methodology",
    "concept_id",
    "concept_name",
    "status",
    "turn_count",
    "coverage_score",
    "last_strategy",
    "version",
    "created_at",
    "updated_at",
    "ended_at",
)
"""The order in which every query of either backend returns a session's columns."""


class Row(Protocol):
    """A result row (sqlite3.Row, asyncpg.Record): by name, or unpacked in column order."""

    def __getitem__(self, key: str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


# The compiled validator itself: the same checks as Session.model_validate,
# without its Python wrapper, on the path every row read takes.
_validate_session = Session.__pydantic_validator__.validate_python


def session_from_row(row: Row) -> Session:
    """The Session a `sessions` row stores, its columns in SESSION_COLUMNS order."""
    # Unpacked by position, once: a name lookup in sqlite3.Row scans its
    # columns each time, and this runs for every row of every page.
    (
        session_id,
        methodology,
        concept_id,
        concept_name,
        status,
        turn_count,
        coverage_score,
        last_strategy,
        version,
        created_at,
        updated_at,
        ended_at,
    ) = row
    if isinstance(created_at, str):
        # SQLite keeps fixed-format UTC text; fromisoformat reads it as stdlib UTC.
        created_at = datetime.fromisoformat(created_at)
        updated_at = datetime.fromisoformat(updated_at)
        ended_at = None if ended_at is None else datetime.fromisoformat(ended_at)
    session: Session = _validate_session(
        {
            "id": session_id,
            "methodology": methodology,
            "concept_id": concept_id,
            "concept_name": concept_name,
            "status": status,
            "version": version,
            "created_at": created_at,
            "updated_at": updated_at,
            "ended_at": ended_at,
            "state": {
                "methodology": methodology,
                "concept_id": concept_id,
                "concept_name": concept_name,
                "turn_count": turn_count,
                "coverage_score": coverage_score,
                "last_strategy": last_strategy,
            },
        }
    )
    return session


def _stale(current: Session, expected_version: int | None) -> StaleSessionError:
    expected = current.version if expected_version is None else expected_version
    return StaleSessionError(current.id, expected, current.version)


def state_refusal(
    session_id: str,
    current: Session | None,
    state: SessionState,
    expected_version: int | None,
) -> SessionError:
    """Why a guarded state update matched no row, given the session as it is now."""
    if current is None:
        return SessionNotFoundError(session_id)
    for field in SESSION_STATE_IDENTITY:
        if getattr(state, field) != getattr(current, field):
            return SessionMismatchError(
                session_id, field, getattr(current, field), getattr(state, field)
            )
    return _stale(current, expected_version)


def transition_refusal(
    session_id: str,
    current: Session | None,
    to_status: SessionStatus,
    expected_version: int | None,
) -> SessionError:
    """Why a guarded transition matched no row, given the session as it is now."""
    if current is None:
        return SessionNotFoundError(session_id)
    if not can_transition(current.status, to_status):
        return InvalidTransitionError(session_id, current.status.value, to_status.value)
    return _stale(current, expected_version)


async def list_every_active(repository: SessionRepositoryProtocol) -> list[Session]:
    """Every active session, newest first, read a page at a time so that other calls interleave."""
    sessions: list[Session] = []
    cursor: str | None = None
    while True:
        page = await repository.list_sessions(status=SessionStatus.ACTIVE, limit=500, cursor=cursor)
        sessions.extend(page.items)
        if page.next_cursor is None:
            return sessions
        cursor = page.next_cursor
