"""Online backup and checked restore of the SQLite database, through SQLite's backup API."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from src.core.errors import DatabaseFileError, DatabaseInUseError
from src.persistence.database import (
    database_path_problem,
    load_migrations,
    migrate,
    open_connection,
)

__all__ = [
    "RestoreResult",
    "backup_database",
    "is_database_file",
    "restore_database",
]

# The files SQLite keeps beside a database while it is in use.
_COMPANION_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """What a restore put in place, and where the database it replaced was kept."""

    sessions: int
    safety_copy: Path | None


def is_database_file(path: str | os.PathLike[str], db_path: str | os.PathLike[str]) -> bool:
    """Whether `path` names the database at `db_path` or one of SQLite's files beside it."""
    candidate = Path(path).resolve()
    database = Path(db_path).resolve()
    for suffix in _COMPANION_SUFFIXES:
        companion = database.with_name(database.name + suffix)
        if candidate == companion:
            return True
        # Another name for the same file (a hard link) writes into it just the same.
        if candidate.exists() and companion.exists() and os.path.samefile(candidate, companion):
            return True
    return False


async def backup_database(db_path: str | os.PathLike[str], target: str | os.PathLike[str]) -> int:
    """Copy the database to `target` while others keep writing; returns the sessions copied.

    The copy is one snapshot, taken in one read transaction: every write
    committed before the backup began is in it, none that came later is
    half in it. It is checked, turned into a single self-contained file (no
    write-ahead log, so reading it creates no -wal or -shm files), flushed to
    disk, then renamed into place, so `target` is either the old file or the
    whole new copy.

    Raises:
        DatabaseFileError: the database or the target cannot be used.
    """
    target_path = Path(target)
    if await asyncio.to_thread(is_database_file, target_path, db_path):
        raise DatabaseFileError(
            os.fspath(target), "it is the database itself, not a place for a copy"
        )
    problem = await asyncio.to_thread(database_path_problem, target_path)
    if problem is None and not await asyncio.to_thread(_absent_or_regular, target_path):
        # The copy is renamed over the target: over /dev/null, that would
        # make the device a plain file for every process.
        problem = "it is not a regular file (a device, FIFO, socket or symbolic link)"
    if problem is not None:
        raise DatabaseFileError(os.fspath(target), problem)
    await asyncio.to_thread(target_path.parent.mkdir, parents=True, exist_ok=True)
    partial = await asyncio.to_thread(_temporary_file_beside, target_path)
    try:
        source = await open_connection(db_path)
        try:
            copy = await aiosqlite.connect(partial, isolation_level=None)
            try:
                with _blaming_the_copy(target):
                    await source.backup(copy, pages=-1)
                await _checked_version(copy, os.fspath(db_path))
                (count,) = await copy.execute_fetchall("SELECT count(*) FROM sessions")
                with _blaming_the_copy(target):
                    await _without_write_ahead_log(copy)
            finally:
                await copy.close()
        finally:
            await source.close()
        await asyncio.to_thread(_move_into_place, partial, target_path)
    except BaseException:
        await asyncio.to_thread(_remove_with_companions, partial)
        raise
    return int(count[0])


def _remove_with_companions(path: Path) -> None:
    # A write that failed (a full disk) leaves its journal beside the file.
    for suffix in _COMPANION_SUFFIXES:
        path.with_name(path.name + suffix).unlink(missing_ok=True)


