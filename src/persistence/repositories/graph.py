"""Units of work for the conversation graph (see `core` for what a unit is).

A change at turn T closes the standing row of each item it replaces or
removes (valid_to = T) and inserts the new one (valid_from = T); an item
already written in turn T is rewritten in place, so a turn costs at most
one row per item it touches.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence
from itertools import chain
from operator import attrgetter
from typing import Any

from pydantic import TypeAdapter

from src.core.errors import (
    GraphTurnPassedError,
    InvalidGraphError,
    NodeNotFoundError,
    NodeWithoutEmbeddingError,
    SessionNotFoundError,
)
from src.domain.models.graph import (
    Edge,
    EdgeUpsert,
    Graph,
    GraphChange,
    Node,
    NodeUpsert,
    SimilarNode,
    Span,
)
from src.domain.models.json import compact_json
from src.persistence.repositories import graph_statements as sql
from src.persistence.repositories.common import Row
from src.persistence.repositories.embedding_cache import EmbeddingCache, Embeddings, as_vector
from src.persistence.repositories.statements import Query, Statement, Unit

__all__ = ["apply_graph_change", "copy_graph", "graph_as_of", "nearest_nodes"]

# A supersession chain longer than this is refused rather than walked further.
_MAX_CHAIN = 10_000


# Embeddings are stored as little-endian float64 values, whatever the machine.
_SWAP = sys.byteorder != "little"
_FLOAT_BYTES = 8


def _embedding_bytes(values: Sequence[float] | None) -> bytes | None:
    if values is None:
        return None
    floats = array("d", values)
    if _SWAP:
        floats.byteswap()
    return floats.tobytes()


def _embedding_values(blob: Any) -> list[float] | None:
    if blob is None:
        return None
    floats = array("d", bytes(blob))
    if _SWAP:
        floats.byteswap()
    return floats.tolist()


def _spans_json(spans: Sequence[Span]) -> str:
    return compact_json([span.model_dump(mode="json") for span in spans])


def _check_spans(session_id: str, change: GraphChange) -> Unit[list[dict[str, str]]]:
    """Why any span of the change does not fit a stored utterance (nothing if all do)."""
    lengths: dict[tuple[int, str], int | None] = {}
    errors = []
    items: list[tuple[str, Sequence[Span]]] = [
        (f"nodes.{index}", node.provenance) for index, node in enumerate(change.nodes)
    ]
    items += [(f"edges.{index}", edge.provenance) for index, edge in enumerate(change.edges)]
    for field, spans in items:
        for position, span in enumerate(spans):
            key = (span.turn_number, span.speaker.value)
            if key not in lengths:
                rows = yield Statement(
                    sql.UTTERANCE_LENGTH,
                    {"session_id": session_id, "turn_number": key[0], "speaker": key[1]},
                )
                lengths[key] = int(rows[0][0]) if rows else None
            length = lengths[key]
            where = f"{field}.provenance.{position}"
            if length is None:
                errors.append(
                    {
                        "field": where,
                        "reason": f"the session has no {key[1]} utterance in turn {key[0]}",
                    }
                )
            elif span.end > length:
                errors.append(
                    {
                        "field": where,
                        "reason": f"the span ends at {span.end}, past the utterance's "
                        f"{length} characters",
                    }
                )
    return errors


def _node_parameters(session_id: str, turn: int, node: NodeUpsert) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "node_id": node.id,
        "turn": turn,
        "type": node.type,
        "label": node.label,
        "confidence": node.confidence,
        "properties": compact_json(node.properties),
        "provenance": _spans_json(node.provenance),
        "embedding": _embedding_bytes(node.embedding),
        "superseded_by": node.superseded_by,
    }


def _edge_parameters(session_id: str, turn: int, edge: EdgeUpsert) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "edge_id": edge.id,
        "turn": turn,
        "source": edge.source,
        "target": edge.target,
        "type": edge.type,
        "confidence": edge.confidence,
        "properties": compact_json(edge.properties),
        "provenance": _spans_json(edge.provenance),
    }


def _standing_node(session_id: str, node_id: str) -> Unit[Row | None]:
    rows = yield Statement(sql.STANDING_NODE, {"session_id": session_id, "node_id": node_id})
    return rows[0] if rows else None


_Standing = dict[str, tuple[int, ...]]
"""Standing rows by id: a node's (valid_from, first_turn), an edge's (valid_from,)."""


def _standing(query: Query, session_id: str, ids: Iterable[str]) -> Unit[_Standing]:
    """The standing rows of `ids`, in one statement."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = yield Statement(query, {"session_id": session_id, "ids": compact_json(wanted)})
    return {row[0]: tuple(int(value) for value in row[1:]) for row in rows}


