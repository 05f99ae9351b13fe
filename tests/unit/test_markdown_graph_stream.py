"""A Markdown export's graph section goes out a line at a time: a graph that cites long
utterances many times makes a large export, never one large piece in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from src.domain.export import ExportFormat, export_record
from src.domain.models.graph import Graph
from src.domain.models.session import Session, SessionState
from src.domain.models.utterance import Speaker, Utterance

LONG = "I remember the smell of coffee in the morning. " * 425  # about 20,000 characters


async def one_long_utterance() -> AsyncIterator[Utterance]:
    yield Utterance(
        session_id="s-long",
        turn_number=1,
        speaker=Speaker.RESPONDENT,
        text=LONG,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


async def test_a_graph_citing_a_long_utterance_often_is_written_a_line_at_a_time() -> None:
    spans = [
        {"turn_number": 1, "speaker": "respondent", "start": start, "end": len(LONG)}
        for start in range(100)
    ]
    graph = Graph.model_validate(
        {
            "nodes": [
                {
                    "id": f"n{index}",
                    "type": "attribute",
                    "label": f"node {index}",
                    "confidence": 1.0,
                    "properties": {},
                    "provenance": spans,
                    "first_turn": 1,
                    "last_turn": 1,
                }
                for index in range(20)
            ],
            "edges": [],
        }
    )
    state = SessionState(methodology="mec", concept_id="c", concept_name="Coffee")
    session = Session(
        id="s-long", methodology="mec", concept_id="c", concept_name="Coffee", state=state
    )

    sizes = [
        len(piece)
        async for piece in export_record(
            session, one_long_utterance(), ExportFormat.MARKDOWN, graph=graph
        )
    ]

    # 2,000 quotes of about 20,000 characters each: some 40 million characters in all.
    assert sum(sizes) > 2000 * 19_000
    assert max(sizes) < 3 * len(LONG)
