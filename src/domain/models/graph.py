"""The conversation graph: typed nodes and edges traced back to what was said."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from src.domain.models.json import OpenJson
from src.domain.models.session import MAX_COUNT
from src.domain.models.utterance import MAX_TEXT_LENGTH, Speaker

__all__ = [
    "MAX_EMBEDDING_LENGTH",
    "Edge",
    "EdgeUpsert",
    "Graph",
    "GraphChange",
    "Node",
    "NodeUpsert",
    "SimilarNode",
    "Span",
    "StoredSpan",
]

MAX_PROPERTIES_BYTES = 16 * 1024
MAX_EMBEDDING_LENGTH = 4096
MAX_SPANS = 100
MAX_CHANGE_ITEMS = 2000

# No control characters and none of the two non-characters XML cannot hold, so
# every id, type and label goes into GraphML and REFI-QDA as it is.
_XML_SAFE = r"^[^\x00-\x1f\x7f-\x9f\ufffe\uffff]*$"
GraphId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_XML_SAFE)]
GraphType = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_XML_SAFE)]
NodeLabel = Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=_XML_SAFE)]
Confidence = Annotated[float, Field(strict=True, ge=0.0, le=1.0, allow_inf_nan=False)]
Properties = Annotated[dict[str, Any], OpenJson(MAX_PROPERTIES_BYTES)]
TurnNumber = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT)]


def _usable_embedding(values: list[float]) -> list[float]:
    if not any(values):
        raise ValueError("an embedding must not be all zeros: its cosine is undefined")
    return values


Embedding = Annotated[
    list[Annotated[float, Field(strict=True, allow_inf_nan=False)]],
    Field(min_length=1, max_length=MAX_EMBEDDING_LENGTH),
    AfterValidator(_usable_embedding),
]


# What is read back was checked on the way in: the stored shapes carry no
# validators, so a large graph is read in one pass of pydantic-core.
class StoredSpan(BaseModel):
    """A span as stored: characters `start` to `end` (exclusive) of one utterance."""

    turn_number: int
    speaker: Speaker
    start: int
    end: int


class Span(StoredSpan):
    """Characters `start` (inclusive) to `end` (exclusive) of one stored utterance."""

    model_config = ConfigDict(extra="forbid")

    turn_number: Annotated[int, Field(strict=True, ge=1, le=MAX_COUNT)]
    speaker: Speaker
    start: Annotated[int, Field(strict=True, ge=0, lt=MAX_TEXT_LENGTH)]
    end: Annotated[int, Field(strict=True, ge=1, le=MAX_TEXT_LENGTH)]

    @model_validator(mode="after")
    def _not_empty(self) -> Span:
        if self.end <= self.start:
            raise ValueError("a span's end must come after its start")
        return self


Provenance = Annotated[list[Span], Field(max_length=MAX_SPANS)]


class NodeUpsert(BaseModel):
    """A node as a graph change writes it (whole: fields left out take their defaults)."""

    model_config = ConfigDict(extra="forbid")

    id: GraphId
    type: GraphType
    label: NodeLabel
    confidence: Confidence = 1.0
    properties: Properties = Field(default_factory=dict)
    provenance: Provenance = Field(default_factory=list)
    embedding: Embedding | None = None
    superseded_by: GraphId | None = None


class EdgeUpsert(BaseModel):
    """A typed edge between two nodes of the same session, as a graph change writes it."""

    model_config = ConfigDict(extra="forbid")

    id: GraphId
    source: GraphId
    target: GraphId
    type: GraphType
    confidence: Confidence = 1.0
    properties: Properties = Field(default_factory=dict)
    provenance: Provenance = Field(default_factory=list)


class Node(BaseModel):
    """A node as stored, with the turns of its first and latest upsert."""

    id: str
    type: str
    label: str
    confidence: float
    properties: dict[str, Any]
    provenance: list[StoredSpan]
    embedding: list[float] | None = None
    superseded_by: str | None = None
    first_turn: int
    last_turn: int


class Edge(BaseModel):
    """An edge as stored."""

    id: str
    source: str
    target: str
    type: str
    confidence: float
    properties: dict[str, Any]
    provenance: list[StoredSpan]


class GraphChange(BaseModel):
    """Upserts and removals applied together, in this order: removals, nodes, edges.

    Removing an id the graph does not hold does nothing; removing a node removes its
    edges; an id upserted twice takes its last upsert.
    """

    model_config = ConfigDict(extra="forbid")

    nodes: Annotated[list[NodeUpsert], Field(max_length=MAX_CHANGE_ITEMS)] = Field(
        default_factory=list
    )
    edges: Annotated[list[EdgeUpsert], Field(max_length=MAX_CHANGE_ITEMS)] = Field(
        default_factory=list
    )
    remove_nodes: Annotated[list[GraphId], Field(max_length=MAX_CHANGE_ITEMS)] = Field(
        default_factory=list
    )
    remove_edges: Annotated[list[GraphId], Field(max_length=MAX_CHANGE_ITEMS)] = Field(
        default_factory=list
    )


class Graph(BaseModel):
    """A session's nodes and edges as they stood after some turn."""

    nodes: list[Node]
    edges: list[Edge]


class SimilarNode(BaseModel):
    """A node near another by the cosine of their embeddings."""

    node: str
    score: float
