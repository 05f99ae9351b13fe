"""Every route as a request to send and a way to read its answer, shared by both clients.

A new route is one function here and a one-line method in each client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from src.api.schemas import ResumeContext, TurnRecorded
from src.domain.export import ExportFormat
from src.domain.models.graph import Graph, GraphChange, SimilarNode
from src.domain.models.session import Session, SessionState, SessionStatus
from src.domain.models.utterance import NewUtterance, Utterance

__all__ = ["Call", "ResumeContext", "TurnRecorded"]

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)

_SESSIONS = TypeAdapter(list[Session])
_UTTERANCES = TypeAdapter(list[Utterance])
_SIMILAR = TypeAdapter(list[SimilarNode])


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and how to read a successful answer to it."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, str | int] = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _model(model: type[ModelT]) -> Callable[[httpx.Response], ModelT]:
    return lambda response: model.model_validate_json(response.content)


def _nothing(response: httpx.Response) -> None:
    return None


def _if_match(expected_version: int | None) -> dict[str, str]:
    return {} if expected_version is None else {"If-Match": f'"{expected_version}"'}


def _session_path(session_id: str, *rest: str) -> str:
    # An id may hold any character but a control one; "/" must not split the path.
    return "/".join(("/sessions", quote(session_id, safe=""), *rest))


def _query(**values: str | int | None) -> dict[str, str | int]:
    return {name: value for name, value in values.items() if value is not None}


def create_session(methodology: str, concept_id: str, concept_name: str) -> Call[Session]:
    body = {"methodology": methodology, "concept_id": concept_id, "concept_name": concept_name}
    return Call("POST", "/sessions", _model(Session), json=body)


def get_session(session_id: str) -> Call[Session]:
    return Call("GET", _session_path(session_id), _model(Session))


def list_sessions(
    status: SessionStatus | str | None,
    methodology: str | None,
    concept_id: str | None,
    limit: int | None,
) -> Call[list[Session]]:
    params = _query(
        status=None if status is None else str(status),
        methodology=methodology,
        concept_id=concept_id,
        limit=limit,
    )
    return Call("GET", "/sessions", lambda r: _SESSIONS.validate_json(r.content), params=params)


def update_state(
    session_id: str, state: SessionState, expected_version: int | None
) -> Call[Session]:
    return Call(
        "PUT",
        _session_path(session_id, "state"),
        _model(Session),
        json=state.model_dump(mode="json"),
        headers=_if_match(expected_version),
    )


def transition(session_id: str, action: str, expected_version: int | None) -> Call[Session]:
    """`action` is one of pause, resume, complete, abandon."""
    return Call(
        "POST",
        _session_path(session_id, action),
        _model(Session),
        headers=_if_match(expected_version),
    )


def delete_session(session_id: str) -> Call[None]:
    return Call("DELETE", _session_path(session_id), _nothing)


def health() -> Call[dict[str, Any]]:
    return Call("GET", "/health", lambda response: dict(response.json()))


def append_utterance(session_id: str, utterance: NewUtterance) -> Call[Utterance]:
    return Call(
        "POST",
        _session_path(session_id, "utterances"),
        _model(Utterance),
        json=utterance.model_dump(mode="json"),
    )


def list_utterances(
    session_id: str, after_turn: int | None, limit: int | None
) -> Call[list[Utterance]]:
    return Call(
        "GET",
        _session_path(session_id, "utterances"),
        lambda response: _UTTERANCES.validate_json(response.content),
        params=_query(after_turn=after_turn, limit=limit),
    )


def record_turn(
    session_id: str,
    utterances: Sequence[NewUtterance],
    state: SessionState,
    expected_version: int | None,
    graph: GraphChange | None = None,
) -> Call[TurnRecorded]:
    body = {
        "utterances": [utterance.model_dump(mode="json") for utterance in utterances],
        "state": state.model_dump(mode="json"),
    }
    if graph is not None:
        body["graph"] = graph.model_dump(mode="json", exclude_none=True)
    return Call(
        "POST",
        _session_path(session_id, "turns"),
        _model(TurnRecorded),
        json=body,
        headers=_if_match(expected_version),
    )


def resume_context(session_id: str, last: int | None) -> Call[ResumeContext]:
    return Call(
        "GET", _session_path(session_id, "resume"), _model(ResumeContext), params=_query(last=last)
    )


def export_session(session_id: str, export_format: ExportFormat | str) -> Call[None]:
    """Streamed by the clients; `read` is not used."""
    params = {"format": str(ExportFormat(export_format))}
    return Call("GET", _session_path(session_id, "export"), _nothing, params=params)


def change_graph(
    session_id: str, change: GraphChange, expected_version: int | None
) -> Call[Session]:
    return Call(
        "POST",
        _session_path(session_id, "graph"),
        _model(Session),
        json=change.model_dump(mode="json", exclude_none=True),
        headers=_if_match(expected_version),
    )


def get_graph(session_id: str, as_of_turn: int | None) -> Call[Graph]:
    return Call(
        "GET",
        _session_path(session_id, "graph"),
        _model(Graph),
        params=_query(as_of_turn=as_of_turn),
    )


def similar_nodes(session_id: str, node: str, k: int | None) -> Call[list[SimilarNode]]:
    return Call(
        "GET",
        _session_path(session_id, "graph", "similar"),
        lambda response: _SIMILAR.validate_json(response.content),
        params=_query(node=node, k=k),
    )


def export_study(study_id: str, export_format: str) -> Call[None]:
    """Streamed by the clients; `read` is not used. `export_format`: qdpx, csv or jsonl."""
    path = "/".join(("/studies", quote(study_id, safe=""), "export"))
    return Call("GET", path, _nothing, params={"format": export_format})
