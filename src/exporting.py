"""Exports to files and to standard output, for the `interview-system export` command.

A file is written under a temporary name beside its target and renamed into
place once complete, so a failed export leaves the target as it was.
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import stat
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import BinaryIO, TextIO, cast

from src.core.errors import SessionNotFoundError
from src.domain.export import ExportFormat, session_export_file_name
from src.domain.models.session import SessionStatus
from src.domain.redaction import Pseudonymizer
from src.persistence.pagination import walk_pages
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.study_exporting import (
    LISTING_PAGE_SIZE,
    StudyExportFormat,
    export_session_bytes,
    export_study,
    study_session_ids,
)

__all__ = [
    "export_many",
    "export_one",
    "export_path_in",
    "export_study_to",
    "export_to_file",
    "session_ids_with_status",
    "write_atomically",
]

# Pieces are gathered up to this size before each write, one thread hop each.
_WRITE_SIZE = 256 * 1024


def _binary(out: TextIO | BinaryIO) -> BinaryIO | None:
    """The binary file beneath `out`; None for a text file that has none (a StringIO)."""
    if isinstance(out, io.TextIOBase):
        buffer: BinaryIO | None = getattr(out, "buffer", None)
        return buffer
    return cast(BinaryIO, out)


async def _write(chunks: AsyncIterator[bytes], out: TextIO | BinaryIO) -> None:
    """Write UTF-8 (or zip) bytes to a binary file, or as text to a text file without one."""
    binary = _binary(out)
    if binary is not None and binary is not out:
        await asyncio.to_thread(out.flush)  # what was written as text goes first
    buffer: list[bytes] = []
    size = 0

    async def flush() -> None:
        data = b"".join(buffer)
        if binary is not None:
            await asyncio.to_thread(binary.write, data)
        else:
            await asyncio.to_thread(cast(TextIO, out).write, data.decode())

    async for chunk in chunks:
        buffer.append(chunk)
        size += len(chunk)
        if size >= _WRITE_SIZE:
            await flush()
            buffer, size = [], 0
    await flush()
    if binary is not None:
        await asyncio.to_thread(binary.flush)


async def export_one(
    repository: SessionRepositoryProtocol,
    session_id: str,
    export_format: ExportFormat,
    out: TextIO | BinaryIO,
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
    await _write(export_session_bytes(repository, session, export_format, pseudonymizer), out)


async def export_study_to(
    repository: SessionRepositoryProtocol,
    study_id: str,
    export_format: StudyExportFormat,
    out: TextIO | BinaryIO,
    *,
    pseudonymizer: Pseudonymizer | None = None,
) -> None:
    """Write every session of the study to `out` in one file of `export_format`.

    Raises:
        StudyNotFoundError: no session belongs to the study.
    """
    session_ids = await study_session_ids(repository, study_id)
    await _write(export_study(repository, study_id, session_ids, export_format, pseudonymizer), out)


async def write_atomically(path: Path, write: Callable[[BinaryIO], Awaitable[None]]) -> None:
    """Run `write` on a temporary file beside `path`, then rename it into place; on any
    failure leave `path` as it was.

    Raises:
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
        with os.fdopen(descriptor, "wb") as out:
            await write(out)
            await asyncio.to_thread(out.flush)
            await asyncio.to_thread(os.fsync, out.fileno())
        await asyncio.to_thread(partial.replace, path)
    except BaseException as exc:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        if isinstance(exc, OSError):
            # Named after the export's file, not the temporary one beside it.
            raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc
        raise


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
    await write_atomically(
        path,
        lambda out: export_one(
            repository, session_id, export_format, out, pseudonymizer=pseudonymizer
        ),
    )


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
        lambda cursor: repository.list_sessions(
            status=status, limit=LISTING_PAGE_SIZE, cursor=cursor
        )
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
