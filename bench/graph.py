"""The conversation graph's figures, in a process of its own; print JSON.

    python -m bench.graph WORK_FOLDER [POSTGRES_DSN] [--quick]

- turn with a graph change (5 nodes, 4 edges) through the repository, against
  plain sqlite3 writing the same rows (the turn's utterances, the session's new
  version and its history row, the nodes and edges) in one transaction, calls
  interleaved so that noise falls on both;
- `as_of_turn` read of a 2,000-node graph built over 20 turns;
- nearest 10 nodes over 2,000 384-dimensional embeddings, at one version of the graph
  (as the engine's merge step asks for each new node of a turn), and the first query
  after each of a series of changes.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from src.domain.models.graph import GraphChange
from src.domain.models.session import Session, SessionState
from src.domain.models.utterance import NewUtterance
from src.persistence.repositories.postgres_session_repo import PostgresSessionRepository
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.repositories.session_repo import SessionRepository

ANSWER = "Because it is what I grew up with, and it reminds me of home."
GRAPH_NODES = 2_000
GRAPH_TURNS = 20
DIMENSIONS = 384


def percentiles(latencies_ns: list[int]) -> dict[str, float]:
    ordered = sorted(latencies_ns)
    return {
        "p50_ms": ordered[(len(ordered) - 1) // 2] / 1e6,
        "p99_ms": ordered[int((len(ordered) - 1) * 0.99)] / 1e6,
    }


def new_session(number: int) -> Session:
    state = SessionState(methodology="mec", concept_id="c", concept_name="Coffee")
    return Session(
        id=f"graph-bench-{number}",
        methodology="mec",
        concept_id="c",
        concept_name="Coffee",
        state=state,
    )


def said(turn: int) -> list[NewUtterance]:
    return [
        NewUtterance(
            turn_number=turn, speaker="interviewer", text=f"Why does that matter? ({turn})"
        ),
        NewUtterance(turn_number=turn, speaker="respondent", text=ANSWER),
    ]


def turn_change(turn: int, nodes: int = 5, edges: int = 4) -> GraphChange:
    span = [{"turn_number": turn, "speaker": "respondent", "start": 0, "end": 20}]
    return GraphChange.model_validate(
        {
            "nodes": [
                {
                    "id": f"n{turn}-{i}",
                    "type": "attribute",
                    "label": f"label {turn} {i}",
                    "confidence": 0.9,
                    "properties": {"i": i},
                    "provenance": span,
                }
                for i in range(nodes)
            ],
            "edges": [
                {
                    "id": f"e{turn}-{i}",
                    "source": f"n{turn}-{i}",
                    "target": f"n{turn}-{i + 1}",
                    "type": "leads_to",
                    "provenance": span,
                }
                for i in range(edges)
            ],
        }
    )


class PlainTurn:
    """The same rows as a turn with its graph change, with sqlite3 in one transaction."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode = WAL")
        self.connection.execute("PRAGMA synchronous = FULL")

    def turn(self, session_id: str, turn: int) -> None:
        now = datetime.now(UTC).isoformat()
        c = self.connection
        c.execute("BEGIN IMMEDIATE")
        c.execute(
            "UPDATE sessions SET version = version + 1, turn_count = ?, updated_at = ?"
            " WHERE id = ?",
            (turn, now, session_id),
        )
        c.execute(
            "INSERT INTO session_versions SELECT id, version, 'turn', ?, status, turn_count,"
            " coverage_score, last_strategy, labels, participant_id, usage_turns,"
            " usage_input_tokens, usage_output_tokens, usage_cost_usd, usage_latency_ms,"
            " updated_at, ended_at, NULL, NULL FROM sessions WHERE id = ?",
            (turn, session_id),
        )
        for utterance in said(turn):
            c.execute(
                "INSERT INTO utterances VALUES (?, ?, ?, ?, NULL, ?)",
                (session_id, turn, utterance.speaker.value, utterance.text, now),
            )
        change = turn_change(turn)
        for node in change.nodes:
            c.execute(
                "INSERT INTO graph_nodes (session_id, node_id, valid_from, type, label, confidence,"
                " properties, provenance, first_turn, last_turn) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    session_id,
                    node.id,
                    turn,
                    node.type,
                    node.label,
                    node.confidence,
                    json.dumps(node.properties),
                    json.dumps([s.model_dump(mode="json") for s in node.provenance]),
                    turn,
                    turn,
                ),
            )
        for edge in change.edges:
            c.execute(
                "INSERT INTO graph_edges (session_id, edge_id, valid_from, source, target, type,"
                " confidence, properties, provenance) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    session_id,
                    edge.id,
                    turn,
                    edge.source,
                    edge.target,
                    edge.type,
                    edge.confidence,
                    "{}",
                    json.dumps([s.model_dump(mode="json") for s in edge.provenance]),
                ),
            )
        c.execute("COMMIT")


