"""Bytes held back until whole: in memory while small, in a temporary file past that."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import IO

__all__ = ["CHUNK_BYTES", "MEMORY_BYTES", "chunks", "spool", "spooled"]

MEMORY_BYTES = 1024 * 1024
"""What a spool keeps in memory before it moves to a temporary file."""
CHUNK_BYTES = 64 * 1024


def spooled() -> IO[bytes]:
    """An empty spool; the caller closes it (a file it moved to is then deleted)."""
    return tempfile.SpooledTemporaryFile(max_size=MEMORY_BYTES)


async def spool(pieces: AsyncIterator[bytes]) -> IO[bytes]:
    """Every piece in one spool, rewound to its start; if reading them fails, nothing is kept."""
    file = spooled()
    try:
        async for piece in pieces:
            file.write(piece)
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return file


def chunks(file: IO[bytes]) -> Iterator[bytes]:
    """What is left of `file`, CHUNK_BYTES at a time."""
    return iter(partial(file.read, CHUNK_BYTES), b"")
