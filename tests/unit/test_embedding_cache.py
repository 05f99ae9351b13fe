"""The cache of graphs' embeddings: bounded, most recently used kept, keyed by revision."""

from __future__ import annotations

import numpy as np

from src.persistence.repositories.embedding_cache import EmbeddingCache, Embeddings


def entry(key: int, rows: int) -> Embeddings:
    blobs = [np.full(4, float(row + 1)).tobytes() for row in range(rows)]
    return Embeddings.of(key, [f"n{row}" for row in range(rows)], blobs, 4)


def test_the_least_recently_used_graphs_go_first_when_the_bound_is_reached() -> None:
    one = entry(1, 10)
    cache = EmbeddingCache(max_bytes=2 * one.nbytes)
    cache.put("a", one)
    cache.put("b", entry(1, 10))
    assert cache.get("a", 1) is one  # "a" is now the most recently used
    cache.put("c", entry(1, 10))

    assert cache.get("b", 1) is None
    assert cache.get("a", 1) is one
    assert cache.get("c", 1) is not None


def test_an_entry_of_another_revision_is_not_returned_and_a_new_one_replaces_it() -> None:
    cache = EmbeddingCache(max_bytes=1 << 20)
    cache.put("a", entry(1, 3))
    assert cache.get("a", 2) is None
    newer = entry(2, 3)
    cache.put("a", newer)
    assert cache.get("a", 2) is newer
    assert cache.get("a", 1) is None


def test_a_graph_larger_than_the_bound_is_not_kept() -> None:
    cache = EmbeddingCache(max_bytes=100)
    cache.put("a", entry(1, 50))
    assert cache.get("a", 1) is None


def test_the_probe_is_left_out_and_ties_go_by_id() -> None:
    blobs = [np.array(v, dtype="<f8").tobytes() for v in ([1.0, 0.0], [2.0, 0.0], [3.0, 0.0])]
    embeddings = Embeddings.of("k", ["z", "probe", "m"], blobs, 2)
    nearest = embeddings.nearest("probe", np.array([1.0, 0.0]), 5)
    assert nearest == [("m", 1.0), ("z", 1.0)]
