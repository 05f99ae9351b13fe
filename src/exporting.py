"""Exports to files and to standard output, for the `interview-system export` command.

A file is written under a temporary name beside its target and renamed into
place once complete, so a failed export leaves the target as it was.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TextIO

from src.core.errors import SessionNotFoundError
from src.domain.export import ExportFormat, export_record, session_export_file_name
from src.domain.models.session import SessionStatus
from src.domain.redaction import Pseudonymizer
from src.persistence.pagination import walk_pages
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.repositories.transcript import walk_turn_records, walk_utterances

__all__ = [
    "export_many",
    "export_one",
    "export_path_in",
    "export_to_file",
    "session_ids_with_status",
]

# Pieces are gathered up to this size before each write, one thread hop each.
_WRITE_SIZE = 256 * 1024


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
    *,
    pseudonymizer: Pseudonymizer | None = None,
) -> None:
    """Write the session's whole record to `out`, pseudonymised by `pseudonymizer` if given.

    Raises:
        SessionNotFoundError: no session has this id.
    """
    session = await repository.get(session_id)
    if session is None:
        raise SessionNotFoundError(session_id)
    utterances = walk_utterances(repository, session_id)
    if pseudonymizer is not None:
        session, utterances = pseudonymizer.session(session), pseudonymizer.utterances(utterances)
    records = walk_turn_records(repository, session_id)
    await _write(export_record(session, utterances, export_format, records), out)


async def export_to_file(
    repository: SessionRepositoryProtocol,
    session_id: str,
    export_format: ExportFormat,
    path: Path,
    *,
    pseudonymizer: Pseudonymizer | None = None,
) -> None:
    """Write the session's whole record to the file `path`, or leave `path` as it was.

    Raises:
        SessionNotFoundError: no session has this id.
        OSError: the file cannot be written; its `filename` is `path`.
    """
    if not await asyncio.to_thread(_absent_or_regular, path):
        # The export is renamed over `path`: over /dev/null, that would make
        # the device a plain file for every process.
        raise OSError(
            errno.EEXIST,
            "it is not a regular file (a device, FIFO, socket or symbolic link)",
            os.fspath(path),
        )
    try:
        descriptor, name = await asyncio.to_thread(
            tempfile.mkstemp, dir=path.parent, prefix=f".{path.name}.", suffix=".partial"
        )
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc
    partial = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as out:
            await export_one(
                repository, session_id, export_format, out, pseudonymizer=pseudonymizer
            )
            await asyncio.to_thread(out.flush)
            await asyncio.to_thread(os.fsync, out.fileno())
        await asyncio.to_thread(partial.replace, path)
    except BaseException as exc:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        if isinstance(exc, OSError):
            # Named after the export's file, not the temporary one beside it.
            raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc
        raise


async def export_path_in(
    repository: SessionRepositoryProtocol,
    session_id: str,
    export_format: ExportFormat,
    folder: Path,
) -> Path:
    """The file in `folder` for the session's export, named as the HTTP download is.

    Raises:
        SessionNotFoundError: no session has this id.
    """
    session = await repository.get(session_id)
    if session is None:
        raise SessionNotFoundError(session_id)
    return folder / session_export_file_name(session, export_format)


def _absent_or_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except FileNotFoundError:
        return True


async def session_ids_with_status(
    repository: SessionRepositoryProtocol, status: SessionStatus
) -> list[str]:
    """The ids of every session in `status`, newest first."""
    pages = walk_pages(
        lambda cursor: repository.list_sessions(status=status, limit=500, cursor=cursor)
    )
    return [session.id async for session in pages]


async def export_many(
    repository: SessionRepositoryProtocol,
    session_ids: list[str],
    export_format: ExportFormat,
    directory: Path,
    on_each: Callable[[], None] = lambda: None,
    *,
    pseudonymizer: Pseudonymizer | None = None,
) -> list[Path]:
    """Export each session to a file of its own in `directory`; returns the files written.

    A session deleted since its id was listed is passed over. `on_each` is
    called after each session, written or passed over. With `pseudonymizer`,
    each record is pseudonymised as `export_one` does it.
    """
    written: list[Path] = []
    taken: set[str] = set()
    for session_id in session_ids:
        try:
            name = (await export_path_in(repository, session_id, export_format, directory)).name
        except SessionNotFoundError:
            on_each()
            continue
        stem, dot, extension = name.rpartition(".")
        number = 1
        while name in taken:  # the same concept and day, ids that differ in unsafe characters
            number += 1
            name = f"{stem}-{number}{dot}{extension}"
        taken.add(name)
        path = directory / name
        try:
            await export_to_file(
                repository, session_id, export_format, path, pseudonymizer=pseudonymizer
            )
        except SessionNotFoundError:
            pass
        else:
            written.append(path)
        on_each()
    return written
