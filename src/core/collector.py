"""How a long-running process of the store sets Python's garbage collector."""

from __future__ import annotations

import gc

__all__ = ["YOUNG_COLLECTION_THRESHOLD", "settle_long_lived_objects"]

# Reading a large graph, transcript or page makes tens of thousands of objects at
# once. At the default threshold (700 allocations) each such read starts dozens of
# young collections, and every few reads a full one that walks the whole heap.
# Measured on reads of a 2,000-node graph (docs/benchmarks.md): p90 50 ms at the
# defaults, 17 ms with the process's objects frozen and this threshold.
YOUNG_COLLECTION_THRESHOLD = 50_000


def settle_long_lived_objects() -> None:
    """Keep what exists now (the app, its routes and schemas) out of every later
    collection, and collect young objects less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)
