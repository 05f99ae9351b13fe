"""Online backup and restore of the SQLite database, through SQLite's backup API."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import aiosqlite

from src.core.errors import DatabaseFileError, DatabaseInUseError, SchemaVersionError
from src.persistence.database import (
    database_path_problem,
    init_database,
    load_migrations,
    open_connection,
    read_only_uri,
)

__all__ = ["backup_database", "restore_database"]


async def backup_database(db_path: str | os.PathLike[str], target: str | os.PathLike[str]) -> int:
    """Copy the database to `target` while others keep writing; returns the sessions copied.

    The copy is one snapshot, taken in one read transaction: every write
    committed before the backup began is in it, none that came later is
    half in it. It is checked, flushed to disk, then moved into place, so
    `target` is either the old file or the whole new copy.

    Raises:
        DatabaseFileError: the database or the target cannot be used.
    """
    target_path = Path(target)
    problem = await asyncio.to_thread(database_path_problem, target_path)
    if problem is not None:
        raise DatabaseFileError(os.fspath(target), problem)
    partial = target_path.with_name(f".{target_path.name}.partial")
    await asyncio.to_thread(partial.unlink, missing_ok=True)
    source = await open_connection(db_path)
    try:
        copy = await aiosqlite.connect(partial, isolation_level=None)
        try:
            await source.backup(copy, pages=-1)
            sessions = await _check(copy, os.fspath(target))
        finally:
            await copy.close()
    finally:
        await source.close()
    await asyncio.to_thread(_move_into_place, partial, target_path)
    return sessions


async def restore_database(db_path: str | os.PathLike[str], backup: str | os.PathLike[str]) -> int:
    """Replace the database with the copy in `backup`; returns the sessions restored.

    Refused while any other connection has the database open: a server
    using it would go on from pages that are no longer there.

    Raises:
        DatabaseFileError: `backup` is not a sound copy of a session database.
        DatabaseInUseError: another process has the database open.
        SchemaVersionError: the copy was written by a newer version of this program.
    """
    if not await asyncio.to_thread(Path(backup).is_file):
        raise DatabaseFileError(os.fspath(backup), "there is no such file")
    # The copy is checked before the database is touched.
    uri = await asyncio.to_thread(read_only_uri, backup)
    source = await aiosqlite.connect(uri, uri=True, isolation_level=None)
    try:
        sessions = await _check(source, os.fspath(backup))
        await init_database(db_path)
        database = await aiosqlite.connect(os.fspath(db_path), isolation_level=None, timeout=0)
        try:
            await _lock_out_others(database, os.fspath(db_path))
            await source.backup(database, pages=-1)
        finally:
            await database.close()
    finally:
        await source.close()
    # A copy from an older version of this program gets the newer migrations.
    await init_database(db_path)
    return sessions


async def _lock_out_others(database: aiosqlite.Connection, name: str) -> None:
    # In exclusive locking mode the lock taken here is kept until the
    # connection closes; every open connection holds a shared lock, so it
    # cannot be taken while any other process has the database open.
    await database.execute("PRAGMA locking_mode = EXCLUSIVE")
    try:
        await database.execute("BEGIN EXCLUSIVE")
        await database.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            raise DatabaseInUseError(name) from exc
        raise


async def _check(connection: aiosqlite.Connection, name: str) -> int:
    """The number of sessions in a sound copy of a session database."""
    try:
        (integrity,) = await connection.execute_fetchall("PRAGMA integrity_check")
        (version,) = await connection.execute_fetchall("PRAGMA user_version")
        if integrity[0] != "ok":
            raise DatabaseFileError(name, f"it fails SQLite's integrity check: {integrity[0]}")
        known = len(load_migrations())
        if version[0] > known:
            raise SchemaVersionError(name, version[0], known)
        (count,) = await connection.execute_fetchall("SELECT count(*) FROM sessions")
    except sqlite3.DatabaseError as exc:
        raise DatabaseFileError(name, f"it is not a session database ({exc})") from exc
    return int(count[0])


def _move_into_place(partial: Path, target: Path) -> None:
    with partial.open("rb") as file:
        os.fsync(file.fileno())
    partial.replace(target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
