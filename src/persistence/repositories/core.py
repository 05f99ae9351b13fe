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
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from src.core.errors import (
    InvalidStateError,
    ParticipantNotFoundError,
    RepositoryClosedError,
    SessionEndedError,
    SessionError,
    SessionExistsError,
    SessionMismatchError,
    SessionNotFoundError,
    StaleSessionError,
    StorageUnavailableError,
    StudyNotFoundError,
    TurnNotRecordedError,
    TurnRecordExistsError,
    VersionNotFoundError,
)
from src.domain.audit import AuditAction, AuditEntry
from src.domain.lifecycle import FINAL_STATUSES, can_transition
from src.domain.merge_patch import apply_merge_patch
from src.domain.models.erasure import Erasure
from src.domain.models.event import Event, EventType
from src.domain.models.graph import Graph, GraphChange, SimilarNode
from src.domain.models.json import compact_json
from src.domain.models.session import (
    MAX_COUNT,
    SESSION_STATE_IDENTITY,
    Labels,
    ParticipantId,
    Session,
    SessionState,
    SessionStatus,
    Usage,
)
from src.domain.models.study import StudySummary
from src.domain.models.turn import (
    Change,
    NumberedTurnRecord,
    RecordUsage,
    SessionVersion,
    Turn,
    TurnRecordData,
)
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
    label_parameters,
    list_filters,
    page_from_rows,
    session_from_row,
    transition_refusal,
    transition_sources,
)
from src.persistence.repositories.embedding_cache import EmbeddingCache
from src.persistence.repositories.events import (
    deleted_event,
    event_from_row,
    participant_erased_event,
    session_event,
    utterances_data,
)
from src.persistence.repositories.graph import (
    apply_graph_change,
    copy_graph,
    graph_as_of,
    nearest_nodes,
)
from src.persistence.repositories.protocol import (
    EventBounds,
    EventWatch,
    SearchPage,
    SessionPage,
    TurnPage,
    TurnRecord,
    UtterancePage,
    VersionPage,
)
from src.persistence.repositories.search import search_filters, search_page_from_rows, search_start
from src.persistence.repositories.state_data import DataChange, data_change, replay_data
from src.persistence.repositories.statements import Statement, Unit
from src.persistence.repositories.transcript import (
    start_key,
    utterance_from_row,
    utterance_page_from_rows,
    utterance_refusal,
)

__all__ = ["Backend", "RepositoryCore", "session_insert"]

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

    async def read(
        self, unit: Callable[[], Unit[T]], *, scan: bool = False, search: bool = False
    ) -> T:
        """Run a unit (made by calling `unit`, again for a retry) that changes nothing.

        scan: it may visit many rows (a count, a whole graph), so it is never
        tried on the event loop's own thread; its statements see one snapshot on
        either backend (SQLite's reads always do).
        search: a scan whose time grows with the matches of a search query, which
        no other read may have to wait behind.
        """

    async def write(
        self, unit: Callable[[], Unit[T]], *, atomic: bool = False, bulk: bool = False
    ) -> T:
        """Run a unit (made by calling `unit`) whose writes are committed before this returns.

        atomic: its writes stand or fall together. Without it, each statement
        commits on its own: enough for a unit whose only write comes first.
        bulk: its rows grow with the data (a cascade, a copy, an erasure), so
        it is never run on the event loop's own thread.
        """

    async def storage_problem(self) -> str | None:
        """What is wrong with the storage that a query cannot see; None if nothing."""

    async def watch(self) -> EventWatch:
        """A watch that wakes when any process may have written events."""


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


class _Held:
    """A session's row held for a write, and its state.data as stored: what the write
    checks, read as it is, so that a write which needs no more builds no model on the
    writer's thread. `data` is decoded once (every write that holds a row patches or
    compares it) and is not to be changed."""

    __slots__ = (
        "concept_id",
        "concept_name",
        "data",
        "id",
        "methodology",
        "row",
        "status",
        "version",
    )

    def __init__(self, row: Row, data_text: str | None) -> None:
        self.row = row
        values = tuple(row)
        self.id, self.methodology, self.concept_id, self.concept_name, self.status = values[:5]
        self.version: int = values[8]
        self.data: dict[str, Any] = {} if data_text is None else dict(json.loads(data_text))

    def state(self) -> dict[str, Any]:
        """The state as stored, as plain values: what a merge patch applies to."""
        values = tuple(self.row)
        return {
            "methodology": self.methodology,
            "concept_id": self.concept_id,
            "concept_name": self.concept_name,
            "turn_count": values[5],
            "coverage_score": values[6],
            "last_strategy": values[7],
            "data": self.data,
        }

    def session(self) -> Session:
        return session_from_row(self.row, self.data)


def _locked(session_id: str) -> Unit[_Held]:
    """The session's row as it is, held until the unit ends (FOR UPDATE on PostgreSQL).

    Raises:
        SessionNotFoundError: no session has this id.
    """
    rows = yield Statement(sql.SELECT_FOR_WRITE, {"id": session_id})
    if not rows:
        raise SessionNotFoundError(session_id)
    ((data_text,),) = yield Statement(sql.DATA_FOR_WRITE, {"id": session_id})
    return _Held(rows[0], data_text)


