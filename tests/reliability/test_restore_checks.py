"""`restore` checks the copy completely before it touches the database, and keeps the old one."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from src.persistence.database import load_migrations
from tests.servers import SERVER

pytestmark = pytest.mark.sqlite

LATEST = len(load_migrations())


def run(*args: str, db_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SERVER), *args],
        env={"PATH": "/usr/bin:/bin", "DATABASE_PATH": str(db_path), "DATABASE_URL": ""},
        cwd=db_path.parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def migrated(path: Path, *, up_to: int = LATEST, sessions: int = 0) -> Path:
    """A database made by this program's own migrations, holding `sessions` rows."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for migration in load_migrations()[:up_to]:
            for statement in migration.statements:
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {up_to}")
        for number in range(sessions):
            connection.execute(
                "INSERT INTO sessions (id, methodology, concept_id, concept_name, status,"
                " created_at, updated_at) VALUES (?, 'mec', 'c', 'Coffee', 'active', ?, ?)",
                (f"{path.stem}-{number}", "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00Z"),
            )
    finally:
        connection.close()
    return path


def foreign(version: int) -> Callable[[Path], None]:
    """A SQLite file with a `sessions` table of some other program's shape."""

    def make(path: Path) -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY, user TEXT, data BLOB)")
        connection.execute("INSERT INTO sessions VALUES ('x', 'someone', x'00')")
        connection.execute(f"PRAGMA user_version = {version}")
        connection.close()

    return make


def ours_then(*statements: str) -> Callable[[Path], None]:
    """Our schema at the latest version, then changed by `statements`."""

    def make(path: Path) -> None:
        migrated(path, sessions=1)
        connection = sqlite3.connect(path, isolation_level=None)
        for statement in statements:
            connection.execute(statement)
        connection.close()

    return make


def stored_ids(db_path: Path) -> set[str]:
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {row[0] for row in connection.execute("SELECT id FROM sessions")}
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("make_copy", "cause"),
    [
        pytest.param(foreign(0), "schema version 0", id="foreign-version-0"),
        pytest.param(foreign(LATEST), "not a session database", id="foreign-latest-version"),
        pytest.param(foreign(-1), "schema version -1", id="foreign-version-minus-1"),
        pytest.param(foreign(1), "not a session database", id="foreign-version-1"),
        pytest.param(foreign(LATEST + 7), f"schema version {LATEST + 7}, newer", id="newer"),
        pytest.param(ours_then("DROP TABLE utterances"), "table utterances", id="missing-table"),
        pytest.param(
            ours_then("ALTER TABLE sessions DROP COLUMN ended_at"),
            "table sessions",
            id="missing-column",
        ),
        pytest.param(
            ours_then("ALTER TABLE sessions ADD COLUMN extra TEXT"),
            "table sessions",
            id="extra-column",
        ),
        pytest.param(ours_then("CREATE TABLE extra (x INTEGER)"), "table extra", id="extra-table"),
        pytest.param(
            ours_then("DROP INDEX sessions_by_created"), "index sessions_by_created", id="no-index"
        ),
        pytest.param(Path.mkdir, "it is a folder, not a file", id="folder"),
    ],
)
def test_restore_refuses_a_copy_that_is_not_ours_and_leaves_the_live_database_alone(
    tmp_path: Path, make_copy: Callable[[Path], None], cause: str
) -> None:
    live = tmp_path / "live" / "interview.db"
    live.parent.mkdir()
    migrated(live, sessions=3)
    copy = tmp_path / "copy.db"
    make_copy(copy)
    before = live.read_bytes()
    files_before = sorted(live.parent.iterdir())

    result = run("restore", str(copy), db_path=live)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"interview-system: cannot use the database {copy}: ")
    assert cause in lines[0]
    assert live.read_bytes() == before
    assert sorted(live.parent.iterdir()) == files_before
    assert stored_ids(live) == {f"interview-{n}" for n in range(3)}


def test_restore_replaces_the_file_by_renaming_and_keeps_a_safety_copy(tmp_path: Path) -> None:
    live = migrated(tmp_path / "interview.db", sessions=3)
    copy = migrated(tmp_path / "copy.db", sessions=2)
    inode_before = live.stat().st_ino

    result = run("restore", str(copy), db_path=live)

    assert result.returncode == 0, result.stderr
    assert stored_ids(live) == {"copy-0", "copy-1"}
    # A new file renamed over the old name, not the old file written in place.
    assert live.stat().st_ino != inode_before
    match = re.search(r"safety_copy=(\S+)", result.stderr)
    assert match is not None, result.stderr
    safety_copy = Path(match[1])
    assert safety_copy.parent == live.parent
    assert stored_ids(safety_copy) == {f"interview-{n}" for n in range(3)}
    leftovers = {p.name for p in tmp_path.iterdir()} - {
        "interview.db",
        "copy.db",
        safety_copy.name,
    }
    assert leftovers == set()


def test_restore_of_an_older_copy_migrates_it_to_the_latest_schema(tmp_path: Path) -> None:
    live = migrated(tmp_path / "interview.db", sessions=1)
    copy = migrated(tmp_path / "copy.db", up_to=1, sessions=2)

    result = run("restore", str(copy), db_path=live)

    assert result.returncode == 0, result.stderr
    assert stored_ids(live) == {"copy-0", "copy-1"}
    connection = sqlite3.connect(live)
    try:
        assert connection.execute("PRAGMA user_version").fetchone() == (LATEST,)
    finally:
        connection.close()


def test_restore_into_a_missing_database_needs_no_safety_copy(tmp_path: Path) -> None:
    live = tmp_path / "data" / "interview.db"
    copy = migrated(tmp_path / "copy.db", sessions=2)

    result = run("restore", str(copy), db_path=live)

    assert result.returncode == 0, result.stderr
    assert stored_ids(live) == {"copy-0", "copy-1"}
    assert "safety_copy" not in result.stderr
    assert os.listdir(live.parent) == ["interview.db"]


def damage_pages(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xa5" * (len(data) - 4096)
    path.write_bytes(bytes(data))


def replace_with_junk(path: Path) -> None:
    path.write_bytes(b"this was a database once" * 400)


@pytest.mark.parametrize("damage", [damage_pages, replace_with_junk])
def test_restore_over_a_damaged_database_keeps_it_byte_for_byte(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    live = migrated(tmp_path / "interview.db", sessions=3)
    damage(live)
    damaged = live.read_bytes()
    copy = migrated(tmp_path / "copy.db", sessions=2)

    result = run("restore", str(copy), db_path=live)

    assert result.returncode == 0, result.stderr
    assert stored_ids(live) == {"copy-0", "copy-1"}
    match = re.search(r"safety_copy=(\S+)", result.stderr)
    assert match is not None, result.stderr
    assert Path(match[1]).read_bytes() == damaged


def test_restore_while_another_process_has_the_database_open_changes_nothing(
    tmp_path: Path,
) -> None:
    live = migrated(tmp_path / "interview.db", sessions=3)
    copy = migrated(tmp_path / "copy.db", sessions=2)
    other = sqlite3.connect(live)
    try:
        other.execute("PRAGMA journal_mode = WAL")
        other.execute("SELECT count(*) FROM sessions").fetchall()
        files_before = sorted(tmp_path.iterdir())

        result = run("restore", str(copy), db_path=live)

        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            f"interview-system: The database {live} is in use by another process; "
            "stop it and try again."
        ]
        assert sorted(tmp_path.iterdir()) == files_before
    finally:
        other.close()
    assert stored_ids(live) == {f"interview-{n}" for n in range(3)}