def _upsert_node(session_id: str, turn: int, node: NodeUpsert, standing: _Standing) -> Unit[None]:
    """Write `node`; `standing` is kept up to date for the change's next upserts."""
    parameters = _node_parameters(session_id, turn, node)
    row = standing.get(node.id)
    if row is not None and row[0] == turn:
        yield Statement(sql.REWRITE_NODE, parameters)
        return
    first_turn = turn if row is None else row[1]
    if row is not None:
        yield Statement(sql.CLOSE_NODE, parameters)
    yield Statement(sql.INSERT_NODE, {**parameters, "first_turn": first_turn})
    standing[node.id] = (turn, first_turn)


def _upsert_edge(session_id: str, turn: int, edge: EdgeUpsert, standing: _Standing) -> Unit[None]:
    """Write `edge`; `standing` is kept up to date for the change's next upserts."""
    parameters = _edge_parameters(session_id, turn, edge)
    row = standing.get(edge.id)
    if row is not None and row[0] == turn:
        yield Statement(sql.REWRITE_EDGE, parameters)
        return
    if row is not None:
        yield Statement(sql.CLOSE_EDGE, parameters)
    yield Statement(sql.INSERT_EDGE, parameters)
    standing[edge.id] = (turn,)


def _remove(session_id: str, turn: int, change: GraphChange) -> Unit[None]:
    for edge_id in change.remove_edges:
        parameters = {"session_id": session_id, "edge_id": edge_id, "turn": turn}
        yield Statement(sql.CLOSE_EDGE, parameters)
        yield Statement(sql.DROP_EDGE, parameters)
    for node_id in change.remove_nodes:
        parameters = {"session_id": session_id, "node_id": node_id, "turn": turn}
        yield Statement(sql.CLOSE_NODE_EDGES, parameters)
        yield Statement(sql.DROP_NODE_EDGES, parameters)
        yield Statement(sql.CLOSE_NODE, parameters)
        yield Statement(sql.DROP_NODE, parameters)


def _check_edge_ends(change: GraphChange, standing: _Standing) -> list[dict[str, str]]:
    """Why an edge's end is no standing node (`standing` holds every end's row if any)."""
    errors = []
    for index, edge in enumerate(change.edges):
        for end in ("source", "target"):
            node_id = getattr(edge, end)
            if node_id not in standing:
                errors.append(
                    {
                        "field": f"edges.{index}.{end}",
                        "reason": f"the session's graph has no node {node_id!r}",
                    }
                )
    return errors


def _check_supersession(session_id: str, change: GraphChange) -> Unit[list[dict[str, str]]]:
    """Why a node's `superseded_by` does not lead to a standing node or leads in a circle."""
    errors = []
    for index, node in enumerate(change.nodes):
        if node.superseded_by is None:
            continue
        field = f"nodes.{index}.superseded_by"
        seen = {node.id}
        successor: str | None = node.superseded_by
        for _ in range(_MAX_CHAIN):
            if successor is None:
                break
            if successor in seen:
                errors.append(
                    {"field": field, "reason": f"supersession leads back to {successor!r}"}
                )
                break
            seen.add(successor)
            row = yield from _standing_node(session_id, successor)
            if row is None:
                errors.append(
                    {"field": field, "reason": f"the session's graph has no node {successor!r}"}
                )
                break
            successor = row[2]
        else:
            errors.append({"field": field, "reason": "the supersession chain is too long"})
    return errors


def _check_successors_stand(session_id: str, change: GraphChange) -> Unit[list[dict[str, str]]]:
    """Why a removed node may not go: a standing node is superseded by it."""
    rows = yield Statement(
        sql.SUPERSEDED_BY_GONE,
        {"session_id": session_id, "ids": compact_json(sorted(set(change.remove_nodes)))},
    )
    upserted = {node.id for node in change.nodes}  # their supersession is checked apart
    errors = []
    for node_id, successor in sorted((str(row[0]), str(row[1])) for row in rows):
        if node_id in upserted:
            continue
        index = change.remove_nodes.index(successor)
        errors.append(
            {
                "field": f"remove_nodes.{index}",
                "reason": f"the node {node_id!r} is superseded by {successor!r}: remove it"
                " too or change its superseded_by in the same change",
            }
        )
    return errors