# Upserting a stored node or edge rewrites its stored row (a node's embedding with it);
# removing a node rewrites its edges too: up to this many upserts are a turn's worth.
_SMALL_GRAPH_CHANGE = 32


def _bulk_graph_change(change: GraphChange | None) -> bool:
    """Whether a graph change is a bulk write: one that removes nodes or edges, or upserts
    more than a turn's worth of them, rewrites rows that grow with the graph, not with
    the request."""
    if change is None:
        return False
    removes = bool(change.remove_nodes or change.remove_edges)
    return removes or len(change.nodes) + len(change.edges) > _SMALL_GRAPH_CHANGE


def _check_writable(current: _Held, expected_version: int | None) -> None:
    if current.status in FINAL_STATUSES:
        raise SessionEndedError(current.id, current.status)
    if expected_version is not None and expected_version != current.version:
        raise StaleSessionError(current.id, expected_version, current.version)


def _check_identity(current: _Held, state: Mapping[str, Any]) -> None:
    for field in SESSION_STATE_IDENTITY:
        if state.get(field) != getattr(current, field):
            raise SessionMismatchError(
                current.id, field, getattr(current, field), str(state.get(field))
            )


def _identity(state: SessionState) -> dict[str, str]:
    return {field: getattr(state, field) for field in SESSION_STATE_IDENTITY}


def _patched_state(current: _Held, patch: Any) -> tuple[SessionState, list[str] | None]:
    """The state a merge patch makes of the session's, and the data keys it can have changed
    (None: any).

    Raises:
        SessionMismatchError: the patch changes methodology or concept.
        InvalidStateError: the result is not a valid state.
    """
    merged = apply_merge_patch(current.state(), patch)
    if isinstance(merged, dict):
        _check_identity(current, merged)
    try:
        state: SessionState = _validate_patched_state(merged)
    except ValidationError as exc:
        raise InvalidStateError(current.id, _field_errors(exc)) from exc
    data_patch = patch.get("data") if isinstance(patch, dict) else None
    keys = list(data_patch) if isinstance(data_patch, dict) else None
    if isinstance(patch, dict) and "data" not in patch:
        keys = []
    return state, keys


class _PatchedState(SessionState):
    # A patch that adds a member the state does not have leaves an invalid state.
    model_config = ConfigDict(extra="forbid")


def _validate_patched_state(merged: Any) -> SessionState:
    patched = _PatchedState.model_validate(merged)
    return SessionState.model_construct(**dict(patched))


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(part) for part in error["loc"]) or "state", "reason": error["msg"]}
        for error in exc.errors()
    ]


def _version_row(
    session_id: str, change: Change, turn_number: int | None, data: DataChange | None
) -> Statement:
    data_set, data_unset = (None, None) if data is None else data.history_columns()
    return Statement(
        sql.INSERT_VERSION,
        {
            "id": session_id,
            "change": change.value,
            "turn_number": turn_number,
            "data_set": data_set,
            "data_unset": data_unset,
        },
    )


def _write_data(session_id: str, change: DataChange) -> Unit[None]:
    for key, text in change.set.items():
        yield Statement(sql.UPSERT_DATA, {"session_id": session_id, "key": key, "value": text})
    for key in change.removed:
        yield Statement(sql.DELETE_DATA, {"session_id": session_id, "key": key})


def _write_state(
    current: _Held,
    state: SessionState,
    *,
    keys: Sequence[str] | None = None,
    change: Change = Change.STATE,
    turn_number: int | None = None,
    usage: RecordUsage | None = None,
) -> Unit[Row]:
    """Store `state` over the held session's, its data keys that changed, and a version;
    return the session's row (without its data, which is `state.data`)."""
    data = data_change(current.data, state.data, keys)
    rows = yield Statement(
        sql.UPDATE_STATE,
        {
            "id": current.id,
            "version": current.version,
            "turn_count": state.turn_count,
            "coverage_score": state.coverage_score,
            "last_strategy": state.last_strategy,
            "usage_turns": 0 if usage is None else 1,
            "usage_input_tokens": 0 if usage is None else usage.input_tokens,
            "usage_output_tokens": 0 if usage is None else usage.output_tokens,
            "usage_cost_usd": 0.0 if usage is None else usage.cost_usd,
            "usage_latency_ms": 0.0 if usage is None else usage.latency_ms,
        },
    )
    if not rows:  # the row is held, so only a change of this program's own can get here
        raise StaleSessionError(current.id, current.version, current.version + 1)
    yield from _write_data(current.id, data)
    yield _version_row(current.id, change, turn_number, data)
    return rows[0]


def _record_row(session_id: str, turn_number: int, record: TurnRecordData) -> Statement:
    return Statement(
        sql.INSERT_RECORD,
        {
            "session_id": session_id,
            "turn_number": turn_number,
            "strategy": record.strategy,
            "scores": compact_json(record.scores),
            "signals": compact_json(record.signals),
            "model": record.usage.model,
            "input_tokens": record.usage.input_tokens,
            "output_tokens": record.usage.output_tokens,
            "cost_usd": record.usage.cost_usd,
            "latency_ms": record.usage.latency_ms,
        },
    )


