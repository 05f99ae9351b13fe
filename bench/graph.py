"""The conversation graph's figures, in a process of its own; print JSON.

    python -m bench.graph WORK_FOLDER [POSTGRES_DSN] [--quick]

- a whole turn (two utterances, a 4 KiB state patch, a record, and a graph change
  of 5 nodes and 4 edges) through the repository, against plain sqlite3 running
  the repository's statements for it (`bench.plain`) and against plain sqlite3
  writing its rows alone, each in one transaction, calls interleaved so that noise
  falls on all;
- `as_of_turn` read of a 2,000-node graph built over 20 turns;
- nearest 10 nodes over 2,000 384-dimensional embeddings, at one version of the graph
  (as the engine's merge step asks for each new node of a turn), and the first query
  after each of a series of changes.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

from bench import turns as whole_turn
from bench.plain import PlainSqliteTarget
from bench.repository import percentiles
from src.core.collector import settle_long_lived_objects
from src.domain.models.graph import GraphChange
from src.domain.models.session import Session, SessionState
from src.domain.models.utterance import NewUtterance
from src.persistence.database import init_database
from src.persistence.repositories.postgres_session_repo import PostgresSessionRepository
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.repositories.session_repo import SessionRepository

ANSWER = "Because it is what I grew up with, and it reminds me of home."
GRAPH_NODES = 2_000
GRAPH_TURNS = 20
DIMENSIONS = 384


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


async def turn_vs_plain(work: Path, turns: int) -> dict[str, Any]:
    """A whole turn with a graph change through the repository, and the same turn by plain
    sqlite3 twice: statement for statement (the graph's checks included), and its rows
    alone (without them). Each on a store of its own, so that none finds its cache emptied
    by another's writes; calls in turn, each first a third of the time."""
    ours_path, plain_path = work / "graph-turns.db", work / "graph-turns-plain.db"
    await init_database(plain_path)
    timings: dict[str, list[int]] = {"repository": [], "plain_sqlite3": [], "plain_rows": []}
    async with SessionRepository(str(ours_path)) as repository:
        plain = PlainSqliteTarget(str(plain_path))
        ours = await repository.create(new_session(1))
        statements, rows = new_session(2), new_session(3)
        await plain.create(statements)
        await plain.create(rows)
        calls: dict[str, Callable[[int], Awaitable[Any]]] = {
            "repository": lambda turn: repository.record_turn(
                ours.id,
                whole_turn.utterances(turn),
                state_patch=whole_turn.state_patch(turn),
                record=whole_turn.RECORD,
                graph=turn_change(turn),
            ),
            "plain_sqlite3": lambda turn: plain.turn(statements.id, turn, graph=turn_change(turn)),
            "plain_rows": lambda turn: plain.turn(
                rows.id, turn, graph=turn_change(turn), graph_checks=False
            ),
        }
        order = list(calls)
        for turn in range(1, turns + 1):
            for name in order[turn % 3 :] + order[: turn % 3]:
                begin = time.perf_counter_ns()
                await calls[name](turn)
                timings[name].append(time.perf_counter_ns() - begin)
        await plain.close()
    figures = {name: percentiles(values) for name, values in timings.items()}
    return {
        **figures,
        "ratio_p50": figures["repository"]["p50_ms"] / figures["plain_sqlite3"]["p50_ms"],
        "ratio_rows_p50": figures["repository"]["p50_ms"] / figures["plain_rows"]["p50_ms"],
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
    # The garbage collector as `interview-system serve` sets it once started.
    settle_long_lived_objects()
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
    facts["turn_with_graph"] = await turn_vs_plain(work, turns)
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