def _check_embedding_lengths(session_id: str, change: GraphChange) -> Unit[list[dict[str, str]]]:
    sizes = [
        int(row[0]) for row in (yield Statement(sql.EMBEDDING_LENGTHS, {"session_id": session_id}))
    ]
    if len(sizes) <= 1:
        return []
    lengths = " and ".join(str(size // _FLOAT_BYTES) for size in sizes)
    return [
        {
            "field": f"nodes.{index}.embedding",
            "reason": f"every embedding in a session has one length; this change leaves "
            f"embeddings of {lengths} values",
        }
        for index, node in enumerate(change.nodes)
        if node.embedding is not None
    ]


def apply_graph_change(session_id: str, turn: int, change: GraphChange) -> Unit[None]:
    """Write `change` as belonging to turn `turn`; run it in an atomic unit, since a refusal
    is raised after some of its writes.

    Raises:
        GraphTurnPassedError: the graph has changed in a later turn already.
        InvalidGraphError: a span, edge end, supersession or embedding does not fit.
    """
    ((last,),) = yield Statement(sql.LAST_CHANGE, {"session_id": session_id})
    if last is not None and int(last) > turn:
        raise GraphTurnPassedError(session_id, turn, int(last))
    errors = yield from _check_spans(session_id, change)
    yield from _remove(session_id, turn, change)
    # What stands once the removals are done: the nodes upserted and the edges' ends,
    # then the edges, each read once for the whole change.
    ends = (node_id for edge in change.edges for node_id in (edge.source, edge.target))
    nodes = yield from _standing(
        sql.STANDING_NODES, session_id, chain((node.id for node in change.nodes), ends)
    )
    for node in change.nodes:
        yield from _upsert_node(session_id, turn, node, nodes)
    errors += _check_edge_ends(change, nodes)
    edges = yield from _standing(sql.STANDING_EDGES, session_id, (e.id for e in change.edges))
    for edge in change.edges:
        yield from _upsert_edge(session_id, turn, edge, edges)
    errors += yield from _check_supersession(session_id, change)
    if change.remove_nodes:
        errors += yield from _check_successors_stand(session_id, change)
    if any(node.embedding is not None for node in change.nodes):
        errors += yield from _check_embedding_lengths(session_id, change)
    if errors:
        raise InvalidGraphError(session_id, errors)


_NODES = TypeAdapter(list[Node])
_by_id = attrgetter("id")
_EDGES = TypeAdapter(list[Edge])


def graph_as_of(session_id: str, turn: int) -> Unit[Graph | None]:
    """The graph as it stood after `turn`; None when it is empty (the caller tells why)."""
    bounds = {"session_id": session_id, "turn": turn}
    ((nodes_json,),) = yield Statement(sql.NODES_AS_OF, bounds)
    ((edges_json,),) = yield Statement(sql.EDGES_AS_OF, bounds)
    nodes = sorted(_NODES.validate_json(nodes_json), key=_by_id)
    edges = sorted(_EDGES.validate_json(edges_json), key=_by_id)
    if not nodes and not edges:
        return None
    if nodes:
        rows = yield Statement(sql.EMBEDDINGS_AS_OF, bounds)
        embeddings = {row[0]: row[1] for row in rows}
        for node in nodes:
            blob = embeddings.get(node.id)
            if blob is not None:
                node.embedding = _embedding_values(blob)
    return Graph(nodes=nodes, edges=edges)


def nearest_nodes(
    session_id: str, node_id: str, k: int, cache: EmbeddingCache
) -> Unit[list[SimilarNode]]:
    """The `k` other standing nodes whose embeddings (of the same length) are nearest to
    the node's by cosine, best first, ties by id.

    Raises:
        SessionNotFoundError: no session has this id.
        NodeNotFoundError: the graph has no such standing node.
        NodeWithoutEmbeddingError: the node has no embedding.
    """
    rows = yield Statement(sql.NEAREST_PROBE, {"session_id": session_id, "node_id": node_id})
    if not rows:
        raise SessionNotFoundError(session_id)
    *revision, found, blob = rows[0]
    if found is None:
        raise NodeNotFoundError(session_id, node_id)
    if blob is None:
        raise NodeWithoutEmbeddingError(session_id, node_id)
    probe = as_vector(bytes(blob))
    key = (*revision, probe.nbytes)
    embeddings = cache.get(session_id, key)
    if embeddings is None:
        standing = yield Statement(
            sql.EMBEDDINGS_OF_SIZE, {"session_id": session_id, "size": probe.nbytes}
        )
        embeddings = Embeddings.of(
            key, [row[0] for row in standing], [bytes(row[1]) for row in standing], probe.size
        )
        cache.put(session_id, embeddings)
    return [
        SimilarNode(node=node, score=score) for node, score in embeddings.nearest(node_id, probe, k)
    ]


def copy_graph(session_id: str, new_id: str, turn: int) -> Unit[None]:
    """Copy the graph's history up to `turn` to the session `new_id` (a fork)."""
    parameters = {"session_id": session_id, "new_id": new_id, "turn": turn}
    yield Statement(sql.COPY_NODES, parameters)
    yield Statement(sql.COPY_EDGES, parameters)
