"""The SQLite database: connections, PRAGMAs and schema migrations."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import aiosqlite

from src.core.errors import DatabaseFileError, SchemaVersionError, StorageUnavailableError
from src.persistence.sqlite_thread import daemonize

__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "STORE_CACHE_KIB",
    "Migration",
    "SameFileGuard",
    "Synchronous",
    "check_integrity",
    "connection_pragmas",
    "database_file_guard",
    "database_file_problem",
    "database_path_problem",
    "init_database",
    "migrate",
    "open_connection",
    "read_only_uri",
]

MIGRATIONS_DIRECTORY = Path(__file__).parent / "migrations" / "sqlite"
BUSY_TIMEOUT_SECONDS = 5.0

Synchronous = Literal["full", "normal"]

# synchronous=FULL (the default): in WAL mode this fsyncs the log on every
# commit, so a write that has returned survives a power cut, not only a crash
# of the process. NORMAL survives the process crashing, but the last commits
# before a power cut may be lost.
_SYNCHRONOUS_PRAGMA: dict[Synchronous, str] = {
    "full": "PRAGMA synchronous = FULL",
    "normal": "PRAGMA synchronous = NORMAL",
}
# cache_size: 8 MiB instead of SQLite's 2 MB keeps more of a large store's
# b-tree pages in memory, a bounded cost; mmap would count the whole file
# toward the process's resident memory as pages are touched.
STORE_CACHE_KIB = 8192
# secure_delete: deleted content is overwritten with zeros, not left in free
# space, so an erased participant's words do not stay readable in the file.
_CONNECTION_PRAGMAS = """
PRAGMA foreign_keys = ON;
PRAGMA secure_delete = ON;
"""


def connection_pragmas(synchronous: Synchronous = "full", cache_kib: int = STORE_CACHE_KIB) -> str:
    """The PRAGMAs every connection of the store runs once opened, as one script."""
    return (
        f"{_CONNECTION_PRAGMAS}PRAGMA cache_size = -{cache_kib};\n"
        f"{_SYNCHRONOUS_PRAGMA[synchronous]};\n"
    )


_MIGRATION_FILE = re.compile(r"^(?P<version>\d{3})_(?P<name>\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema step, applied in its own transaction."""

    version: int
    name: str
    statements: tuple[str, ...]


def _split_statements(script: str) -> tuple[str, ...]:
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip() and not all(
        line.strip().startswith("--") for line in pending.strip().splitlines()
    ):
        raise ValueError(f"unterminated SQL statement: {pending.strip()[:60]!r}")
    return tuple(statements)


@cache
def load_migrations(
    directory: Path = MIGRATIONS_DIRECTORY, *, split: bool = True
) -> tuple[Migration, ...]:
    """The migrations in `directory`, in order; numbering must start at 1 without gaps.

    split: cut each file into statements, as SQLite runs them one at a time
    (its own parser finds where each ends). PostgreSQL runs a file whole, so
    a `$$` body or a string holding `;` stays as written.
    """
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name!r} is not named NNN_name.sql")
        script = path.read_text(encoding="utf-8")
        statements = _split_statements(script) if split else (script,)
        migrations.append(Migration(int(match["version"]), match["name"], statements))
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(migrations) + 1)):
        raise ValueError(f"migrations must be numbered 1..N without gaps, found {versions}")
    return tuple(migrations)


async def open_connection(
    db_path: str | os.PathLike[str],
    synchronous: Synchronous = "full",
    *,
    any_thread: bool = False,
    cache_kib: int = STORE_CACHE_KIB,
) -> aiosqlite.Connection:
    """Open a connection in autocommit mode with this store's PRAGMAs, creating the folder.

    any_thread: the sqlite3 connection may be used from threads other than its
    worker, one at a time (the caller sees to that).
    cache_kib: the size of its page cache.
    """
    path = Path(db_path)
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    # Autocommit: each statement is its own transaction, committed before the
    # call returns; multi-statement work says BEGIN IMMEDIATE explicitly.
    connection = aiosqlite.connect(
        path,
        isolation_level=None,
        timeout=BUSY_TIMEOUT_SECONDS,
        check_same_thread=not any_thread,
    )
    # An unclosed repository must not keep the interpreter from exiting.
    daemonize(connection)
    await connection
    try:
        await _use_wal(connection)
        await connection.executescript(connection_pragmas(synchronous, cache_kib))
    except BaseException:
        await connection.close()
        raise
    connection.row_factory = aiosqlite.Row
    return connection


def read_only_uri(db_path: str | os.PathLike[str]) -> str:
    """A URI that opens the database file for reading only; never creates it."""
    return Path(db_path).resolve().as_uri() + "?mode=ro"