@contextmanager
def _blaming_the_copy(target: str | os.PathLike[str]) -> Iterator[None]:
    """A full disk while writing the copy is the copy's disk's, not the database's."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if not getattr(exc, "sqlite_errorname", "").startswith("SQLITE_FULL"):
            raise
        raise DatabaseFileError(os.fspath(target), "the disk it is on is full") from exc


def _absent_or_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except FileNotFoundError:
        return True


async def restore_database(
    db_path: str | os.PathLike[str], backup: str | os.PathLike[str]
) -> RestoreResult:
    """Replace the database with the copy in `backup`, keeping the database it replaces.

    The copy is staged in a temporary file beside the database and checked
    there completely: SQLite's integrity and foreign-key checks, a schema
    version this program knows, and every table, column and index exactly as
    this program's migrations make them. Only then is it brought to the
    latest schema, flushed to disk and renamed over the database, so the
    database is either untouched or wholly replaced. The database it
    replaces is first copied to `<name>.before-restore-<UTC time>` beside it.

    Raises:
        DatabaseFileError: `backup` is not a sound copy of a session database, or
            the database's folder cannot be written.
        DatabaseInUseError: another process has the database open.
    """
    backup_path, live = Path(backup), Path(db_path)
    name = os.fspath(backup)
    if await asyncio.to_thread(backup_path.is_dir):
        raise DatabaseFileError(name, "it is a folder, not a file")
    if not await asyncio.to_thread(backup_path.is_file):
        exists = await asyncio.to_thread(backup_path.exists)
        raise DatabaseFileError(
            name, "it is not a regular file" if exists else "there is no such file"
        )
    if await asyncio.to_thread(is_database_file, backup_path, live):
        raise DatabaseFileError(name, "it is the database itself, not a copy of it")
    problem = await asyncio.to_thread(database_path_problem, live)
    if problem is not None:
        raise DatabaseFileError(os.fspath(db_path), problem)
    await asyncio.to_thread(live.parent.mkdir, parents=True, exist_ok=True)
    staged = await asyncio.to_thread(_temporary_file_beside, live)
    try:
        sessions = await _stage(backup_path, staged, name)
        safety_copy = await _swap_in(live, staged)
    except BaseException:
        await asyncio.to_thread(_remove_with_companions, staged)
        raise
    return RestoreResult(sessions, safety_copy)


async def _stage(backup: Path, staged: Path, name: str) -> int:
    """Copy `backup` to `staged`, check it, migrate it; returns its number of sessions."""
    uri = await asyncio.to_thread(_read_only_uri, backup)
    source = await aiosqlite.connect(uri, uri=True, isolation_level=None)
    try:
        copy = await aiosqlite.connect(staged, isolation_level=None)
        try:
            try:
                await source.backup(copy, pages=-1)
            except sqlite3.DatabaseError as exc:
                raise DatabaseFileError(name, f"it is not a session database ({exc})") from exc
            version = await _checked_version(copy, name)
            await _check_schema(copy, name, version)
            await migrate(copy, name)
            await _check_schema(copy, name, len(load_migrations()))
            (count,) = await copy.execute_fetchall("SELECT count(*) FROM sessions")
            await _without_write_ahead_log(copy)
        finally:
            await copy.close()
    finally:
        await source.close()
    return int(count[0])


async def _swap_in(live: Path, staged: Path) -> Path | None:
    """Rename `staged` over `live` while no one else has it open; returns the safety copy."""
    if not await asyncio.to_thread(live.exists):
        await asyncio.to_thread(_move_into_place, staged, live)
        return None
    database = await aiosqlite.connect(live, isolation_level=None, timeout=0)
    try:
        await _lock_out_others(database, os.fspath(live))
        # Fold the write-ahead log into the file, so the file alone is the
        # database: SQLite would replay a log left beside the name onto the
        # new file. A damaged database may refuse; its log is kept with the
        # safety copy instead.
        try:
            journal_mode = await _without_write_ahead_log(database)
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                raise DatabaseInUseError(os.fspath(live)) from exc
            journal_mode = "damaged"
        if journal_mode not in ("delete", "damaged"):
            raise DatabaseInUseError(os.fspath(live))
        safety_copy = live.with_name(
            f"{live.name}.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}"
        )
        await asyncio.to_thread(_keep_safety_copy, live, safety_copy)
        await asyncio.to_thread(_take_mode_and_owner, staged, live)
        await asyncio.to_thread(_move_into_place, staged, live)
    finally:
        await database.close()
    return safety_copy


def _take_mode_and_owner(staged: Path, live: Path) -> None:
    """Give `staged` the mode and owner of `live`, so that whoever could use it still can.

    The staged file is private to whoever runs the restore; run by root for
    a server that runs as its own user, it would lock the server out.
    """
    status = live.stat()
    os.chmod(staged, stat.S_IMODE(status.st_mode))
    if (status.st_uid, status.st_gid) != (os.geteuid(), os.getegid()):
        with suppress(PermissionError):  # only root may give a file away
            os.chown(staged, status.st_uid, status.st_gid)


def _keep_safety_copy(live: Path, safety_copy: Path) -> None:
    for suffix in ("", "-wal"):
        source = live.with_name(live.name + suffix)
        if suffix and not source.exists():
            continue
        partial = _temporary_file_beside(live)
        try:
            shutil.copyfile(source, partial)
            _move_into_place(partial, safety_copy.with_name(safety_copy.name + suffix))
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        if suffix:
            source.unlink()


async def _without_write_ahead_log(connection: aiosqlite.Connection) -> str:
    # A copy of a WAL database is marked WAL too; a reader would then create
    # -wal and -shm files beside it (and leave them, if it may not delete them).
    rows = list(await connection.execute_fetchall("PRAGMA journal_mode = DELETE"))
    return str(rows[0][0]).lower()


async def _lock_out_others(database: aiosqlite.Connection, name: str) -> None:
    # In exclusive locking mode the lock taken here is kept until the
    # connection closes; every open connection holds a shared lock, so it
    # cannot be taken while any other process has the database open.
    await database.execute("PRAGMA locking_mode = EXCLUSIVE")
    try:
        await database.execute("BEGIN EXCLUSIVE")
        await database.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        error = getattr(exc, "sqlite_errorname", "")
        if error.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            raise DatabaseInUseError(name) from exc
        # Not a database at all: no one can be using it as one.
        if error != "SQLITE_NOTADB":
            raise


async def _checked_version(connection: aiosqlite.Connection, name: str) -> int:
    """The schema version of a sound session database made by this program or an older one."""
    known = len(load_migrations())
    try:
        (integrity,) = await connection.execute_fetchall("PRAGMA integrity_check")
        if integrity[0] != "ok":
            raise DatabaseFileError(name, f"it fails SQLite's integrity check: {integrity[0]}")
        orphans = list(await connection.execute_fetchall("PRAGMA foreign_key_check"))
        if orphans:
            raise DatabaseFileError(
                name, f"it fails SQLite's foreign key check: {len(orphans)} rows in {orphans[0][0]}"
            )
        (version,) = await connection.execute_fetchall("PRAGMA user_version")
    except sqlite3.DatabaseError as exc:
        raise DatabaseFileError(name, f"it is not a session database ({exc})") from exc
    found = int(version[0])
    if found > known:
        raise DatabaseFileError(
            name,
            f"it has schema version {found}, newer than the {known} this program knows; "
            "use the newer program that wrote it",
        )
    if found < 1:
        raise DatabaseFileError(
            name,
            f"it is not a session database: schema version {found}, "
            f"where this program writes 1 to {known}",
        )
    return found


async def _check_schema(connection: aiosqlite.Connection, name: str, version: int) -> None:
    """Refuse a schema that differs from what this program's migrations make at `version`."""
    expected = await _reference_schema(version)
    found = await _schema(connection)
    # A missing or foreign object is named first: it is the cause, and what
    # depends on it (a search index without its table) may differ only because of it.
    differences = [
        *(f"{key} is missing" for key in sorted(expected.keys() - found.keys())),
        *(f"{key} is not one of this program's" for key in sorted(found.keys() - expected.keys())),
        *(
            f"{key} differs from this program's"
            # Tables before indexes, triggers and views, which may differ only through them.
            for key in sorted(
                expected.keys() & found.keys(), key=lambda k: (k.split()[0] != "table", k)
            )
            if found[key] != expected[key]
        ),
    ]
    if differences:
        raise DatabaseFileError(
            name, f"it is not a session database of schema version {version}: {differences[0]}"
        )


