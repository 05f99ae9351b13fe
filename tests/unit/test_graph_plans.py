"""How each database finds the graph as of a turn: the plans its statements get."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from src.persistence.repositories import graph_statements
from src.persistence.repositories.session_repo import SessionRepository
from tests.backends import PostgresBackend

AS_OF_READS = {
    "nodes": graph_statements.NODES_AS_OF,
    "edges": graph_statements.EDGES_AS_OF,
    "embeddings": graph_statements.EMBEDDINGS_AS_OF,
}


def index_conditions(plan: Any) -> list[str]:
    """Every "Index Cond" in a PostgreSQL plan given as JSON."""
    if isinstance(plan, list):
        return [found for item in plan for found in index_conditions(item)]
    if isinstance(plan, dict):
        own = [plan["Index Cond"]] if "Index Cond" in plan else []
        return own + [found for value in plan.values() for found in index_conditions(value)]
    return []


@pytest.mark.parametrize("read", AS_OF_READS)
async def test_sqlite_reads_the_graph_as_of_a_turn_in_key_order(db_path: Path, read: str) -> None:
    async with SessionRepository(str(db_path)):
        pass
    with sqlite3.connect(db_path) as database:
        plan = database.execute(
            f"EXPLAIN QUERY PLAN {AS_OF_READS[read].sqlite}", {"session_id": "s", "turn": 3}
        ).fetchall()

    details = " ".join(row[-1] for row in plan)
    assert "PRIMARY KEY" in details, plan
    assert "_by_turn" not in details, plan


@pytest.mark.postgres
@pytest.mark.parametrize("read", AS_OF_READS)
async def test_postgres_can_bound_the_graph_as_of_a_turn_by_its_index(
    postgres_backend: PostgresBackend, read: str
) -> None:
    async with postgres_backend.open():
        pass
    connection = await asyncpg.connect(postgres_backend.dsn)
    try:
        # With scans of the whole table ruled out, the plan shows what the index can bound;
        # the planner picks between the two by the statistics of a real store.
        await connection.execute("SET enable_seqscan = off")
        explained = await connection.fetchval(
            f"EXPLAIN (FORMAT JSON) {AS_OF_READS[read].postgres}", "s", 3
        )
    finally:
        await connection.close()

    conditions = index_conditions(json.loads(explained))
    assert any("valid_from <=" in condition for condition in conditions), conditions
