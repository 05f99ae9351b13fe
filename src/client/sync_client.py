"""The synchronous client of the session store's HTTP API: the same methods, blocking."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from src.client import calls
from src.client.async_client import DEFAULT_URL
from src.client.calls import Call, ResumeContext, SessionFilters, TurnRecorded
from src.client.errors import error_from_response
from src.core.errors import StaleSessionError
from src.domain.audit import AuditEntry
from src.domain.export import ExportFormat
from src.domain.models.erasure import Erasure
from src.domain.models.event import Event
from src.domain.models.graph import Graph, GraphChange, SimilarNode
from src.domain.models.session import Session, SessionState, SessionStatus
from src.domain.models.study import StudySummary
from src.domain.models.turn import SessionVersion, Turn, TurnRecordData
from src.domain.models.utterance import NewUtterance, Utterance
from src.domain.search import SearchHit

__all__ = ["Client", "StateChange"]

T = TypeVar("T")
# What `modify_state` asks for: the new state, given the session as it is now.
StateChange = Callable[[Session], SessionState]


def _headers(api_key: str | None) -> dict[str, str]:
    return {} if api_key is None else {"Authorization": f"Bearer {api_key}"}


class Client:
    """Every route of the API as a method; errors are those of `src.core.errors`.

    Use it as `with Client(url, api_key=...) as client:`, or call `close()`.
    Pass `http` to bring an `httpx.Client` of your own (its base URL and
    headers are then yours to set).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        self._http = http or httpx.Client(
            base_url=base_url, headers=_headers(api_key), timeout=timeout
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections; safe to call twice."""
        self._http.close()

    def _send(self, call: Call[T]) -> T:
        response = self._http.request(
            call.method, call.path, params=call.params, json=call.json, headers=call.headers
        )
        if response.is_error:
            raise error_from_response(response)
        return call.read(response)

    def _pages(self, call: Call[list[T]]) -> Iterator[T]:
        """Every item of a listing, following its `Link: rel="next"` headers."""
        response = self._http.request(call.method, call.path, params=call.params)
        while True:
            if response.is_error:
                raise error_from_response(response)
            yield from call.read(response)
            next_page = response.links.get("next", {}).get("url")
            if next_page is None:
                return
            response = self._http.get(next_page)

    def create_session(
        self,
        *,
        methodology: str,
        concept_id: str,
        concept_name: str,
        study_id: str | None = None,
        participant_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> Session:
        """Start a session (`POST /sessions`); `config` is fixed for its whole life."""
        return self._send(
            calls.create_session(
                methodology, concept_id, concept_name, study_id, participant_id, labels, config
            )
        )

    def get_session(self, session_id: str) -> Session:
        """Read a session. Raises SessionNotFoundError."""
        return self._send(calls.get_session(session_id))

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        methodology: str | None = None,
        concept_id: str | None = None,
        study_id: str | None = None,
        participant_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int | None = None,
    ) -> Iterator[Session]:
        """Every matching session, newest first, fetched a page at a time as you iterate.

        `status` defaults to active on the server; `status="all"` lists every status.
        `labels` must all match; `created_after` and `created_before` are exclusive.
        """
        filters = SessionFilters(
            status,
            methodology,
            concept_id,
            study_id,
            participant_id,
            labels,
            created_after,
            created_before,
        )
        return self._pages(calls.list_sessions(filters, page_size))

    def count_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        methodology: str | None = None,
        concept_id: str | None = None,
        study_id: str | None = None,
        participant_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> int:
        """How many sessions `list_sessions` with the same filters would give."""
        filters = SessionFilters(
            status,
            methodology,
            concept_id,
            study_id,
            participant_id,
            labels,
            created_after,
            created_before,
        )
        return self._send(calls.count_sessions(filters))

    def patch_session(
        self, session_id: str, patch: Mapping[str, Any], *, expected_version: int | None = None
    ) -> Session:
        """Merge-patch `labels` and `participant_id`: `{"labels": {"arm": "b", "old": None}}`
        sets one label and removes another."""
        return self._send(calls.patch_session(session_id, patch, expected_version))

    def update_state(
        self, session_id: str, state: SessionState, *, expected_version: int | None = None
    ) -> Session:
        """Replace the state. Raises StaleSessionError when `expected_version` is not current."""
        return self._send(calls.update_state(session_id, state, expected_version))

    def patch_state(
        self, session_id: str, patch: Mapping[str, Any], *, expected_version: int | None = None
    ) -> Session:
        """Apply an RFC 7396 merge patch to the state (typed fields and `data`) atomically.

        A member set to None is removed; SessionMismatchError if it would change the
        methodology or concept, InvalidStateError if the result is not a valid state.
        """
        return self._send(calls.patch_state(session_id, patch, expected_version))

    def modify_state(self, session_id: str, change: StateChange, *, attempts: int = 5) -> Session:
        """Read the session, compute its new state with `change`, write it if nobody wrote since.

        When someone did (412), read again and call `change` on what they
        wrote, up to `attempts` times; then StaleSessionError is raised.
        """
        if attempts < 1:
            raise ValueError("attempts must be 1 or more")
        attempt = 1
        while True:
            session = self.get_session(session_id)
            state = change(session)
            try:
                return self.update_state(session_id, state, expected_version=session.version)
            except StaleSessionError:
                if attempt >= attempts:
                    raise
                attempt += 1

    def pause(self, session_id: str, *, expected_version: int | None = None) -> Session:
        """Pause an active session. Raises InvalidTransitionError from another status."""
        return self._send(calls.transition(session_id, "pause", expected_version))

    def resume(self, session_id: str, *, expected_version: int | None = None) -> Session:
        """Resume a paused session."""
        return self._send(calls.transition(session_id, "resume", expected_version))

    def complete(self, session_id: str, *, expected_version: int | None = None) -> Session:
        """Complete a session; final."""
        return self._send(calls.transition(session_id, "complete", expected_version))

    def abandon(self, session_id: str, *, expected_version: int | None = None) -> Session:
        """Abandon a session; final."""
        return self._send(calls.transition(session_id, "abandon", expected_version))

    def delete_session(self, session_id: str) -> None:
        """Delete a session for good. Raises SessionNotFoundError."""
        self._send(calls.delete_session(session_id))

    def erase_participant(self, participant_id: str) -> Erasure:
        """Erase every session of the participant (an admin key); the counts erased.
        Raises ParticipantNotFoundError."""
        return self._send(calls.erase_participant(participant_id))

    def health(self) -> dict[str, Any]:
        """`{"status": "ok", ...}`; StorageUnavailableError when the database cannot be read."""
        return self._send(calls.health())

    def append_utterance(self, session_id: str, utterance: NewUtterance) -> Utterance:
        """Append one utterance. Raises UtteranceExistsError, SessionEndedError."""
        return self._send(calls.append_utterance(session_id, utterance))

    def list_utterances(
        self, session_id: str, *, after_turn: int | None = None, page_size: int | None = None
    ) -> Iterator[Utterance]:
        """The transcript in turn order, fetched a page at a time as you iterate."""
        return self._pages(calls.list_utterances(session_id, after_turn, page_size))

    def record_turn(
        self,
        session_id: str,
        utterances: Sequence[NewUtterance],
        state: SessionState | None = None,
        *,
        state_patch: Mapping[str, Any] | None = None,
        record: TurnRecordData | Mapping[str, Any] | None = None,
        graph: GraphChange | None = None,
        expected_version: int | None = None,
    ) -> TurnRecorded:
        """Store a turn's utterances, the new state (whole, or `state_patch` as a merge
        patch), its `record` and its `graph` change together, or none of them. Give one
        of state and state_patch.
        """
        call = calls.record_turn(
            session_id, utterances, state, state_patch, record, expected_version, graph
        )
        return self._send(call)

    def list_turns(
        self, session_id: str, *, after_turn: int | None = None, page_size: int | None = None
    ) -> Iterator[Turn]:
        """Every turn with its utterances and record, in turn order, a page at a time."""
        return self._pages(calls.list_turns(session_id, after_turn, page_size))

    def list_versions(
        self, session_id: str, *, after: int | None = None, page_size: int | None = None
    ) -> Iterator[SessionVersion]:
        """The session after every write that changed it, oldest first, a page at a time."""
        return self._pages(calls.list_versions(session_id, after, page_size))

    def get_version(self, session_id: str, version: int) -> Session:
        """The session as of `version`. Raises VersionNotFoundError."""
        return self._send(calls.get_version(session_id, version))

    def fork_session(
        self,
        session_id: str,
        *,
        at_turn: int,
        new_id: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Session:
        """A new active session holding this one's turns up to `at_turn`.

        Raises TurnNotRecordedError past the last turn, SessionExistsError for a taken id.
        """
        return self._send(calls.fork_session(session_id, at_turn, new_id, labels))

    def get_study(self, study_id: str) -> StudySummary:
        """A study's sessions by status and usage totals. Raises StudyNotFoundError."""
        return self._send(calls.get_study(study_id))

    def search(
        self,
        q: str,
        *,
        study_id: str | None = None,
        participant_id: str | None = None,
        speaker: str | None = None,
        methodology: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[SearchHit]:
        """Utterances matching `q`, best first, a page at a time. Raises
        InvalidSearchQueryError for a query without a word."""
        call = calls.search(q, study_id, participant_id, speaker, methodology, page_size)
        return self._pages(call)

    def list_audit(
        self,
        *,
        action: str | None = None,
        key_name: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[AuditEntry]:
        """The audit log, newest first, a page at a time (an admin key)."""
        return self._pages(calls.list_audit(action, key_name, page_size))

    def change_graph(
        self, session_id: str, change: GraphChange, *, expected_version: int | None = None
    ) -> Session:
        """Apply a graph change on its own. Raises SessionEndedError, StaleSessionError,
        InvalidGraphError, GraphTurnPassedError."""
        return self._send(calls.change_graph(session_id, change, expected_version))

    def get_graph(self, session_id: str, *, as_of_turn: int | None = None) -> Graph:
        """The session's graph as it stood after `as_of_turn` (default: now)."""
        return self._send(calls.get_graph(session_id, as_of_turn))

    def similar_nodes(
        self, session_id: str, node: str, *, k: int | None = None
    ) -> list[SimilarNode]:
        """The k nodes nearest to `node` by cosine, best first. Raises NodeNotFoundError,
        NodeWithoutEmbeddingError."""
        return self._send(calls.similar_nodes(session_id, node, k))

    def resume_context(self, session_id: str, *, last: int | None = None) -> ResumeContext:
        """The session and its last utterances, to go on with an interview."""
        return self._send(calls.resume_context(session_id, last))

    def events(
        self,
        *,
        session_id: str | None = None,
        study_id: str | None = None,
        after: int | None = None,
    ) -> Generator[Event, None, None]:
        """Every event after `after` (else from now on), as it is written; runs until closed.

        Pass the last event's id as `after` to resume where a stream ended.
        """
        call = calls.events(session_id, study_id, after)
        with self._http.stream(
            call.method, call.path, params=call.params, timeout=None
        ) as response:
            if response.is_error:
                response.read()
                raise error_from_response(response)
            lines: list[str] = []
            for line in response.iter_lines():
                if line:
                    lines.append(line)
                    continue
                event = calls.event_from_lines(lines)
                lines = []
                if event is not None:
                    yield event

    def export_session(
        self,
        session_id: str,
        export_format: ExportFormat | str = ExportFormat.JSON,
        *,
        pseudonymize: bool = False,
    ) -> Iterator[bytes]:
        """The session's whole record in `export_format`, streamed in pieces.

        `pseudonymize=True` replaces participant ids and contact details (the server
        needs PSEUDONYM_KEY; PseudonymKeyMissingError without it).
        """
        call = calls.export_session(session_id, export_format, pseudonymize)
        with self._http.stream(call.method, call.path, params=call.params) as response:
            if response.is_error:
                response.read()
                raise error_from_response(response)
            yield from response.iter_bytes()

    def export_study(self, study_id: str, export_format: str = "qdpx") -> Iterator[bytes]:
        """Every session of the study in one file (qdpx, csv or jsonl), streamed in pieces."""
        call = calls.export_study(study_id, export_format)
        with self._http.stream(call.method, call.path, params=call.params) as response:
            if response.is_error:
                response.read()
                raise error_from_response(response)
            yield from response.iter_bytes()