# The shape of each table and index, as SQLite reports it: names, declared
# types, NOT NULL, defaults, keys, foreign keys, STRICT and WITHOUT ROWID.
_OBJECTS = (
    "SELECT type, name, tbl_name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
)
_TABLE_SHAPE = (
    "SELECT 'table', type, ncol, wr, strict FROM pragma_table_list(?) WHERE schema = 'main'",
    "SELECT 'column', cid, name, type, \"notnull\", dflt_value, pk, hidden"
    " FROM pragma_table_xinfo(?) ORDER BY cid",
    'SELECT \'foreign key\', id, seq, "table", "from", "to", on_update, on_delete, match'
    " FROM pragma_foreign_key_list(?) ORDER BY id, seq",
    "SELECT 'index', name, \"unique\", origin, partial FROM pragma_index_list(?) ORDER BY name",
)
_INDEX_SHAPE = (
    'SELECT \'column\', seqno, cid, name, "desc", coll, "key"'
    " FROM pragma_index_xinfo(?) ORDER BY seqno",
)


async def _schema(connection: aiosqlite.Connection) -> dict[str, list[tuple[object, ...]]]:
    shape: dict[str, list[tuple[object, ...]]] = {}
    for kind, object_name, table in await connection.execute_fetchall(_OBJECTS):
        rows: list[tuple[object, ...]] = [(kind, table)]
        queries = {"table": _TABLE_SHAPE, "index": _INDEX_SHAPE}.get(kind, ())
        for query in queries:
            rows += [tuple(row) for row in await connection.execute_fetchall(query, (object_name,))]
        shape[f"{kind} {object_name}"] = rows
    return shape


async def _reference_schema(version: int) -> dict[str, list[tuple[object, ...]]]:
    """The schema this program's migrations make at `version`, built in memory."""
    reference = await aiosqlite.connect(":memory:", isolation_level=None)
    try:
        for migration in load_migrations()[:version]:
            for statement in migration.statements:
                await reference.execute(statement)
        return await _schema(reference)
    finally:
        await reference.close()


def _read_only_uri(path: Path) -> str:
    # `immutable` reads a file without creating -wal and -shm files beside
    # it; only safe when there is no write-ahead log holding part of it.
    uri = path.resolve().as_uri() + "?mode=ro"
    if not path.with_name(path.name + "-wal").exists():
        uri += "&immutable=1"
    return uri


def _temporary_file_beside(path: Path) -> Path:
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(descriptor)
    return Path(name)


def _fsync(path: Path) -> None:
    with path.open("rb") as file:
        os.fsync(file.fileno())


def _move_into_place(partial: Path, target: Path) -> None:
    _fsync(partial)
    partial.replace(target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
