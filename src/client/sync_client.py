"""The synchronous client of the session store's HTTP API: the same methods, blocking."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from src.client import calls
from src.client.async_client import DEFAULT_URL
from src.client.calls import Call, ResumeContext, TurnRecorded
from src.client.errors import error_from_response
from src.core.errors import StaleSessionError
from src.domain.export import ExportFormat
from src.domain.models.graph import Graph, GraphChange, SimilarNode
from src.domain.models.session import Session, SessionState, SessionStatus
from src.domain.models.utterance import NewUtterance, Utterance

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

    def create_session(self, *, methodology: str, concept_id: str, concept_name: str) -> Session:
        """Start a session (`POST /sessions`)."""
        return self._send(calls.create_session(methodology, concept_id, concept_name))

    def get_session(self, session_id: str) -> Session:
        """Read a session. Raises SessionNotFoundError."""
        return self._send(calls.get_session(session_id))

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        methodology: str | None = None,
        concept_id: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[Session]:
        """Every matching session, newest first, fetched a page at a time as you iterate."""
        return self._pages(calls.list_sessions(status, methodology, concept_id, page_size))

    def update_state(
        self, session_id: str, state: SessionState, *, expected_version: int | None = None
    ) -> Session:
        """Replace the state. Raises StaleSessionError when `expected_version` is not current."""
        return self._send(calls.update_state(session_id, state, expected_version))

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
        state: SessionState,
        *,
        graph: GraphChange | None = None,
        expected_version: int | None = None,
    ) -> TurnRecorded:
        """Store a turn's utterances, the new state and its graph change together, or none."""
        return self._send(calls.record_turn(session_id, utterances, state, expected_version, graph))

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

    def export_session(
        self, session_id: str, export_format: ExportFormat | str = ExportFormat.JSON
    ) -> Iterator[bytes]:
        """The session's whole record in `export_format`, streamed in pieces."""
        call = calls.export_session(session_id, export_format)
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
