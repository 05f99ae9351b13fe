"""What every backend shares: rows to sessions and why a write was refused."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

import structlog
from pydantic import ValidationError

from src.core.errors import (
    InvalidTransitionError,
    SessionError,
    SessionNotFoundError,
    StaleSessionError,
    StorageDamagedError,
)
from src.domain.lifecycle import can_transition, statuses_leading_to
from src.domain.models.session import (
    MAX_COUNT,
    Session,
    SessionStatus,
)
from src.persistence.pagination import check_limit, encode_cursor, encode_session_key
from src.persistence.repositories.protocol import SessionPage

__all__ = [
    "INTERVIEW_COLUMNS",
    "SESSION_COLUMNS",
    "UTTERANCE_COLUMNS",
    "Row",
    "bindable_version",
    "label_parameters",
    "list_filters",
    "page_from_rows",
    "session_from_row",
    "transition_refusal",
    "transition_sources",
]

_log = structlog.get_logger("interview_system")


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

INTERVIEW_COLUMNS = (
    "study_id",
    "participant_id",
    "labels",
    "config",
    "usage_turns",
    "usage_input_tokens",
    "usage_output_tokens",
    "usage_cost_usd",
    "usage_latency_ms",
    "forked_from_id",
    "forked_from_turn",
)
"""The columns every query returns after SESSION_COLUMNS; a read adds state.data's text last."""

UTTERANCE_COLUMNS = "session_id, turn_number, speaker, text, metadata, created_at"
"""The order in which every query returns an utterance's columns."""


class Row(Protocol):
    """A result row (sqlite3.Row, asyncpg.Record): by name, or unpacked in column order."""

    def __getitem__(self, key: Any, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


# The compiled validator itself: the same checks as Session.model_validate,
# without its Python wrapper, on the path every row read takes.
_validate_session = Session.__pydantic_validator__.validate_python


def session_from_row(
    row: Row, data: dict[str, Any] | None = None, *, checked_data: dict[str, Any] | None = None
) -> Session:
    """The Session a `sessions` row stores: SESSION_COLUMNS, INTERVIEW_COLUMNS, then
    state.data's JSON text unless `data` is given.

    checked_data: state.data as a write just validated and stored it; it is not
    validated again (a 256 KiB state would otherwise be measured twice per write).

    Raises:
        StorageDamagedError: the row holds what no Session can (written by hand, say).
    """
    try:
        if checked_data is None:
            return _session_from_row(row, data)
        session = _session_from_row(row, {})
        # The state's own dict, so that validate_assignment does not check it again.
        session.state.__dict__["data"] = dict(checked_data)
        return session
    except (ValidationError, ValueError, TypeError, RecursionError) as exc:
        raise StorageDamagedError(str(row[0])) from exc


_FIRST_INTERVIEW_COLUMN = len(SESSION_COLUMNS)
_DATA_COLUMN = _FIRST_INTERVIEW_COLUMN + len(INTERVIEW_COLUMNS)


def _object(text: str | None) -> Any:
    """A JSON object column's value; NULL (no state data) and the common "{}" without
    the decoder's Python overhead."""
    return {} if text is None or text == "{}" else json.loads(text)


def _session_from_row(row: Row, data: dict[str, Any] | None) -> Session:
    # Unpacked by position, once: a name lookup in sqlite3.Row scans its
    # columns each time, and this runs for every row of every page.
    values = tuple(row)
    (
        study_id,
        participant_id,
        labels,
        config,
        usage_turns,
        usage_input_tokens,
        usage_output_tokens,
        usage_cost_usd,
        usage_latency_ms,
        forked_from_id,
        forked_from_turn,
    ) = values[_FIRST_INTERVIEW_COLUMN:_DATA_COLUMN]
    if data is None:
        data = _object(values[_DATA_COLUMN])
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
    ) = values[:_FIRST_INTERVIEW_COLUMN]
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
            "study_id": study_id,
            "participant_id": participant_id,
            "labels": _object(labels),
            "config": _object(config),
            "usage": {
                "turns": usage_turns,
                "input_tokens": usage_input_tokens,
                "output_tokens": usage_output_tokens,
                "cost_usd": usage_cost_usd,
                "latency_ms": usage_latency_ms,
            },
            "forked_from": None
            if forked_from_id is None
            else {"session_id": forked_from_id, "turn_number": forked_from_turn},
            "state": {
                "methodology": methodology,
                "concept_id": concept_id,
                "concept_name": concept_name,
                "turn_count": turn_count,
                "coverage_score": coverage_score,
                "last_strategy": last_strategy,
                "data": data,
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
    *,
    study_id: str | None = None,
    participant_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> dict[str, Any]:
    """The listing's filters that are set, by name, always in the same order.

    Raises:
        ValueError: `limit` is outside 1..500, `status` is not a status, or a
            time has no timezone.
    """
    check_limit(limit)
    for moment in (created_after, created_before):
        if moment is not None and moment.utcoffset() is None:
            raise ValueError("created_after and created_before need a timezone")
    values = {
        "status": None if status is None else SessionStatus(status).value,
        "methodology": methodology,
        "concept_id": concept_id,
        "study_id": study_id,
        "participant_id": participant_id,
        "created_after": created_after,
        "created_before": created_before,
    }
    return {name: value for name, value in values.items() if value is not None}


def label_parameters(labels: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The bound values of the listing's label filters, numbered in order."""
    parameters = {}
    for number, (key, value) in enumerate(labels):
        parameters[f"label_key_{number}"] = key
        parameters[f"label_value_{number}"] = value
    return parameters


def page_from_rows(rows: Sequence[Row], limit: int, cursor_key: bytes) -> SessionPage:
    """A page from up to `limit + 1` rows: the extra row only says that more remain.

    A row this program cannot show is left out and logged, so one damaged
    session does not take the listing of every other down with it; reading
    that session itself still says it is damaged.

    Raises:
        StorageDamagedError: the last row of a page followed by more holds no
            key to resume after.
    """
    items: list[Session] = []
    for row in rows[:limit]:
        try:
            items.append(session_from_row(row))
        except StorageDamagedError as exc:
            _log.error("storage_damaged", session_id=exc.session_id, detail=exc.detail)
    if len(rows) <= limit:
        return SessionPage(items, None)
    last = rows[limit - 1]
    if items and items[-1].id == last[_ID]:
        return SessionPage(items, encode_cursor(cursor_key, items[-1]))
    return SessionPage(items, encode_session_key(cursor_key, _created_at(last), last[_ID]))


_ID = SESSION_COLUMNS.index("id")
_CREATED_AT = SESSION_COLUMNS.index("created_at")


def _created_at(row: Row) -> datetime:
    """The key a damaged row sorts by, to resume a listing after it."""
    created_at = row[_CREATED_AT]
    try:
        return (
            created_at if isinstance(created_at, datetime) else datetime.fromisoformat(created_at)
        )
    except (TypeError, ValueError) as exc:
        raise StorageDamagedError(str(row[_ID])) from exc