async def turn_vs_plain(path: Path, turns: int) -> dict[str, Any]:
    ours_ns: list[int] = []
    plain_ns: list[int] = []
    async with SessionRepository(str(path)) as repository:
        ours = await repository.create(new_session(1))
        theirs = await repository.create(new_session(2))
        plain = PlainTurn(path)
        for turn in range(1, turns + 1):
            begin = time.perf_counter_ns()
            await repository.record_turn(
                ours.id, said(turn), state_patch={"turn_count": turn}, graph=turn_change(turn)
            )
            ours_ns.append(time.perf_counter_ns() - begin)
            begin = time.perf_counter_ns()
            plain.turn(theirs.id, turn)
            plain_ns.append(time.perf_counter_ns() - begin)
        plain.connection.close()
    mine, baseline = percentiles(ours_ns), percentiles(plain_ns)
    return {
        "repository": mine,
        "plain_sqlite3": baseline,
        "ratio_p50": mine["p50_ms"] / baseline["p50_ms"],
    }


async def reads(repository: SessionRepositoryProtocol, queries: int) -> dict[str, Any]:
    rng = random.Random(7)
    history = await repository.create(new_session(3))
    per_turn = GRAPH_NODES // GRAPH_TURNS
    for turn in range(1, GRAPH_TURNS + 1):
        await repository.record_turn(
            history.id,
            said(turn),
            state_patch={"turn_count": turn},
            graph=turn_change(turn, per_turn, per_turn - 1),
        )
    nodes = len((await repository.get_graph(history.id, as_of_turn=GRAPH_TURNS)).nodes)
    as_of_ns = []
    for _ in range(queries):
        begin = time.perf_counter_ns()
        await repository.get_graph(history.id, as_of_turn=GRAPH_TURNS)
        as_of_ns.append(time.perf_counter_ns() - begin)
    embedded = await repository.create(new_session(4))
    for start in range(0, GRAPH_NODES, 500):
        await repository.change_graph(
            embedded.id,
            GraphChange.model_validate(
                {
                    "nodes": [
                        {
                            "id": f"v{i}",
                            "type": "t",
                            "label": f"v{i}",
                            "embedding": [rng.gauss(0, 1) for _ in range(DIMENSIONS)],
                        }
                        for i in range(start, start + 500)
                    ]
                }
            ),
        )
    nearest_ns = []
    for _ in range(queries):
        probe = f"v{rng.randrange(GRAPH_NODES)}"
        begin = time.perf_counter_ns()
        await repository.similar_nodes(embedded.id, probe, k=10)
        nearest_ns.append(time.perf_counter_ns() - begin)
    # The engine's merge step after its turn is written: the first query at a new version
    # reads every embedding again.
    after_change_ns = []
    for round_ in range(max(10, queries // 10)):
        moved = f"v{rng.randrange(GRAPH_NODES)}"
        vector = [rng.gauss(0, 1) for _ in range(DIMENSIONS)]
        await repository.change_graph(
            embedded.id,
            GraphChange.model_validate(
                {
                    "nodes": [
                        {"id": moved, "type": "t", "label": f"moved {round_}", "embedding": vector}
                    ]
                }
            ),
        )
        begin = time.perf_counter_ns()
        await repository.similar_nodes(embedded.id, moved, k=10)
        after_change_ns.append(time.perf_counter_ns() - begin)
    return {
        "as_of_nodes": nodes,
        "as_of": percentiles(as_of_ns),
        "nearest_10": percentiles(nearest_ns),
        "nearest_10_after_change": percentiles(after_change_ns),
    }


async def main(work: Path, dsn: str | None, quick: bool) -> dict[str, Any]:
    turns, queries = (50, 30) if quick else (300, 200)
    facts: dict[str, Any] = {"turns": turns, "queries": queries}
    facts["turn_with_graph"] = await turn_vs_plain(work / "graph-turns.db", turns)
    async with SessionRepository(str(work / "graph-reads.db")) as repository:
        facts["sqlite"] = await reads(repository, queries)
    if dsn is not None:
        async with PostgresSessionRepository(dsn, pool_size=4) as repository:
            facts["postgres"] = await reads(repository, queries)
    return facts


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--quick"]
    Path(arguments[0]).mkdir(parents=True, exist_ok=True)
    result = uvloop.run(
        main(
            Path(arguments[0]), arguments[1] if len(arguments) > 1 else None, "--quick" in sys.argv
        )
    )
    print(json.dumps(result))