def database_file_problem(db_path: str | os.PathLike[str]) -> str | None:
    """What is wrong with the database file, seen from outside any open connection; None if nothing.

    An open connection serves from its cache and keeps an unlinked file
    alive, so it cannot tell on its own that the file is gone or overwritten.
    The file is read through a new SQLite connection, not a plain open(): a
    plain close() would drop the POSIX locks this process's connections hold
    on it, which SQLite's own file handling knows to keep.
    """
    path = Path(db_path)
    if not path.exists():
        return "The database file is missing."
    try:
        probe = sqlite3.connect(read_only_uri(path), uri=True)
    except sqlite3.Error:
        return "The database file cannot be read."
    try:
        probe.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        name = getattr(exc, "sqlite_errorname", "")
        if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            return "The database file is damaged."
        return "The database file cannot be read."
    finally:
        probe.close()
    return None


def database_path_problem(db_path: str | os.PathLike[str]) -> str | None:
    """Why this process could not write the database at this path; None if it could.

    SQLite opens a file it cannot write read-only without a word, and creates
    its -wal and -shm files beside it, so both the file and its folder are
    checked before a server starts on it.
    """
    path = Path(db_path)
    if os.fspath(db_path) == ":memory:":
        return None
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if path.is_dir():
        return "it is a folder, not a file"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return "the file is read-only"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is read-only"
    return None


_FileIdentity = tuple[int, int]  # (st_dev, st_ino)


def _identity(path: str) -> _FileIdentity | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError:
        raise StorageUnavailableError("The database file cannot be read.") from None
    return (status.st_dev, status.st_ino)


_SHM_GONE = "The database's -shm file was deleted or replaced; restart the server."
# Run by the process that holds the database open: until its standard input
# closes (when this process ends, however it ends).
_HOLD_OPEN = """
import sqlite3, sys
database = sqlite3.connect(sys.argv[1])
database.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchall()
print("open", flush=True)
sys.stdin.read()
database.close()
"""


