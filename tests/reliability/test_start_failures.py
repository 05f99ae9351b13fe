"""A database the program cannot use stops it at start with one line naming the file and cause."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.reliability.conftest import Tmpfs
from tests.servers import free_port, run_command

pytestmark = pytest.mark.sqlite


def start(command: str, db_path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    args = [command, "--port", str(free_port())] if command == "serve" else [command]
    return run_command(*args, env={"DATABASE_PATH": str(db_path), "DATABASE_URL": ""}, cwd=cwd)


def assert_stopped_in_one_line(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"interview-system: {message}"


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_database_on_a_read_only_file_system_stops_the_program(
    tmpfs: Tmpfs, tmp_path: Path, command: str
) -> None:
    db_path = tmpfs.path / "interview.db"
    assert start("migrate", db_path, tmp_path).returncode == 0
    tmpfs.make_read_only()

    result = start(command, db_path, tmp_path)

    assert_stopped_in_one_line(result, f"cannot use the database {db_path}: the file is read-only")


def test_a_missing_database_in_a_read_only_folder_stops_the_program(
    tmpfs: Tmpfs, tmp_path: Path
) -> None:
    tmpfs.make_read_only()
    db_path = tmpfs.path / "data" / "interview.db"

    result = start("serve", db_path, tmp_path)

    assert_stopped_in_one_line(
        result, f"cannot use the database {db_path}: the folder {tmpfs.path} is read-only"
    )


def test_a_database_under_a_file_stops_the_program(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    db_path = tmp_path / "data" / "interview.db"

    result = start("serve", db_path, tmp_path)

    assert_stopped_in_one_line(
        result, f"cannot use the database {db_path}: {tmp_path / 'data'} is a file, not a folder"
    )


def test_a_missing_database_is_created_at_start(tmp_path: Path) -> None:
    db_path = tmp_path / "new" / "interview.db"

    result = start("migrate", db_path, tmp_path)

    assert result.returncode == 0, result.stderr
    assert db_path.read_bytes().startswith(b"SQLite format 3\x00")
