"""The asynchronous client of the session store's HTTP API."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from src.client import calls
from src.client.calls import Call, ResumeContext, TurnRecorded
from src.client.errors import error_from_response
from src.core.errors import StaleSessionError
from src.domain.export import ExportFormat
from src.domain.models.graph import Graph, GraphChange, SimilarNode
from src.domain.models.session import Session, SessionState, SessionStatus
from src.domain.models.utterance import NewUtterance, Utterance

__all__ = ["AsyncClient", "StateChange"]

T = TypeVar("T")
# What `modify_state` asks for: the new state, given the session as it is now.
StateChange = Callable[[Session], SessionState | Awaitable[SessionState]]

DEFAULT_URL = "http://127.0.0.1:8000"


def _headers(api_key: str | None) -> dict[str, str]:
    return {} if api_key is None else {"Authorization": f"Bearer {api_key}"}


class AsyncClient:
    """Every route of the API as an async method; errors are those of `src.core.errors`.

    Use it as `async with AsyncClient(url, api_key=...) as client:`, or call
    `aclose()`. Pass `http` to bring an `httpx.AsyncClient` of your own (its
    base URL and headers are then yours to set).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._http = http or httpx.AsyncClient(
            base_url=base_url, headers=_headers(api_key), timeout=timeout
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections; safe to call twice."""
        await self._http.aclose()

    async def _send(self, call: Call[T]) -> T:
        response = await self._http.request(
            call.method, call.path, params=call.params, json=call.json, headers=call.headers
        )
        if response.is_error:
            raise error_from_response(response)
        return call.read(response)

    async def _pages(self, call: Call[list[T]]) -> AsyncIterator[T]:
        """Every item of a listing, following its `Link: rel="next"` headers."""
        response = await self._http.request(call.method, call.path, params=call.params)
        while True:
            if response.is_error:
                raise error_from_response(response)
            for item in call.read(response):
                yield item
            next_page = response.links.get("next", {}).get("url")
            if next_page is None:
                return
            response = await self._http.get(next_page)

    async def create_session(
        self, *, methodology: str, concept_id: str, concept_name: str
    ) -> Session:
        """Start a session (`POST /sessions`)."""
        return await self._send(calls.create_session(methodology, concept_id, concept_name))

    async def get_session(self, session_id: str) -> Session:
        """Read a session. Raises SessionNotFoundError."""
        return await self._send(calls.get_session(session_id))

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        methodology: str | None = None,
        concept_id: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Session]:
        """Every matching session, newest first, fetched a page at a time as you iterate."""
        return self._pages(calls.list_sessions(status, methodology, concept_id, page_size))

    async def update_state(
        self, session_id: str, state: SessionState, *, expected_version: int | None = None
    ) -> Session:
        """Replace the state. Raises StaleSessionError when `expected_version` is not current."""
        return await self._send(calls.update_state(session_id, state, expected_version))

    async def modify_state(
        self, session_id: str, change: StateChange, *, attempts: int = 5
    ) -> Session:
        """Read the session, compute its new state with `change`, write it if nobody wrote since.

        When someone did (412), read again and call `change` on what they
        wrote, up to `attempts` times; then StaleSessionError is raised.
        """
        if attempts < 1:
            raise ValueError("attempts must be 1 or more")
        attempt = 1
        while True:
            session = await self.get_session(session_id)
            state = change(session)
            if inspect.isawaitable(state):
                state = await state
            try:
                return await self.update_state(session_id, state, expected_version=session.version)
            except StaleSessionError:
                if attempt >= attempts:
                    raise
                attempt += 1

    async def pause(self, session_id: str, *, expected_version: int | None = None) -> Session:
        """Pause an active session. Raises InvalidTransitionError from another status."""
        return await self._send(calls.transition(session_id, "pause", expected_version))

    async def resume(self, session_id: str, *, expected_version: int | None = None) -> Session:
        """Resume a paused session."""
        return await self._send(calls.transition(session_id, "resume", expected_version))

    async def complete(self, session_id: str, *, expected_version: int | None = None) -> Session:
        """Complete a session; final."""
        return await self._send(calls.transition(session_id, "complete", expected_version))

    async def abandon(self, session_id: str, *, expected_version: int | None = None) -> Session:
        """Abandon a session; final."""
        return await self._send(calls.transition(session_id, "abandon", expected_version))

    async def delete_session(self, session_id: str) -> None:
        """Delete a session for good. Raises SessionNotFoundError."""
        await self._send(calls.delete_session(session_id))

    async def health(self) -> dict[str, Any]:
        """`{"status": "ok", ...}`; StorageUnavailableError when the database cannot be read."""
        return await self._send(calls.health())

    async def append_utterance(self, session_id: str, utterance: NewUtterance) -> Utterance:
        """Append one utterance. Raises UtteranceExistsError, SessionEndedError."""
        return await self._send(calls.append_utterance(session_id, utterance))

    def list_utterances(
        self, session_id: str, *, after_turn: int | None = None, page_size: int | None = None
    ) -> AsyncIterator[Utterance]:
        """The transcript in turn order, fetched a page at a time as you iterate."""
        return self._pages(calls.list_utterances(session_id, after_turn, page_size))

    async def record_turn(
        self,
        session_id: str,
        utterances: Sequence[NewUtterance],
        state: SessionState,
        *,
        graph: GraphChange | None = None,
        expected_version: int | None = None,
    ) -> TurnRecorded:
        """Store a turn's utterances, the new state and its graph change together, or none."""
        return await self._send(
            calls.record_turn(session_id, utterances, state, expected_version, graph)
        )

    async def change_graph(
        self, session_id: str, change: GraphChange, *, expected_version: int | None = None
    ) -> Session:
        """Apply a graph change on its own. Raises SessionEndedError, StaleSessionError,
        InvalidGraphError, GraphTurnPassedError."""
        return await self._send(calls.change_graph(session_id, change, expected_version))

    async def get_graph(self, session_id: str, *, as_of_turn: int | None = None) -> Graph:
        """The session's graph as it stood after `as_of_turn` (default: now)."""
        return await self._send(calls.get_graph(session_id, as_of_turn))

    async def similar_nodes(
        self, session_id: str, node: str, *, k: int | None = None
    ) -> list[SimilarNode]:
        """The k nodes nearest to `node` by cosine, best first. Raises NodeNotFoundError,
        NodeWithoutEmbeddingError."""
        return await self._send(calls.similar_nodes(session_id, node, k))

    async def resume_context(self, session_id: str, *, last: int | None = None) -> ResumeContext:
        """The session and its last utterances, to go on with an interview."""
        return await self._send(calls.resume_context(session_id, last))

    async def export_session(
        self, session_id: str, export_format: ExportFormat | str = ExportFormat.JSON
    ) -> AsyncIterator[bytes]:
        """The session's whole record in `export_format`, streamed in pieces."""
        call = calls.export_session(session_id, export_format)
        async with self._http.stream(call.method, call.path, params=call.params) as response:
            if response.is_error:
                await response.aread()
                raise error_from_response(response)
            async for piece in response.aiter_bytes():
                yield piece

    async def export_study(
        self, study_id: str, export_format: str = "qdpx"
    ) -> AsyncIterator[bytes]:
        """Every session of the study in one file (qdpx, csv or jsonl), streamed in pieces."""
        call = calls.export_study(study_id, export_format)
        async with self._http.stream(call.method, call.path, params=call.params) as response:
            if response.is_error:
                await response.aread()
                raise error_from_response(response)
            async for piece in response.aiter_bytes():
                yield piece
