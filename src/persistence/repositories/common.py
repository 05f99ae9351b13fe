"""What every backend shares: rows to sessions, why a write was refused, walking pages."""

from __future__ import annotations

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

__all__ = ["Row", "list_every_active", "session_from_row", "state_refusal", "transition_refusal"]


class Row(Protocol):
    """A result row read by column name (sqlite3.Row, asyncpg.Record)."""

    def __getitem__(self, key: str, /) -> Any: ...


def session_from_row(row: Row) -> Session:
    """The Session a `sessions` row stores."""
    return Session.model_validate(
        {
            "id": row["id"],
            "methodology": row["methodology"],
            "concept_id": row["concept_id"],
            "concept_name": row["concept_name"],
            "status": row["status"],
            "version": row["version"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "ended_at": row["ended_at"],
            "state": {
                "methodology": row["methodology"],
                "concept_id": row["concept_id"],
                "concept_name": row["concept_name"],
                "turn_count": row["turn_count"],
                "coverage_score": row["coverage_score"],
                "last_strategy": row["last_strategy"],
            },
        }
    )


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
