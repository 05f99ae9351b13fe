"""`export` never writes over the database, never leaves a partial file, blames a bad `--out`."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from pathlib import Path

import pytest

from src.domain.export import ExportFormat, parse_json_export, session_export_file_name
from src.domain.models.session import Session
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session
from tests.servers import SERVER

pytestmark = pytest.mark.sqlite


def run(*args: str, db_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SERVER), *args],
        env={"PATH": "/usr/bin:/bin", "DATABASE_PATH": str(db_path), "DATABASE_URL": "", **env},
        cwd=db_path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def stored(db_path: Path) -> Session:
    async def store() -> Session:
        async with SessionRepository(db_path) as repo:
            return await repo.create(new_session())

    return asyncio.run(store())


def integrity(db_path: Path) -> str:
    connection = sqlite3.connect(db_path)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
def test_export_over_the_database_or_its_companions_is_refused(tmp_path: Path, suffix: str) -> None:
    db_path = tmp_path / "interview.db"
    session = stored(db_path)
    before = db_path.read_bytes()
    target = tmp_path / f"interview.db{suffix}"

    result = run("export", session.id, "--out", str(target), db_path=db_path)

    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert "--out" in line and "the database" in line
    assert db_path.read_bytes() == before
    assert integrity(db_path) == "ok"


def test_export_over_the_database_under_another_name_is_refused(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    session = stored(db_path)
    (tmp_path / "link").symlink_to(tmp_path)

    result = run(
        "export", session.id, "--out", str(tmp_path / "link" / "interview.db"), db_path=db_path
    )

    assert result.returncode == 2, result.stderr
    assert "--out" in one_line(result)
    assert integrity(db_path) == "ok"


def test_a_failed_export_leaves_no_file(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    stored(db_path)
    out = tmp_path / "nobody.json"

    result = run("export", "nobody", "--out", str(out), db_path=db_path)

    assert result.returncode == 1
    assert one_line(result) == "interview-system: Session 'nobody' does not exist."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["interview.db"]


def test_a_failed_export_leaves_an_older_file_as_it_was(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    stored(db_path)
    out = tmp_path / "kept.json"
    out.write_text("an earlier export")

    result = run("export", "nobody", "--out", str(out), db_path=db_path)

    assert result.returncode == 1
    assert out.read_text() == "an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["interview.db", "kept.json"]


def test_export_into_an_existing_folder_names_the_file_as_the_download_does(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    session = stored(db_path)
    folder = tmp_path / "exports"
    folder.mkdir()

    result = run("export", session.id, "--format", "json", "--out", str(folder), db_path=db_path)

    assert result.returncode == 0, result.stderr
    (written,) = folder.iterdir()
    assert written.name == session_export_file_name(session, ExportFormat.JSON)
    exported, _ = parse_json_export(written.read_text(encoding="utf-8"))
    assert exported == session


def test_export_into_a_missing_folder_blames_out(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    session = stored(db_path)
    out = tmp_path / "missing" / "export.json"

    result = run("export", session.id, "--out", str(out), db_path=db_path)

    assert result.returncode == 2
    line = one_line(result)
    assert "--out" in line and "does not exist" in line
    assert "cannot use the database" not in line
    assert not out.parent.exists()


def test_bulk_export_into_a_file_blames_out(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    stored(db_path)
    out = tmp_path / "a-file"
    out.write_text("")

    result = run("export", "--status", "active", "--out", str(out), db_path=db_path)

    assert result.returncode == 2
    line = one_line(result)
    assert "--out" in line and "not a folder" in line
    assert "cannot use the database" not in line


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["export", "some-id"], {}),
        (["export", "--status", "completed", "--out", "exports"], {}),
        (["sweep"], {"IDLE_PAUSE_AFTER": "60"}),
        (["sweep"], {}),
        (["backup", "copy.db"], {}),
    ],
)
def test_export_sweep_and_backup_on_a_missing_database_say_so_and_create_nothing(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    db_path = tmp_path / "data" / "missing.db"
    db_path.parent.mkdir()

    result = run(*args, db_path=db_path, **env)

    assert result.returncode == 1
    assert one_line(result) == (
        f"interview-system: cannot use the database {db_path}: there is no such file"
        " (interview-system migrate creates it)"
    )
    assert list(db_path.parent.iterdir()) == []


def test_export_under_a_file_blames_out(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    session = stored(db_path)
    (tmp_path / "a-file").write_text("")

    result = run(
        "export", session.id, "--out", str(tmp_path / "a-file" / "x.json"), db_path=db_path
    )

    assert result.returncode == 2
    assert one_line(result) == (
        f"interview-system: Invalid value for '--out': {tmp_path / 'a-file'} is a file, "
        "not a folder (see 'interview-system export --help')"
    )
