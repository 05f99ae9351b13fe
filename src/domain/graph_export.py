"""The conversation graph in export formats: GraphML, and Markdown after the transcript."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from xml.sax.saxutils import escape, quoteattr

from src.domain.models.graph import Edge, Graph, Node, StoredSpan
from src.domain.models.session import Session

__all__ = ["Quotes", "graphml", "markdown_graph"]

# (key id, for, attribute name, GraphML type); networkx, Gephi and yEd read these types.
_KEYS = (
    ("n_type", "node", "type", "string"),
    ("n_label", "node", "label", "string"),
    ("n_confidence", "node", "confidence", "double"),
    ("n_properties", "node", "properties", "string"),
    ("n_provenance", "node", "provenance", "string"),
    ("n_embedding", "node", "embedding", "string"),
    ("n_superseded_by", "node", "superseded_by", "string"),
    ("n_first_turn", "node", "first_turn", "int"),
    ("n_last_turn", "node", "last_turn", "int"),
    ("e_type", "edge", "type", "string"),
    ("e_confidence", "edge", "confidence", "double"),
    ("e_properties", "edge", "properties", "string"),
    ("e_provenance", "edge", "provenance", "string"),
)


def _ascii_json(value: object) -> str:
    # ASCII JSON holds no character XML 1.0 cannot, whatever the client wrote.
    return escape(json.dumps(value, separators=(",", ":"), allow_nan=False))


def _spans(spans: Iterable[StoredSpan]) -> list[dict[str, object]]:
    return [span.model_dump(mode="json") for span in spans]


def _data(key: str, value: str) -> str:
    return f'<data key="{key}">{value}</data>'


def _node_xml(node: Node) -> str:
    data = [
        _data("n_type", escape(node.type)),
        _data("n_label", escape(node.label)),
        _data("n_confidence", repr(float(node.confidence))),
        _data("n_properties", _ascii_json(node.properties)),
        _data("n_provenance", _ascii_json(_spans(node.provenance))),
    ]
    if node.embedding is not None:
        data.append(_data("n_embedding", _ascii_json(node.embedding)))
    if node.superseded_by is not None:
        data.append(_data("n_superseded_by", escape(node.superseded_by)))
    data += [_data("n_first_turn", str(node.first_turn)), _data("n_last_turn", str(node.last_turn))]
    return f"<node id={quoteattr(node.id)}>{''.join(data)}</node>\n"


def _edge_xml(edge: Edge) -> str:
    data = [
        _data("e_type", escape(edge.type)),
        _data("e_confidence", repr(float(edge.confidence))),
        _data("e_properties", _ascii_json(edge.properties)),
        _data("e_provenance", _ascii_json(_spans(edge.provenance))),
    ]
    return (
        f"<edge id={quoteattr(edge.id)} source={quoteattr(edge.source)} "
        f"target={quoteattr(edge.target)}>{''.join(data)}</edge>\n"
    )


async def graphml(session: Session, graph: Graph) -> AsyncIterator[str]:
    """The session's graph as GraphML: every node and edge with every attribute; JSON
    values (properties, provenance, embedding) as JSON text."""
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
        'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n'
    )
    for key, kind, name, value_type in _KEYS:
        yield f'<key id="{key}" for="{kind}" attr.name="{name}" attr.type="{value_type}"/>\n'
    yield f'<graph id={quoteattr(session.id)} edgedefault="directed">\n'
    for node in graph.nodes:
        yield _node_xml(node)
    for edge in graph.edges:
        yield _edge_xml(edge)
    yield "</graph>\n</graphml>\n"


class Quotes:
    """The text each span of a graph covers, from the utterances it cites, kept as the
    transcript streams past (each cited utterance once, however many spans cite it)."""

    def __init__(self, graph: Graph) -> None:
        self._cited = {
            (span.turn_number, span.speaker.value)
            for node in graph.nodes
            for span in node.provenance
        }
        self._texts: dict[tuple[int, str], str] = {}

    def see(self, turn_number: int, speaker: str, text: str) -> None:
        """Keep the utterance if a span cites it."""
        if (turn_number, speaker) in self._cited:
            self._texts[(turn_number, speaker)] = text

    def of(self, span: StoredSpan) -> str | None:
        text = self._texts.get((span.turn_number, span.speaker.value))
        return None if text is None else text[span.start : span.end]


def markdown_graph(graph: Graph, quotes: Quotes, text: Callable[[str], str]) -> Iterator[str]:
    """The graph's nodes after the transcript, each with the quotes it came from, a line
    at a time (a node may cite long quotes many times); `text` escapes what the client
    wrote."""
    if not graph.nodes:
        return
    yield "\n## Graph\n\n"
    for node in graph.nodes:
        yield (
            f"- **{text(node.label)}** ({text(node.type)}; id {text(node.id)}; confidence "
            f"{node.confidence:g}; turns {node.first_turn}-{node.last_turn}"
            + (f"; superseded by {text(node.superseded_by)}" if node.superseded_by else "")
            + ")\n"
        )
        for span in node.provenance:
            quote = quotes.of(span)
            said = "" if quote is None else text(quote)
            yield (
                f"  - Turn {span.turn_number}, {span.speaker.value} "
                f"\\[{span.start}:{span.end}\\]: “{said}”\n"
            )
