"""The embeddings of recently searched graphs, kept between nearest-node queries.

The engine's merge step asks for the nodes nearest to each new one, several
times between two writes of the same graph; reading every embedding again
each time (2,000 nodes of 384 values are 6 MB of rows) costs far more than the
product itself. An entry is keyed by what every graph write changes, the
session's version, and by its creation time, so that a session deleted and
made again under the same id never meets the old one's entry; each query
reads that key in its own snapshot, so another process's write is seen.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["EmbeddingCache", "Embeddings", "as_vector"]

# numpy is imported where it is used, by the first nearest-node query: it
# would add a tenth to the server's start-up, and most servers never need it.
_FLOAT = "<f8"
_DEFAULT_MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Embeddings:
    """A graph's standing embeddings of one length, as rows of a matrix."""

    key: Hashable
    ids: npt.NDArray[np.str_]
    matrix: npt.NDArray[np.float64]
    lengths: npt.NDArray[np.float64]

    @classmethod
    def of(cls, key: Hashable, ids: Sequence[str], blobs: Sequence[bytes], size: int) -> Embeddings:
        import numpy as np

        matrix = _scaled(np.frombuffer(b"".join(blobs), dtype=_FLOAT).reshape(len(blobs), size))
        # einsum takes each row's length without a temporary matrix as large as the data.
        lengths = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
        return cls(key, np.array(ids, dtype=np.str_), matrix, lengths)

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes + self.lengths.nbytes + self.ids.nbytes)

    def nearest(
        self, probe_id: str, probe: npt.NDArray[np.float64], k: int
    ) -> list[tuple[str, float]]:
        """The `k` rows other than `probe_id` with the highest cosine to `probe`, best first,
        ties by id."""
        import numpy as np

        scaled = _scaled(probe)
        cosines = (self.matrix @ scaled) / (self.lengths * np.linalg.norm(scaled))
        scores = np.clip(cosines, -1.0, 1.0)
        # Equal embeddings can differ in the last bits of their products, by where their
        # rows sit in the matrix: scores equal to 12 digits are ties, and go by id.
        order = np.lexsort((self.ids, -np.round(scores, 12)))
        ranked = [(str(self.ids[i]), float(scores[i])) for i in order[: k + 1]]
        return [(node, score) for node, score in ranked if node != probe_id][:k]


def as_vector(blob: bytes) -> npt.NDArray[np.float64]:
    """A stored embedding as a vector."""
    import numpy as np

    vector: npt.NDArray[np.float64] = np.frombuffer(blob, dtype=_FLOAT)
    return vector


def _scaled(vectors: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each vector divided by its largest magnitude: the same cosines, and lengths that
    neither overflow (1e200) nor vanish (1e-200) when squared."""
    import numpy as np

    largest = np.max(np.abs(vectors), axis=-1, keepdims=True)
    scaled: npt.NDArray[np.float64] = vectors / largest
    return scaled


class EmbeddingCache:
    """The most recently used graphs' embeddings, at most `max_bytes` of them; thread-safe,
    since SQLite's reads run on a connection's thread."""

    def __init__(self, max_bytes: int = _DEFAULT_MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, Embeddings] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, session_id: str, key: Hashable) -> Embeddings | None:
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None or entry.key != key:
                return None
            self._entries.move_to_end(session_id)
            return entry

    def forget(self, session_ids: Iterable[str] | None = None) -> None:
        """Drop these sessions' entries (None: every entry), once they are deleted or erased."""
        with self._lock:
            for session_id in list(self._entries) if session_ids is None else session_ids:
                old = self._entries.pop(session_id, None)
                if old is not None:
                    self._bytes -= old.nbytes

    def put(self, session_id: str, entry: Embeddings) -> None:
        with self._lock:
            old = self._entries.pop(session_id, None)
            if old is not None:
                self._bytes -= old.nbytes
            if entry.nbytes > self._max_bytes:
                return
            self._entries[session_id] = entry
            self._bytes += entry.nbytes
            while self._bytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes
