"""What every backend shares: rows to sessions and why a write was refused."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from src.core.errors import (
    InvalidTransitionError,
    SessionEndedError,
    SessionError,
    SessionMismatchError,
    SessionNotFoundError,
    StaleSessionError,
    StorageDamagedError,
)
from src.domain.lifecycle import FINAL_STATUSES, can_transition, statuses_leading_to
from src.domain.models.session import (
    MAX_COUNT,
    SESSION_STATE_IDENTITY,
    Session,
    SessionState,
    SessionStatus,
)
from src.persistence.pagination import check_limit, encode_cursor
from src.persistence.repositories.protocol import SessionPage

__all__ = [
    "SESSION_COLUMNS",
    "UTTERANCE_COLUMNS",
    "Row",
    "bindable_version",
    "list_filters",
    "page_from_rows",
    "session_from_row",
    "state_refusal",
    "transition_refusal",
    "transition_sources",
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

UTTERANCE_COLUMNS = "session_id, turn_number, speaker, text, metadata, created_at"
"""The order in which every query returns an utterance's columns."""


class Row(Protocol):
    """A result row (sqlite3.Row, asyncpg.Record): by name, or unpacked in column order."""

    def __getitem__(self, key: Any, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


# The compiled validator itself: the same checks as Session.model_validate,
# without its Python wrapper, on the path every row read takes.
_validate_session = Session.__pydantic_validator__.validate_python


def session_from_row(row: Row) -> Session:
    """The Session a `sessions` row stores, its columns in SESSION_COLUMNS order.

    Raises:
        StorageDamagedError: the row holds what no Session can (written by hand, say).
    """
    try:
        return _session_from_row(row)
    except (ValidationError, ValueError, TypeError) as exc:
        raise StorageDamagedError(str(row[0])) from exc


def _session_from_row(row: Row) -> Session:
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


def bindable_version(expected_version: int | None) -> int | None:
    """The expected version as a database can bind it; one no session can have becomes 0.

    Python integers are unbounded and the version columns are not, so a
    version past MAX_COUNT would fail to bind instead of failing to match.
    """
    if expected_version is None or 0 < expected_version <= MAX_COUNT:
        return expected_version
    return 0


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
    if current.status in FINAL_STATUSES:
        return SessionEndedError(session_id, current.status.value)
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


def transition_sources(to_status: SessionStatus) -> tuple[str | None, str | None]:
    """The statuses a session may leave for `to_status`, padded to two.

    Every status has at most two sources, so one prepared statement with two
    slots serves every transition on either backend.
    """
    sources = sorted(statuses_leading_to(to_status))
    return (sources[0].value, sources[-1].value) if sources else (None, None)


def list_filters(
    status: SessionStatus | str | None,
    methodology: str | None,
    concept_id: str | None,
    limit: int,
) -> dict[str, str]:
    """The listing's filters that are set, by column, always in the same order.

    Raises:
        ValueError: `limit` is outside 1..500 or `status` is not a status.
    """
    check_limit(limit)
    values = {
        "status": None if status is None else SessionStatus(status).value,
        "methodology": methodology,
        "concept_id": concept_id,
    }
    return {column: value for column, value in values.items() if value is not None}


def page_from_rows(rows: Sequence[Row], limit: int, cursor_key: bytes) -> SessionPage:
    """A page from up to `limit + 1` rows: the extra row only says that more remain."""
    items = [session_from_row(row) for row in rows[:limit]]
    more = len(rows) > limit
    return SessionPage(items, encode_cursor(cursor_key, items[-1]) if more else None)