def _record_from_row(row: Row) -> NumberedTurnRecord:
    (turn_number, strategy, scores, signals, model, input_tokens, output_tokens, cost, latency) = (
        row
    )
    return NumberedTurnRecord.model_validate(
        {
            "turn_number": turn_number,
            "strategy": strategy,
            "scores": json.loads(scores),
            "signals": json.loads(signals),
            "usage": {
                "model": model,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cost_usd": cost,
                "latency_ms": latency,
            },
        }
    )


def _moment(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


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
            "study_id": session.study_id,
            "participant_id": session.participant_id,
            "labels": compact_json(session.labels),
            "config": compact_json(session.config),
            "usage_turns": session.usage.turns,
            "usage_input_tokens": session.usage.input_tokens,
            "usage_output_tokens": session.usage.output_tokens,
            "usage_cost_usd": session.usage.cost_usd,
            "usage_latency_ms": session.usage.latency_ms,
            "forked_from_id": None
            if session.forked_from is None
            else session.forked_from.session_id,
            "forked_from_turn": None
            if session.forked_from is None
            else session.forked_from.turn_number,
        },
    )


def _create(session: Session, data: DataChange) -> Unit[Row]:
    rows = yield session_insert(session)
    if not rows:
        raise SessionExistsError(session.id)
    yield from _write_data(session.id, data)
    yield _version_row(session.id, Change.CREATED, None, data)
    return rows[0]


def _created_event(session: Session) -> Statement:
    forked_from = None if session.forked_from is None else session.forked_from.model_dump()
    return session_event(
        EventType.CREATED, session.id, {"status": session.status.value, "forked_from": forked_from}
    )


def _create_with_event(session: Session, data: DataChange) -> Unit[Row]:
    created = yield from _create(session, data)
    yield _created_event(session)
    return created


def _state_event(session_id: str, state: SessionState) -> Statement:
    return session_event(
        EventType.STATE_UPDATED,
        session_id,
        {
            "turn_count": state.turn_count,
            "coverage_score": state.coverage_score,
            "last_strategy": state.last_strategy,
        },
    )


class _LabelsAndParticipant(BaseModel):
    labels: Labels = Field(default_factory=dict)
    participant_id: ParticipantId | None = None


def _data_at(session_id: str, versions: Sequence[int]) -> Unit[dict[int, dict[str, Any]]]:
    if not versions:
        return {}
    changes = yield Statement(sql.DATA_CHANGES, {"session_id": session_id, "version": versions[-1]})
    return replay_data(changes, versions)


def _turn_version(session_id: str, turn_number: int) -> Unit[int]:
    """The version a turn left its session at; for a turn no turn write made, the
    version the session was at when the turn's last utterance came."""
    rows = yield Statement(
        sql.LAST_TURN_VERSION, {"session_id": session_id, "turn_number": turn_number}
    )
    if rows and rows[0][0] is not None:
        return int(rows[0][0])
    rows = yield Statement(sql.LAST_TURN, {"session_id": session_id, "turn_number": turn_number})
    return (yield from _version_at(session_id, rows[0][1] if rows else None))


def _version_at(session_id: str, moment: Any) -> Unit[int]:
    if moment is None:
        rows = yield Statement(sql.FIRST_VERSION, {"session_id": session_id})
    else:
        rows = yield Statement(sql.VERSION_AT, {"session_id": session_id, "at": _moment(moment)})
    return int(rows[0][0])


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


def _after_turn(after: int | None) -> int:
    if after is not None and (isinstance(after, bool) or not 0 <= after <= MAX_COUNT):
        raise ValueError(f"the page must start at 0 or more, not {after!r}")
    return 0 if after is None else after


def _at_version(session_id: str, version: int) -> Unit[Session]:
    rows = yield Statement(sql.SESSION_AT_VERSION, {"session_id": session_id, "version": version})
    if not rows:
        raise VersionNotFoundError(session_id, version)
    data = yield from _data_at(session_id, [version])
    return session_from_row(rows[0], data[version])


def _study_summary(study_id: str, rows: Sequence[Sequence[Any] | Row]) -> StudySummary:
    """A study's summary from its STUDY_SUMMARY rows, one per status."""
    return StudySummary(
        study_id=study_id,
        sessions={str(row[0]): int(row[1]) for row in rows},
        usage=Usage(
            turns=sum(int(row[2]) for row in rows),
            input_tokens=sum(int(row[3]) for row in rows),
            output_tokens=sum(int(row[4]) for row in rows),
            cost_usd=sum(float(row[5]) for row in rows),
            latency_ms=sum(float(row[6]) for row in rows),
        ),
        first_created_at=min(_moment(row[7]) for row in rows),
        last_updated_at=max(_moment(row[8]) for row in rows),
    )


