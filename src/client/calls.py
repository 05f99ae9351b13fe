"""Every route as a request to send and a way to read its answer, shared by both clients.

A new route is one function here and a one-line method in each client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from src.api.schemas import ResumeContext, TurnRecorded
from src.domain.audit import AuditEntry
from src.domain.export import ExportFormat
from src.domain.models.erasure import Erasure
from src.domain.models.event import Event, EventType
from src.domain.models.graph import Graph, GraphChange, SimilarNode
from src.domain.models.session import Session, SessionState, SessionStatus
from src.domain.models.study import StudySummary
from src.domain.models.turn import SessionVersion, Turn, TurnRecordData
from src.domain.models.utterance import NewUtterance, Utterance
from src.domain.search import SearchHit

__all__ = ["MERGE_PATCH", "Call", "ResumeContext", "SessionFilters", "TurnRecorded"]

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)

_SESSIONS = TypeAdapter(list[Session])
_UTTERANCES = TypeAdapter(list[Utterance])
_TURNS = TypeAdapter(list[Turn])
_VERSIONS = TypeAdapter(list[SessionVersion])
_HITS = TypeAdapter(list[SearchHit])
_AUDIT = TypeAdapter(list[AuditEntry])
EVENT_TYPES = frozenset(EventType)

MERGE_PATCH = "application/merge-patch+json"
# A query value; a list repeats the parameter (label=a:1&label=b:2).
QueryValue = str | int | list[str]
_SIMILAR = TypeAdapter(list[SimilarNode])


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and how to read a successful answer to it."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, QueryValue] = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _model(model: type[ModelT]) -> Callable[[httpx.Response], ModelT]:
    return lambda response: model.model_validate_json(response.content)


def _nothing(response: httpx.Response) -> None:
    return None


def _if_match(expected_version: int | None) -> dict[str, str]:
    return {} if expected_version is None else {"If-Match": f'"{expected_version}"'}


def _session_path(session_id: str, *rest: str) -> str:
    # An id may hold any character but a control one; "/" must not split the
    # path, and an id "." or ".." must not be read as a dot segment, which
    # httpx removes from a path (the server decodes %2E as ".").
    return "/".join(("/sessions", quote(session_id, safe="").replace(".", "%2E"), *rest))


def _query(**values: QueryValue | None) -> dict[str, QueryValue]:
    return {name: value for name, value in values.items() if value is not None}


def _rfc3339(moment: datetime | None) -> str | None:
    # The server needs an offset; a naive datetime is taken as UTC, as the models do.
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


@dataclass(frozen=True)
class SessionFilters:
    """What `GET /sessions` filters on; `None` filters nothing, `status="all"` lists all."""

    status: SessionStatus | str | None = None
    methodology: str | None = None
    concept_id: str | None = None
    study_id: str | None = None
    participant_id: str | None = None
    labels: Mapping[str, str] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def params(self) -> dict[str, QueryValue]:
        labels = None if self.labels is None else [f"{k}:{v}" for k, v in self.labels.items()]
        return _query(
            status=None if self.status is None else str(self.status),
            methodology=self.methodology,
            concept_id=self.concept_id,
            study_id=self.study_id,
            participant_id=self.participant_id,
            label=labels or None,
            created_after=_rfc3339(self.created_after),
            created_before=_rfc3339(self.created_before),
        )


def create_session(
    methodology: str,
    concept_id: str,
    concept_name: str,
    study_id: str | None = None,
    participant_id: str | None = None,
    labels: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Call[Session]:
    body: dict[str, Any] = {
        "methodology": methodology,
        "concept_id": concept_id,
        "concept_name": concept_name,
    }
    optional = {
        "study_id": study_id,
        "participant_id": participant_id,
        "labels": labels,
        "config": config,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return Call("POST", "/sessions", _model(Session), json=body)


def get_session(session_id: str) -> Call[Session]:
    return Call("GET", _session_path(session_id), _model(Session))


def list_sessions(filters: SessionFilters, limit: int | None) -> Call[list[Session]]:
    params = {**filters.params(), **_query(limit=limit)}
    return Call("GET", "/sessions", lambda r: _SESSIONS.validate_json(r.content), params=params)


def count_sessions(filters: SessionFilters) -> Call[int]:
    params = {**filters.params(), "limit": 1, "include_total": "true"}
    return Call("GET", "/sessions", lambda r: int(r.headers["X-Total-Count"]), params=params)


def get_study(study_id: str) -> Call[StudySummary]:
    return Call("GET", "/studies/" + quote(study_id, safe=""), _model(StudySummary))


def patch_session(
    session_id: str, patch: Mapping[str, Any], expected_version: int | None
) -> Call[Session]:
    return Call(
        "PATCH",
        _session_path(session_id),
        _model(Session),
        json=dict(patch),
        headers={"Content-Type": MERGE_PATCH, **_if_match(expected_version)},
    )


def patch_state(
    session_id: str, patch: Mapping[str, Any], expected_version: int | None
) -> Call[Session]:
    return Call(
        "PATCH",
        _session_path(session_id, "state"),
        _model(Session),
        json=dict(patch),
        headers={"Content-Type": MERGE_PATCH, **_if_match(expected_version)},
    )


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


def erase_participant(participant_id: str) -> Call[Erasure]:
    return Call("DELETE", "/participants/" + quote(participant_id, safe=""), _model(Erasure))


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
    state: SessionState | None,
    state_patch: Mapping[str, Any] | None,
    record: TurnRecordData | Mapping[str, Any] | None,
    expected_version: int | None,
    graph: GraphChange | None = None,
) -> Call[TurnRecorded]:
    if (state is None) == (state_patch is None):
        raise ValueError("give exactly one of state and state_patch")
    body: dict[str, Any] = {
        "utterances": [utterance.model_dump(mode="json") for utterance in utterances]
    }
    if state is not None:
        body["state"] = state.model_dump(mode="json")
    else:
        body["state_patch"] = dict(state_patch or {})
    if record is not None:
        body["record"] = TurnRecordData.model_validate(record).model_dump(mode="json")
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


def list_turns(session_id: str, after_turn: int | None, limit: int | None) -> Call[list[Turn]]:
    return Call(
        "GET",
        _session_path(session_id, "turns"),
        lambda response: _TURNS.validate_json(response.content),
        params=_query(after_turn=after_turn, limit=limit),
    )


def list_versions(
    session_id: str, after: int | None, limit: int | None
) -> Call[list[SessionVersion]]:
    return Call(
        "GET",
        _session_path(session_id, "versions"),
        lambda response: _VERSIONS.validate_json(response.content),
        params=_query(after=after, limit=limit),
    )


def get_version(session_id: str, version: int) -> Call[Session]:
    return Call("GET", _session_path(session_id, "versions", str(version)), _model(Session))


def fork_session(
    session_id: str, at_turn: int, new_id: str | None, labels: Mapping[str, str] | None
) -> Call[Session]:
    body: dict[str, Any] = {"at_turn": at_turn}
    if new_id is not None:
        body["id"] = new_id
    if labels is not None:
        body["labels"] = dict(labels)
    return Call("POST", _session_path(session_id, "fork"), _model(Session), json=body)


def search(
    q: str,
    study_id: str | None,
    participant_id: str | None,
    speaker: str | None,
    methodology: str | None,
    limit: int | None,
) -> Call[list[SearchHit]]:
    params = _query(
        q=q,
        study_id=study_id,
        participant_id=participant_id,
        speaker=speaker,
        methodology=methodology,
        limit=limit,
    )
    return Call("GET", "/search", lambda r: _HITS.validate_json(r.content), params=params)


def list_audit(
    action: str | None, key_name: str | None, limit: int | None
) -> Call[list[AuditEntry]]:
    params = _query(action=action, key_name=key_name, limit=limit)
    return Call("GET", "/audit", lambda r: _AUDIT.validate_json(r.content), params=params)


def events(session_id: str | None, study_id: str | None, after: int | None) -> Call[None]:
    """Streamed by the clients (Server-Sent Events); `read` is not used."""
    params = _query(session_id=session_id, study_id=study_id, after=after)
    return Call("GET", "/events", _nothing, params=params)


def event_from_lines(lines: Sequence[str]) -> Event | None:
    """The event one Server-Sent Events message carries; None for a heartbeat or a notice."""
    data = "\n".join(line[5:].removeprefix(" ") for line in lines if line.startswith("data:"))
    kind = next((line[6:].strip() for line in lines if line.startswith("event:")), None)
    if not data or kind is None or kind not in EVENT_TYPES:
        return None
    return Event.model_validate_json(data)


def export_session(
    session_id: str, export_format: ExportFormat | str, pseudonymize: bool
) -> Call[None]:
    """Streamed by the clients; `read` is not used."""
    params: dict[str, QueryValue] = {"format": str(ExportFormat(export_format))}
    if pseudonymize:
        params["pseudonymize"] = "true"
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
