"""`backup` and `export --out` never replace a FIFO, device or socket with a file of their own.

Both write a temporary file and rename it over their target; renamed over
`/dev/null` (`backup /dev/null`, `export ID --out /dev/null`), that turns
the device into a plain file for every process on the machine.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from pathlib import Path

import pytest

from src.domain.export import ExportFormat, session_export_file_name
from src.domain.models.session import Session
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session
from tests.servers import SERVER

pytestmark = pytest.mark.sqlite


def run(*args: str, db_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SERVER), *args],
        env={"PATH": "/usr/bin:/bin", "DATABASE_PATH": str(db_path), "DATABASE_URL": ""},
        cwd=db_path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def stored(db_path: Path) -> Session:
    async def store() -> Session:
        async with SessionRepository(db_path) as repo:
            return await repo.create(new_session())

    return asyncio.run(store())


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def assert_refused_naming(result: subprocess.CompletedProcess[str], target: Path) -> None:
    assert result.returncode in (1, 2), result.stderr
    assert "Traceback" not in result.stderr
    # The last line: `export --status` names its progress bar first.
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("interview-system: "), result.stderr
    assert str(target) in error and "not a regular file" in error, error


def test_backup_to_a_fifo_leaves_the_fifo_in_place(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    stored(db_path)
    target = fifo(tmp_path / "pipe")

    result = run("backup", str(target), db_path=db_path)

    assert stat.S_ISFIFO(target.lstat().st_mode), "the FIFO was replaced by a plain file"
    assert_refused_naming(result, target)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["interview.db", "pipe"]


def test_export_to_a_fifo_leaves_the_fifo_in_place(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    session = stored(db_path)
    target = fifo(tmp_path / "pipe")

    result = run("export", session.id, "--out", str(target), db_path=db_path)

    assert stat.S_ISFIFO(target.lstat().st_mode), "the FIFO was replaced by a plain file"
    assert_refused_naming(result, target)


def test_export_of_a_status_into_a_folder_never_replaces_a_fifo_there(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    session = stored(db_path)
    folder = tmp_path / "exports"
    folder.mkdir()
    target = fifo(folder / session_export_file_name(session, ExportFormat.JSON))

    result = run("export", "--status", "active", "--out", str(folder), db_path=db_path)

    assert stat.S_ISFIFO(target.lstat().st_mode), "the FIFO was replaced by a plain file"
    assert_refused_naming(result, target)


def test_restore_from_a_fifo_says_what_it_is(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    stored(db_path)
    before = db_path.read_bytes()
    source = fifo(tmp_path / "pipe")

    result = run("restore", str(source), db_path=db_path)

    assert_refused_naming(result, source)
    assert db_path.read_bytes() == before
