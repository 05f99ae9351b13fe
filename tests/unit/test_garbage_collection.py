"""A served process reads a large graph without collecting the heap over and over."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from src.core.collector import settle_long_lived_objects
from src.domain.models.graph import GraphChange
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session

_NODES = 2_000


@pytest.fixture
def settled() -> Iterator[None]:
    threshold = gc.get_threshold()
    settle_long_lived_objects()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generation of every collection started while the test runs."""
    started: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.callbacks.append(note)
    try:
        yield started
    finally:
        gc.callbacks.remove(note)


@pytest.mark.sqlite
async def test_reads_of_a_large_graph_start_few_collections_once_settled(
    sqlite_repo: SessionRepository, settled: None, collections: list[int]
) -> None:
    session = await sqlite_repo.create(new_session())
    change = GraphChange.model_validate(
        {"nodes": [{"id": f"n{i}", "type": "t", "label": f"n{i}"} for i in range(_NODES)]}
    )
    await sqlite_repo.change_graph(session.id, change)
    collections.clear()

    for _ in range(10):
        graph = await sqlite_repo.get_graph(session.id)
        assert len(graph.nodes) == _NODES

    # At the defaults these reads start some 200 young collections and full ones.
    assert len(collections) <= 10
    assert 2 not in collections