def _version_from_row(session: Session, row: Row, data: dict[str, Any]) -> SessionVersion:
    (
        version,
        change,
        turn_number,
        status,
        turn_count,
        coverage_score,
        last_strategy,
        labels,
        _participant_id,
        *_usage,
        updated_at,
        _ended_at,
    ) = row
    return SessionVersion.model_validate(
        {
            "version": version,
            "status": status,
            "state": {
                "methodology": session.methodology,
                "concept_id": session.concept_id,
                "concept_name": session.concept_name,
                "turn_count": turn_count,
                "coverage_score": coverage_score,
                "last_strategy": last_strategy,
                "data": data,
            },
            "labels": json.loads(labels),
            "change": change,
            "turn_number": turn_number,
            "at": _moment(updated_at),
        }
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
        self._embeddings = EmbeddingCache()

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
        # The data's JSON text is worked out here, on the event loop, not on the writer's thread.
        data = data_change({}, session.state.data)
        row = await self._write(lambda: _create_with_event(session, data), atomic=True)
        return session_from_row(row, checked_data=session.state.data)

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

        def unit() -> Unit[Row]:
            current = yield from _locked(session_id)
            _check_writable(current, expected_version)
            _check_identity(current, _identity(state))
            written = yield from _write_state(current, state)
            yield _state_event(session_id, state)
            return written

        return session_from_row(await self._write(unit, atomic=True), checked_data=state.data)

    async def patch_state(
        self, session_id: str, patch: Any, *, expected_version: int | None = None
    ) -> Session:
        """Apply an RFC 7396 merge patch to the session's state, in one atomic write.

        Raises:
            SessionNotFoundError, SessionEndedError, StaleSessionError: as for update_state.
            SessionMismatchError: the patch would change methodology or concept.
            InvalidStateError: the patched state is not valid; nothing is stored.
        """

        def unit() -> Unit[tuple[Row, SessionState]]:
            current = yield from _locked(session_id)
            _check_writable(current, expected_version)
            state, keys = _patched_state(current, patch)
            written = yield from _write_state(current, state, keys=keys)
            yield _state_event(session_id, state)
            return written, state

        row, state = await self._write(unit, atomic=True)
        return session_from_row(row, checked_data=state.data)

    async def patch_session(
        self,
        session_id: str,
        patch: Mapping[str, Any],
        *,
        expected_version: int | None = None,
    ) -> Session:
        """Apply a merge patch to the session's `labels` and `participant_id`; a version.

        Raises:
            ValueError: the patch names another field.
            SessionNotFoundError: no session has this id.
            StaleSessionError: `expected_version` is given and the session is at another.
            InvalidStateError: the patched labels or participant are not valid.
        """
        others = set(patch) - {"labels", "participant_id"}
        if others:
            raise ValueError(f"only labels and participant_id may change, not {sorted(others)}")

        def unit() -> Unit[Session]:
            current = yield from _locked(session_id)
            if expected_version is not None and expected_version != current.version:
                raise StaleSessionError(session_id, expected_version, current.version)
            held = current.session()
            target = {"labels": held.labels, "participant_id": held.participant_id}
            try:
                patched = _LabelsAndParticipant.model_validate(
                    apply_merge_patch(target, dict(patch))
                )
            except ValidationError as exc:
                raise InvalidStateError(session_id, _field_errors(exc)) from exc
            rows = yield Statement(
                sql.UPDATE_LABELS,
                {
                    "id": session_id,
                    "version": current.version,
                    "labels": compact_json(patched.labels),
                    "participant_id": patched.participant_id,
                },
            )
            if not rows:
                raise StaleSessionError(session_id, current.version, current.version + 1)
            yield _version_row(session_id, Change.LABELS, None, None)
            yield session_event(EventType.LABELS_CHANGED, session_id, {"labels": patched.labels})
            return session_from_row(rows[0])

        return await self._write(unit, atomic=True)

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

        def unit() -> Unit[Row]:
            moved = yield from _guarded_write(
                move,
                lambda current: transition_refusal(session_id, current, target, expected_version),
                expected_version,
            )
            yield _version_row(session_id, Change.TRANSITION, None, None)
            yield session_event(EventType.STATUS_CHANGED, session_id, {"status": target.value})
            return moved

        return session_from_row(await self._write(unit, atomic=True))

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
        study_id: str | None = None,
        participant_id: str | None = None,
        labels: Sequence[tuple[str, str]] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SessionPage:
        """One page of sessions, newest first (ties by id), after `cursor` if given.

        `labels` are (key, value) pairs a session's labels must all hold;
        `created_after` and `created_before` are exclusive.

        Raises:
            InvalidCursorError: (a ValueError) the cursor was not handed out by a listing.
            ValueError: `limit` is outside 1..500, `status` is not a status, or a time
                has no timezone.
        """
        filters = list_filters(
            status,
            methodology,
            concept_id,
            limit,
            study_id=study_id,
            participant_id=participant_id,
            created_after=created_after,
            created_before=created_before,
        )
        key = await self._key()
        parameters: dict[str, Any] = {**filters, **label_parameters(labels), "limit": limit + 1}
        if cursor is not None:
            parameters["after_created_at"], parameters["after_id"] = decode_cursor(key, cursor)
        listing = Statement(
            sql.list_query(tuple(filters), cursor is not None, len(labels)), parameters
        )

        def unit() -> Unit[SessionPage]:
            return page_from_rows((yield listing), limit, key)

        return await self._read(unit)

    async def count_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        methodology: str | None = None,
        concept_id: str | None = None,
        study_id: str | None = None,
        participant_id: str | None = None,
        labels: Sequence[tuple[str, str]] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> int:
        """How many sessions `list_sessions` with these filters lists over all its pages."""
        filters = list_filters(
            status,
            methodology,
            concept_id,
            1,
            study_id=study_id,
            participant_id=participant_id,
            created_after=created_after,
            created_before=created_before,
        )
        count = Statement(
            sql.count_query(tuple(filters), len(labels)), {**filters, **label_parameters(labels)}
        )

        def unit() -> Unit[int]:
            ((total,),) = yield count
            return int(total)

        return await self._read(unit, scan=True)

    async def study_summary(self, study_id: str) -> StudySummary:
        """The study's sessions counted by status, their usage totals, and when they ran.

        Raises:
            StudyNotFoundError: no session belongs to the study.
        """

        def unit() -> Unit[StudySummary]:
            rows = yield Statement(sql.STUDY_SUMMARY, {"study_id": study_id})
            if not rows:
                raise StudyNotFoundError(study_id)
            return _study_summary(study_id, rows)

        return await self._read(unit, scan=True)

    async def list_studies(self, *, limit: int = 50) -> list[StudySummary]:
        """The summaries of the `limit` studies written to most recently, newest first.

        Raises:
            ValueError: `limit` is outside 1..500.
        """
        check_limit(limit)

        def unit() -> Unit[list[StudySummary]]:
            by_study: dict[str, list[Sequence[Any]]] = {}
            for row in (yield Statement(sql.LIST_STUDIES, {"limit": limit})):
                by_study.setdefault(str(row[0]), []).append(tuple(row)[1:])
            summaries = [_study_summary(study, rows) for study, rows in by_study.items()]
            return sorted(
                summaries,
                key=lambda summary: (summary.last_updated_at, summary.study_id),
                reverse=True,
            )

        return await self._read(unit, scan=True)

    async def delete(self, session_id: str) -> bool:
        """Delete the session; True if it existed."""

        def unit() -> Unit[bool]:
            deleted = yield Statement(sql.DELETE, {"id": session_id})
            if not deleted:
                return False
            ((_id, study_id, version),) = deleted
            yield deleted_event(session_id, study_id, int(version))
            return True

        deleted = await self._write(unit, atomic=True, bulk=True)
        self._embeddings.forget([session_id])
        return deleted

    async def append_utterance(self, session_id: str, utterance: NewUtterance) -> Utterance:
        """Append one utterance to an active or paused session's record.

        Raises:
            SessionNotFoundError: no session has this id.
            SessionEndedError: the session is completed or abandoned.
            UtteranceExistsError: the session has this speaker's utterance in this turn.
        """

        def unit() -> Unit[Utterance]:
            stored = utterance_from_row((yield from _append_or_refuse(session_id, utterance)))
            yield session_event(
                EventType.UTTERANCE_ADDED, session_id, {"utterance": utterances_data([stored])[0]}
            )
            return stored

        return await self._write(unit, atomic=True)

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
        state: SessionState | None = None,
        *,
        state_patch: Any = None,
        record: TurnRecordData | None = None,
        graph: GraphChange | None = None,
        expected_version: int | None = None,
    ) -> TurnRecord:
        """Store a turn in one transaction, or nothing of it: its utterances, the session's
        new state (`state`, else the merge patch `state_patch`), its record if given, the
        record's usage added to the session's totals, and its graph change if given (whose
        spans may point at this turn's utterances).

        Raises:
            ValueError: `utterances` is empty or names more than one turn.
            SessionNotFoundError, SessionEndedError, SessionMismatchError,
            StaleSessionError, UtteranceExistsError, TurnRecordExistsError,
            InvalidStateError, InvalidGraphError, GraphTurnPassedError: as their names
            say; nothing is stored.
        """
        if not utterances:
            raise ValueError("a turn needs at least one utterance")
        turn_numbers = {utterance.turn_number for utterance in utterances}
        if len(turn_numbers) > 1:
            raise ValueError(
                f"a turn's utterances name one turn number, not {sorted(turn_numbers)}"
            )
        (turn_number,) = turn_numbers

        def unit() -> Unit[tuple[Row, SessionState, list[Row]]]:
            current = yield from _locked(session_id)
            _check_writable(current, expected_version)
            keys: list[str] | None = None
            if state is None:
                new_state, keys = _patched_state(current, state_patch)
            else:
                _check_identity(current, _identity(state))
                new_state = state
            if record is not None:
                stored_record = yield _record_row(session_id, turn_number, record)
                if not stored_record:
                    raise TurnRecordExistsError(session_id, turn_number)
            session = yield from _write_state(
                current,
                new_state,
                keys=keys,
                change=Change.TURN,
                turn_number=turn_number,
                usage=None if record is None else record.usage,
            )
            stored = []
            for utterance in utterances:
                stored.append((yield from _append_or_refuse(session_id, utterance)))
            if graph is not None:
                yield from apply_graph_change(session_id, turn_number, graph)
            yield session_event(
                EventType.TURN_RECORDED,
                session_id,
                {
                    "turn_number": turn_number,
                    "utterances": utterances_data([utterance_from_row(row) for row in stored]),
                },
            )
            return session, new_state, stored

        # A refusal anywhere in the unit undoes all of it: atomic.
        bulk = _bulk_graph_change(graph)
        row, new_state, stored = await self._write(unit, atomic=True, bulk=bulk)
        return TurnRecord(
            session_from_row(row, checked_data=new_state.data),
            [utterance_from_row(row) for row in stored],
            record,
        )

    async def list_turns(
        self, session_id: str, *, after_turn: int | None = None, limit: int = 50
    ) -> TurnPage:
        """One page of the session's turns in turn order: every turn number with
        utterances, with its record (or None) and the version it left the session at.

        Raises:
            SessionNotFoundError: no session has this id.
            ValueError: `limit` is outside 1..500 or `after_turn` is negative.
        """
        check_limit(limit)
        after = _after_turn(after_turn)

        def unit() -> Unit[TurnPage]:
            numbers = yield Statement(
                sql.TURN_NUMBERS,
                {"session_id": session_id, "after_turn": after, "limit": limit + 1},
            )
            if not numbers:
                if not (yield from _exists(session_id)):
                    raise SessionNotFoundError(session_id)
                return TurnPage([], None)
            page = numbers[:limit]
            bounds = {"session_id": session_id, "first": page[0][0], "last": page[-1][0]}
            utterances: dict[int, list[Utterance]] = {}
            for row in (yield Statement(sql.UTTERANCES_IN_TURNS, bounds)):
                utterance = utterance_from_row(row)
                utterances.setdefault(utterance.turn_number, []).append(utterance)
            records = {
                record.turn_number: record
                for record in map(_record_from_row, (yield Statement(sql.LIST_RECORDS, bounds)))
            }
            versions = {
                int(number): int(version)
                for number, version in (yield Statement(sql.TURN_VERSIONS, bounds))
            }
            turns = []
            for number, first_at, last_at in page:
                version = versions.get(number)
                if version is None:
                    version = yield from _version_at(session_id, last_at)
                record = records.get(number)
                turns.append(
                    Turn(
                        turn_number=number,
                        utterances=utterances.get(number, []),
                        record=None
                        if record is None
                        else TurnRecordData.model_validate(
                            record.model_dump(exclude={"turn_number"})
                        ),
                        version=version,
                        created_at=_moment(first_at),
                    )
                )
            more = len(numbers) > limit
            return TurnPage(turns, turns[-1].turn_number if more else None)

        return await self._read(unit)

    async def list_turn_records(
        self, session_id: str, *, after_turn: int | None = None, limit: int = 100
    ) -> list[NumberedTurnRecord]:
        """Up to `limit` of the session's turn records after `after_turn`, in turn order."""
        check_limit(limit)
        after = _after_turn(after_turn)

        def unit() -> Unit[list[NumberedTurnRecord]]:
            rows = yield Statement(
                sql.LIST_RECORDS,
                {"session_id": session_id, "first": after + 1, "last": MAX_COUNT},
            )
            return [_record_from_row(row) for row in rows[:limit]]

        return await self._read(unit)

    async def list_versions(
        self, session_id: str, *, after: int | None = None, limit: int = 50
    ) -> VersionPage:
        """One page of the session's history, oldest first: the session after each write.

        Raises:
            SessionNotFoundError: no session has this id.
            ValueError: `limit` is outside 1..500 or `after` is negative.
        """
        check_limit(limit)
        start = _after_turn(after)

        def unit() -> Unit[VersionPage]:
            session = yield from _current(session_id)
            if session is None:
                raise SessionNotFoundError(session_id)
            rows = yield Statement(
                sql.LIST_VERSIONS,
                {"session_id": session_id, "after": start, "limit": limit + 1},
            )
            page = rows[:limit]
            data = yield from _data_at(session_id, [int(row[0]) for row in page])
            items = [_version_from_row(session, row, data[int(row[0])]) for row in page]
            more = len(rows) > limit
            return VersionPage(items, items[-1].version if more else None)

        return await self._read(unit)

    async def get_version(self, session_id: str, version: int) -> Session:
        """The session exactly as the write that made `version` returned it.

        Raises:
            SessionNotFoundError: no session has this id.
            VersionNotFoundError: its history holds no such version.
        """

        def unit() -> Unit[Session]:
            if not 1 <= version <= MAX_COUNT:
                raise VersionNotFoundError(session_id, version)
            rows = yield Statement(
                sql.SESSION_AT_VERSION, {"session_id": session_id, "version": version}
            )
            if not rows:
                if not (yield from _exists(session_id)):
                    raise SessionNotFoundError(session_id)
                raise VersionNotFoundError(session_id, version)
            data = yield from _data_at(session_id, [version])
            return session_from_row(rows[0], data[version])

        return await self._read(unit)

    async def fork(
        self,
        session_id: str,
        at_turn: int,
        *,
        new_id: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Session:
        """A new active session holding the source's turns up to `at_turn` (utterances and
        records), its state as that turn left it (as created, for 0), its study,
        participant and config, `labels` or else the source's, and `forked_from`.

        Raises:
            ValueError: `at_turn` is negative.
            SessionNotFoundError: no session has this id.
            TurnNotRecordedError: `at_turn` is past the source's last turn.
            SessionExistsError: `new_id` is taken.
        """
        if isinstance(at_turn, bool) or not 0 <= at_turn <= MAX_COUNT:
            raise ValueError(f"at_turn must be 0 or more, not {at_turn!r}")
        fork_id = new_id if new_id is not None else str(uuid.uuid4())
        up_to = {"session_id": session_id, "turn_number": at_turn}

        def unit() -> Unit[Session]:
            source = (yield from _locked(session_id)).session()
            last = yield Statement(sql.LAST_TURN, {**up_to, "turn_number": MAX_COUNT})
            last_turn = 0 if last[0][0] is None else int(last[0][0])
            if at_turn > last_turn:
                raise TurnNotRecordedError(session_id, at_turn, last_turn)
            if at_turn == 0:
                version = yield from _version_at(session_id, None)
            else:
                version = yield from _turn_version(session_id, at_turn)
            then = yield from _at_version(session_id, version)
            ((turns, input_tokens, output_tokens, cost, latency),) = yield Statement(
                sql.USAGE_UP_TO, up_to
            )
            forked = Session.model_validate(
                {
                    **then.model_dump(exclude={"status", "ended_at", "version", "usage"}),
                    "id": fork_id,
                    "labels": source.labels if labels is None else dict(labels),
                    "study_id": source.study_id,
                    "participant_id": source.participant_id,
                    "config": source.config,
                    "usage": {
                        "turns": int(turns),
                        "input_tokens": int(input_tokens),
                        "output_tokens": int(output_tokens),
                        "cost_usd": float(cost),
                        "latency_ms": float(latency),
                    },
                    "forked_from": {"session_id": session_id, "turn_number": at_turn},
                }
            )
            row = yield from _create(forked, data_change({}, forked.state.data))
            created = session_from_row(row, checked_data=forked.state.data)
            yield Statement(sql.COPY_UTTERANCES, {**up_to, "new_id": fork_id})
            yield Statement(sql.COPY_RECORDS, {**up_to, "new_id": fork_id})
            yield from copy_graph(session_id, fork_id, at_turn)
            yield _created_event(forked)
            return created

        return await self._write(unit, atomic=True, bulk=True)

    async def change_graph(
        self, session_id: str, change: GraphChange, *, expected_version: int | None = None
    ) -> Session:
        """Apply a graph change on its own, as belonging to the session's highest turn
        number (0 before any), and make a version with change `graph`.

        Raises:
            SessionNotFoundError, SessionEndedError, StaleSessionError: as for update_state.
            InvalidGraphError, GraphTurnPassedError: as their names say; nothing is stored.
        """

        def unit() -> Unit[tuple[Row, SessionState]]:
            current = yield from _locked(session_id)
            _check_writable(current, expected_version)
            last = yield Statement(
                sql.LAST_TURN, {"session_id": session_id, "turn_number": MAX_COUNT}
            )
            turn_number = int(last[0][0] or 0)
            yield from apply_graph_change(session_id, turn_number, change)
            state = current.session().state
            row = yield from _write_state(current, state, keys=[], change=Change.GRAPH)
            yield session_event(
                EventType.GRAPH_CHANGED,
                session_id,
                {
                    "turn_number": turn_number,
                    "nodes": [node.id for node in change.nodes],
                    "edges": [edge.id for edge in change.edges],
                    "removed_nodes": list(change.remove_nodes),
                    "removed_edges": list(change.remove_edges),
                },
            )
            return row, state

        row, state = await self._write(unit, atomic=True, bulk=_bulk_graph_change(change))
        return session_from_row(row, checked_data=state.data)

    async def get_graph(self, session_id: str, *, as_of_turn: int | None = None) -> Graph:
        """The session's graph as it stood after turn `as_of_turn` (default: now).

        Raises:
            ValueError: `as_of_turn` is negative.
            SessionNotFoundError: no session has this id.
        """
        if as_of_turn is not None and (isinstance(as_of_turn, bool) or as_of_turn < 0):
            raise ValueError(f"as_of_turn must be 0 or more, not {as_of_turn!r}")
        turn = MAX_COUNT if as_of_turn is None else min(as_of_turn, MAX_COUNT)

        def unit() -> Unit[Graph]:
            graph = yield from graph_as_of(session_id, turn)
            if graph is not None:
                return graph
            if not (yield from _exists(session_id)):
                raise SessionNotFoundError(session_id)
            return Graph(nodes=[], edges=[])

        return await self._read(unit, scan=True)

    async def similar_nodes(
        self, session_id: str, node_id: str, *, k: int = 10
    ) -> list[SimilarNode]:
        """The `k` other nodes nearest to `node_id` by the cosine of their embeddings (of the
        same length), best first.

        Raises:
            ValueError: `k` is outside 1..100.
            SessionNotFoundError: no session has this id.
            NodeNotFoundError: the session's graph has no such node.
            NodeWithoutEmbeddingError: the node has no embedding.
        """
        if isinstance(k, bool) or not 1 <= k <= 100:
            raise ValueError(f"k must be 1..100, not {k!r}")

        return await self._read(
            lambda: nearest_nodes(session_id, node_id, k, self._embeddings), scan=True
        )

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
            moved = yield move
            for row in moved:
                yield _version_row(row[0], Change.TRANSITION, None, None)
                yield session_event(EventType.STATUS_CHANGED, row[0], {"status": target.value})
            return moved

        return [session_from_row(row) for row in await self._write(unit, atomic=True, bulk=True)]

    async def search(
        self,
        query: str,
        *,
        study_id: str | None = None,
        participant_id: str | None = None,
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
        filters = search_filters(
            speaker, methodology, limit, study_id=study_id, participant_id=participant_id
        )
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

        return await self._read(unit, search=True)

    async def list_events(
        self,
        *,
        after: int,
        session_id: str | None = None,
        study_id: str | None = None,
        limit: int = 500,
    ) -> list[Event]:
        """Up to `limit` events after the id `after`, oldest first, of one session or study
        if given. Ids become visible in increasing order, so a reader that resumes after
        the last id it saw misses none.

        Raises:
            ValueError: `limit` is outside 1..500 or `after` is negative.
        """
        check_limit(limit)
        if isinstance(after, bool) or not 0 <= after < 2**63:
            raise ValueError(f"events start after an id of 0 or more, not {after!r}")
        parameters: dict[str, Any] = {"after": after, "limit": limit}
        if session_id is not None:
            parameters["session_id"] = session_id
        if study_id is not None:
            parameters["study_id"] = study_id
        listing = Statement(
            sql.list_events_query(session_id is not None, study_id is not None), parameters
        )

        def unit() -> Unit[list[Event]]:
            return [event_from_row(row) for row in (yield listing)]

        return await self._read(unit)

    async def event_bounds(self) -> EventBounds:
        """The newest id trimmed from the log and the newest written."""

        def unit() -> Unit[EventBounds]:
            ((trimmed, newest),) = yield Statement(sql.EVENT_BOUNDS, {})
            trimmed = int(trimmed)
            return EventBounds(trimmed, trimmed if newest is None else max(int(newest), trimmed))

        return await self._read(unit)

    async def trim_events(self, before: datetime, *, limit: int = 1000) -> int:
        """Drop up to `limit` of the oldest events written before `before`; return the newest
        id now trimmed (0 if none ever was). A reader resuming before it gets told so."""
        if limit < 1:
            raise ValueError(f"limit must be 1 or more, not {limit}")

        def unit() -> Unit[int]:
            ((through,),) = yield Statement(sql.OLD_EVENTS_END, {"before": before, "limit": limit})
            if through is not None:
                yield Statement(sql.MARK_TRIMMED, {"through": int(through)})
                yield Statement(sql.TRIM_EVENTS, {"through": int(through)})
            ((trimmed, _newest),) = yield Statement(sql.EVENT_BOUNDS, {})
            return int(trimmed)

        return await self._write(unit, atomic=True, bulk=True)

    async def watch_events(self) -> EventWatch:
        """A watch that wakes when any process on this database may have written events;
        close it when done. A wake is a hint: read the log to know."""
        return await (await self._ready()).watch()

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

    async def _read(
        self, unit: Callable[[], Unit[T]], *, scan: bool = False, search: bool = False
    ) -> T:
        backend = self._backend if self._opened and not self._closed else await self._ready()
        return await backend.read(unit, scan=scan, search=search)

    async def _write(
        self, unit: Callable[[], Unit[T]], *, atomic: bool = False, bulk: bool = False
    ) -> T:
        backend = self._backend if self._opened and not self._closed else await self._ready()
        return await backend.write(unit, atomic=atomic, bulk=bulk)

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

    async def count_by_status(self) -> dict[SessionStatus, int]:
        """How many sessions there are in each status; a status without one counts 0."""

        def unit() -> Unit[dict[SessionStatus, int]]:
            rows = yield Statement(sql.SESSIONS_BY_STATUS, {})
            counts = dict.fromkeys(SessionStatus, 0)
            counts.update({SessionStatus(status): int(count) for status, count in rows})
            return counts

        return await self._read(unit, scan=True)

    async def erase_participant(self, participant_id: str) -> Erasure:
        """Erase every session naming the participant, and every fork made from one, in one
        transaction: transcripts, search entries, turn records, history and state.

        Raises:
            ParticipantNotFoundError: no session names this participant.
        """
        erased = await self._write(lambda: _erase(participant_id), atomic=True, bulk=True)
        # Nothing of theirs stays in this process's memory either (other servers' entries
        # can no longer be reached, and go as they age out).
        self._embeddings.forget()
        return erased


def _erase(participant_id: str) -> Unit[Erasure]:
    sessions = Statement(sql.ERASURE_SESSIONS, {"participant_id": participant_id})
    rows = yield sessions
    if not rows:
        raise ParticipantNotFoundError()
    # On PostgreSQL a fork that committed while the statement waited for its locks is not
    # in what it read: it looks again, holding them, until no session is new (a fork of a
    # locked session now waits for the erasure, and then finds its source gone).
    while True:
        again = yield sessions
        if {row[0] for row in again} <= {row[0] for row in rows}:
            break
        rows = again
    erased = {"session_ids": json.dumps([row[0] for row in rows])}
    ((utterances,),) = yield Statement(sql.ERASURE_UTTERANCE_COUNT, erased)
    events = len((yield Statement(sql.ERASURE_DELETE_EVENTS, erased)))
    yield Statement(sql.ERASURE_DELETE_SESSIONS, erased)
    erasure = Erasure(sessions=len(rows), utterances=int(utterances), events=events)
    # Counts only: never who was erased, nor anything they said.
    yield participant_erased_event(None, erasure.model_dump())
    return erasure
