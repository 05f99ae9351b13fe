"""What every session repository provides, whatever its database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol, Self

from src.domain.audit import AuditAction, AuditEntry
from src.domain.models.erasure import Erasure
from src.domain.models.event import Event
from src.domain.models.graph import Graph, GraphChange, SimilarNode
from src.domain.models.session import Session, SessionState, SessionStatus
from src.domain.models.study import StudySummary
from src.domain.models.turn import NumberedTurnRecord, SessionVersion, Turn, TurnRecordData
from src.domain.models.utterance import NewUtterance, Speaker, Utterance
from src.domain.search import SearchHit
from src.persistence.repositories.audit import AuditPage

__all__ = [
    "EventBounds",
    "EventWatch",
    "SearchPage",
    "SessionPage",
    "SessionRepositoryProtocol",
    "TurnPage",
    "TurnRecord",
    "UtterancePage",
    "VersionPage",
]


class EventBounds(NamedTuple):
    """What the event log holds: ids up to `trimmed_through` are gone; `newest` is the
    newest id written (0 before the first)."""

    trimmed_through: int
    newest: int


class EventWatch(Protocol):
    """A hint that events may have been written, by this process or another."""

    pace_seconds: float
    """The least time between two readings of the log while events keep coming."""

    async def wait(self, seconds: float) -> None:
        """Return once events may have been written, or after `seconds`."""

    async def close(self) -> None:
        """Stop watching; idempotent."""


class SessionPage(NamedTuple):
    """One page of a listing; `next_cursor` is None on the last page."""

    items: list[Session]
    next_cursor: str | None


class UtterancePage(NamedTuple):
    """One page of a session's utterances in turn order; `next_cursor` is None on the last."""

    items: list[Utterance]
    next_cursor: str | None


class SearchPage(NamedTuple):
    """One page of search hits, best first; `next_cursor` is None on the last."""

    items: list[SearchHit]
    next_cursor: str | None


class TurnRecord(NamedTuple):
    """What `record_turn` stored: the session after it, the utterances and the record."""

    session: Session
    utterances: list[Utterance]
    record: TurnRecordData | None = None


class TurnPage(NamedTuple):
    """One page of a session's turns; `next_after_turn` is None on the last page."""

    items: list[Turn]
    next_after_turn: int | None


class VersionPage(NamedTuple):
    """One page of a session's history; `next_after` is None on the last page."""

    items: list[SessionVersion]
    next_after: int | None


class SessionRepositoryProtocol(Protocol):
    """The session store's surface; the API depends on this, not on a backend."""

    async def create(self, session: Session) -> Session: ...

    async def get(self, session_id: str) -> Session | None: ...

    async def update_state(
        self, session_id: str, state: SessionState, *, expected_version: int | None = None
    ) -> Session: ...

    async def transition(
        self,
        session_id: str,
        to_status: SessionStatus | str,
        *,
        expected_version: int | None = None,
    ) -> Session: ...

    async def list_active(self) -> list[Session]: ...

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
    ) -> SessionPage: ...

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
    ) -> int: ...

    async def study_summary(self, study_id: str) -> StudySummary: ...

    async def list_studies(self, *, limit: int = 50) -> list[StudySummary]: ...

    async def patch_session(
        self,
        session_id: str,
        patch: Mapping[str, Any],
        *,
        expected_version: int | None = None,
    ) -> Session: ...

    async def patch_state(
        self, session_id: str, patch: Any, *, expected_version: int | None = None
    ) -> Session: ...

    async def list_turns(
        self, session_id: str, *, after_turn: int | None = None, limit: int = 50
    ) -> TurnPage: ...

    async def list_turn_records(
        self, session_id: str, *, after_turn: int | None = None, limit: int = 100
    ) -> list[NumberedTurnRecord]: ...

    async def list_versions(
        self, session_id: str, *, after: int | None = None, limit: int = 50
    ) -> VersionPage: ...

    async def get_version(self, session_id: str, version: int) -> Session: ...

    async def fork(
        self,
        session_id: str,
        at_turn: int,
        *,
        new_id: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Session: ...

    async def delete(self, session_id: str) -> bool: ...

    async def append_utterance(self, session_id: str, utterance: NewUtterance) -> Utterance: ...

    async def list_utterances(
        self,
        session_id: str,
        *,
        after_turn: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> UtterancePage: ...

    async def last_utterances(self, session_id: str, count: int) -> list[Utterance]: ...

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
    ) -> TurnRecord: ...

    async def change_graph(
        self, session_id: str, change: GraphChange, *, expected_version: int | None = None
    ) -> Session: ...

    async def get_graph(self, session_id: str, *, as_of_turn: int | None = None) -> Graph: ...

    async def similar_nodes(
        self, session_id: str, node_id: str, *, k: int = 10
    ) -> list[SimilarNode]: ...

    async def list_idle(
        self, status: SessionStatus, *, idle_since: datetime, limit: int = 100
    ) -> list[Session]: ...

    async def move_idle(
        self,
        from_status: SessionStatus,
        to_status: SessionStatus,
        *,
        idle_since: datetime,
        limit: int = 100,
    ) -> list[Session]: ...

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
    ) -> SearchPage: ...

    async def list_events(
        self,
        *,
        after: int,
        session_id: str | None = None,
        study_id: str | None = None,
        limit: int = 500,
    ) -> list[Event]: ...

    async def event_bounds(self) -> EventBounds: ...

    async def trim_events(self, before: datetime, *, limit: int = 1000) -> int: ...

    async def watch_events(self) -> EventWatch: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None: ...

    async def list_audit(
        self,
        *,
        action: AuditAction | str | None = None,
        key_name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> AuditPage: ...

    async def count_by_status(self) -> dict[SessionStatus, int]: ...

    async def erase_participant(self, participant_id: str) -> Erasure: ...
