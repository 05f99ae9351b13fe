"""What every session repository provides, whatever its database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple, Protocol, Self

from src.domain.audit import AuditAction, AuditEntry
from src.domain.models.session import Session, SessionState, SessionStatus
from src.domain.models.utterance import NewUtterance, Speaker, Utterance
from src.domain.search import SearchHit
from src.persistence.repositories.audit import AuditPage

__all__ = ["SearchPage", "SessionPage", "SessionRepositoryProtocol", "TurnRecord", "UtterancePage"]


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
    """What `record_turn` stored: the session after its state update, and the utterances."""

    session: Session
    utterances: list[Utterance]


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
        limit: int = 50,
        cursor: str | None = None,
    ) -> SessionPage: ...

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
        state: SessionState,
        *,
        expected_version: int | None = None,
    ) -> TurnRecord: ...

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
        speaker: Speaker | str | None = None,
        methodology: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SearchPage: ...

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