class SameFileGuard:
    """Raises StorageUnavailableError once the path no longer names the files opened.

    An open connection keeps an unlinked file alive and goes on writing to
    it, and one whose file was replaced (`mv backup live`) writes to the old
    file while its -wal sits beside the new one; so once the path names
    another file, or none, nothing may be acknowledged. Before a commit the
    -wal file is checked too: while a connection is open SQLite never
    deletes it, and a commit into a deleted one is lost at the next crash.
    The -shm file, the index of the log that every process shares, is
    checked after reads and before commits: the connections go on with the
    index they mapped, while the next process to open the database makes a
    new one, and two processes writing one log with two indexes lose each
    other's commits. A stat takes about 2 microseconds: two after reads,
    three before a commit.
    """

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self._path = os.path.abspath(db_path)
        self._wal_path = f"{self._path}-wal"
        self._shm_path = f"{self._path}-shm"
        opened = _identity(self._path)
        if opened is None:
            raise StorageUnavailableError("The database file is missing.")
        self._file = opened
        # A new database has no -wal until its first write: taken when first seen.
        self._wal = _identity(self._wal_path)
        self._shm = _identity(self._shm_path)
        self._log_emptied = False
        self._keeper: subprocess.Popen[bytes] | None = None

    def __call__(self, database: sqlite3.Connection, committing: bool) -> None:
        problem = self._problem(committing)
        if problem is None:
            self._log_emptied = False  # back in place: empty the log again next time
            return
        if problem == _SHM_GONE:
            self._keep_the_log()
        elif not self._log_emptied:
            self._empty_log(database)
        raise StorageUnavailableError(problem)

    def close(self) -> None:
        """Let the process that holds the database open go; call it after closing the rest."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            assert keeper.stdin is not None
            keeper.stdin.close()
            keeper.wait()

    def problem(self) -> str | None:
        """Why a commit would be refused now (the file or its -wal is another); None if not."""
        problem = self._problem(committing=True)
        if problem is None:
            self._log_emptied = False  # back in place: empty the log again next time
        return problem

    def read_problem(self) -> str | None:
        """Why a read may not be trusted now (the file or the log's index is another)."""
        return self._problem(committing=False)

    def _problem(self, committing: bool) -> str | None:
        current = _identity(self._path)
        if current is None:
            return "The database file is missing."
        if current != self._file:
            return "The database file was replaced; restart the server to use the new file."
        shm = _identity(self._shm_path)
        if self._shm is None:
            self._shm = shm
        elif shm != self._shm:
            return _SHM_GONE
        if not committing:
            return None
        wal = _identity(self._wal_path)
        if self._wal is None:
            self._wal = wal
        elif wal != self._wal:
            return "The database's -wal file was deleted or replaced; restart the server."
        return None

    def _keep_the_log(self) -> None:
        """Have another process hold the database open on the shared index, until close().

        This process's index of the log is out of date, so none of its
        connections may checkpoint it; yet the last connection to close
        checkpoints the log and deletes it, and with this index it would
        copy old pages over newer ones and delete commits it does not know
        of. While another process has the database open, no connection here
        is the last; that process, closed last, checkpoints with the index
        that is right. (A connection of this process would share its index.)
        """
        if self._keeper is not None:
            return
        keeper = subprocess.Popen(
            [sys.executable, "-c", _HOLD_OPEN, self._path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert keeper.stdin is not None and keeper.stdout is not None
        with keeper.stdout:
            opened = keeper.stdout.readline() == b"open\n"
        if not opened:
            keeper.kill()
            keeper.wait()
            keeper.stdin.close()
            return  # tried again at the next refusal
        self._keeper = keeper

    def _empty_log(self, database: sqlite3.Connection) -> None:
        """Move what the log holds into the file the connection opened, and empty the log.

        The -wal file beside a replaced database would otherwise be read
        into the new file by the next process to open it, and SQLite leaves
        it there when a connection to a moved file closes. A deleted -wal
        holds commits the file does not have yet. Undoes the transaction
        the connection is in, if any.
        """
        if database.in_transaction:
            database.execute("ROLLBACK")
        try:
            (busy, _, _) = database.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:
            return  # tried again at the next refusal
        self._log_emptied = busy == 0


def database_file_guard(db_path: str | os.PathLike[str]) -> SameFileGuard | None:
    """A guard of the files at `db_path` as they are now; None for an in-memory database.

    Take it right after opening the connections it is to guard.
    """
    if os.fspath(db_path) == ":memory:":
        return None
    return SameFileGuard(db_path)


async def check_integrity(connection: aiosqlite.Connection, database: str) -> None:
    """Refuse a damaged database before anything is served from it or written to it.

    quick_check reads every page, about a second per 300 MB, but skips the
    index-to-table cross-checks integrity_check makes.

    Raises:
        DatabaseFileError: quick_check finds the file damaged.
    """
    try:
        rows = list(await connection.execute_fetchall("PRAGMA quick_check(1)"))
        finding = str(rows[0][0])
    except sqlite3.DatabaseError as exc:
        if not getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            raise
        finding = str(exc)
    if finding != "ok":
        one_line = " ".join(finding.split())
        raise DatabaseFileError(database, f"the file is damaged (quick_check: {one_line})")


async def _use_wal(connection: aiosqlite.Connection) -> None:
    # Turning a new file to WAL takes an exclusive lock, and SQLite reports
    # "locked" at once, without its busy handler, when another process opens
    # the same new file at that moment; so wait here as busy_timeout would.
    deadline = asyncio.get_running_loop().time() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            await connection.execute_fetchall("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorname", "").startswith("SQLITE_BUSY")
            if not busy or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.005)


async def _user_version(connection: aiosqlite.Connection) -> int:
    rows = list(await connection.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


async def migrate(connection: aiosqlite.Connection, database: str) -> int:
    """Apply pending migrations and return the schema version.

    Raises:
        SchemaVersionError: the database is newer than every migration known here.
        DatabaseFileError: its schema version is negative, so no migration made it.
    """
    migrations = load_migrations()
    latest = len(migrations)
    current = await _user_version(connection)
    if current > latest:
        raise SchemaVersionError(database, current, latest)
    if current < 0:
        raise DatabaseFileError(
            database, f"it has schema version {current}, which no version of this program writes"
        )
    for migration in migrations[current:]:
        # Each step and its version number commit together, under the write
        # lock, so two processes starting at once never apply a step twice.
        await connection.execute_fetchall("BEGIN IMMEDIATE")
        try:
            if await _user_version(connection) < migration.version:
                for statement in migration.statements:
                    await connection.execute_fetchall(statement)
                await connection.execute_fetchall(f"PRAGMA user_version = {migration.version:d}")
            await connection.execute_fetchall("COMMIT")
        except BaseException:
            await connection.execute_fetchall("ROLLBACK")
            raise
    return latest


async def init_database(db_path: str | os.PathLike[str]) -> int:
    """Create the database file and its folder if missing, check it and apply pending migrations.

    Safe to run any number of times; returns the schema version.

    Raises:
        DatabaseFileError: the file or its folder cannot be written, or the file is damaged.
        SchemaVersionError: the database was written by a newer version of this program.
    """
    problem = await asyncio.to_thread(database_path_problem, db_path)
    if problem is not None:
        raise DatabaseFileError(os.fspath(db_path), problem)
    connection = await open_connection(db_path)
    try:
        await check_integrity(connection, os.fspath(db_path))
        return await migrate(connection, os.fspath(db_path))
    finally:
        await connection.close()
