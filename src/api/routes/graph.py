"""Routes for a session's conversation graph."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import TypeAdapter

from src.api.deps import IfMatchHeader, RepositoryDep, SessionIdPath
from src.api.errors import problem_responses
from src.api.preconditions import etag, expected_version
from src.domain.models.graph import Graph, GraphChange, GraphId, SimilarNode
from src.domain.models.session import MAX_COUNT, Session

router = APIRouter(
    prefix="/sessions/{session_id}/graph",
    tags=["graph"],
    responses=problem_responses(400, 401, 503),
)

_SIMILAR_LIST = TypeAdapter(list[SimilarNode])


@router.post(
    "",
    response_model=Session,
    responses=problem_responses(404, 409, 412, 413, 415, 422, 507),
)
async def change_graph(
    session_id: SessionIdPath,
    body: GraphChange,
    repository: RepositoryDep,
    if_match: IfMatchHeader = None,
) -> Response:
    """Upsert and remove nodes and edges in one transaction, as belonging to the session's
    highest turn number (0 before any); makes a version with change `graph`."""
    expected = await expected_version(repository, session_id, if_match)
    session = await repository.change_graph(session_id, body, expected_version=expected)
    return Response(
        session.model_dump_json(),
        media_type="application/json",
        headers={"ETag": etag(session.version)},
    )


@router.get("", response_model=Graph, responses=problem_responses(404, 422))
async def get_graph(
    session_id: SessionIdPath,
    repository: RepositoryDep,
    as_of_turn: Annotated[
        int | None,
        Query(ge=0, le=MAX_COUNT, description="The graph as it stood after this turn"),
    ] = None,
) -> Response:
    """The session's nodes and edges as they stood after turn `as_of_turn` (default: now)."""
    graph = await repository.get_graph(session_id, as_of_turn=as_of_turn)
    return Response(graph.model_dump_json(), media_type="application/json")


@router.get("/similar", response_model=list[SimilarNode], responses=problem_responses(404, 422))
async def similar_nodes(
    session_id: SessionIdPath,
    repository: RepositoryDep,
    node: Annotated[GraphId, Query(description="The node to compare the others with")],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Response:
    """The `k` other nodes whose embeddings (of the same length) are nearest to the node's
    by cosine, best first."""
    hits = await repository.similar_nodes(session_id, node, k=k)
    return Response(_SIMILAR_LIST.dump_json(hits), media_type="application/json")
