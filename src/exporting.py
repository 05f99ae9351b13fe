"""Exports to files and to standard output, for the `interview-system export` command."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

from src.core.errors import SessionNotFoundError
from src.domain.export import ExportFormat, export_file_name, export_record
from src.domain.models.session import SessionStatus
from src.persistence.pagination import walk_pages
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.repositories.transcript import walk_turn_records, walk_utterances

__all__ = ["ProgressBar", "export_many", "export_one"]

# Pieces are gathered up to this size before each write, one thread hop each.
_WRITE_SIZE = 256 * 1024


class ProgressBar:
    """`done/total` and a bar on one line of a terminal; a last line only elsewhere."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.width = width
        self._live = stream.isatty()

    def advance(self) -> None:
        self.done += 1
        if self._live or self.done == self.total:
            filled = self.width * self.done // max(self.total, 1)
            bar = "#" * filled + "." * (self.width - filled)
            end = "\n" if self.done == self.total else ""
            prefix = "\r" if self._live else ""
            self.stream.write(f"{prefix}exported {self.done}/{self.total} [{bar}]{end}")
            self.stream.flush()


async def _write(pieces: AsyncIterator[str], out: TextIO) -> None:
    buffer: list[str] = []
    size = 0
    async for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= _WRITE_SIZE:
            await asyncio.to_thread(out.write, "".join(buffer))
            buffer, size = [], 0
    await asyncio.to_thread(out.write, "".join(buffer))


async def export_one(
    repository: SessionRepositoryProtocol,
    session_id: str,
    export_format: ExportFormat,
    out: TextIO,
) -> None:
    """Write the session's whole record to `out`.

    Raises:
        SessionNotFoundError: no session has this id.
    """
    session = await repository.get(session_id)
    if session is None:
        raise SessionNotFoundError(session_id)
    await _write(
        export_record(
            session,
            walk_utterances(repository, session_id),
            export_format,
            walk_turn_records(repository, session_id),
        ),
        out,
    )


async def _ids_with_status(
    repository: SessionRepositoryProtocol, status: SessionStatus
) -> list[str]:
    pages = walk_pages(
        lambda cursor: repository.list_sessions(status=status, limit=500, cursor=cursor)
    )
    return [session.id async for session in pages]


async def export_many(
    repository: SessionRepositoryProtocol,
    status: SessionStatus,
    export_format: ExportFormat,
    directory: Path,
    progress: TextIO = sys.stderr,
) -> list[Path]:
    """Export every session in `status` to a file of its own in `directory`; return the files."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    ids = await _ids_with_status(repository, status)
    bar = ProgressBar(len(ids), progress)
    written: list[Path] = []
    taken: set[str] = set()
    for session_id in ids:
        name = export_file_name(session_id, export_format)
        stem, dot, extension = name.rpartition(".")
        number = 1
        while name in taken:  # two ids that differ only in unsafe characters
            number += 1
            name = f"{stem}-{number}{dot}{extension}"
        taken.add(name)
        path = directory / name
        with await asyncio.to_thread(path.open, "w", encoding="utf-8", newline="") as out:
            try:
                await export_one(repository, session_id, export_format, out)
            except SessionNotFoundError:
                # Deleted since the listing; nothing to export.
                await asyncio.to_thread(path.unlink)
                bar.advance()
                continue
        written.append(path)
        bar.advance()
    return written
