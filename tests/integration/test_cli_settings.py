"""The command line stops on a bad setting or an unusable database with one clear line."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from src.persistence.database import load_migrations
from tests.servers import run_command

pytestmark = pytest.mark.sqlite


def test_the_command_line_stops_on_a_bad_setting_naming_it(tmp_path: Path) -> None:
    result = run_command("serve", env={"PORT": "99999"}, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "interview-system: invalid setting PORT: Input should be less than or equal to 65535"
    ]


def test_migrate_creates_the_database_and_exits(tmp_path: Path) -> None:
    db_path = tmp_path / "nested" / "cli.db"

    result = run_command("migrate", env={"DATABASE_PATH": str(db_path)}, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert db_path.exists()
    assert f"schema_version={len(load_migrations())}" in result.stderr


def test_migrate_refuses_a_newer_database_with_one_line(tmp_path: Path) -> None:
    db_path = tmp_path / "newer.db"
    run_command("migrate", env={"DATABASE_PATH": str(db_path)}, cwd=tmp_path)
    connection = sqlite3.connect(db_path)
    connection.execute("PRAGMA user_version = 99")
    connection.close()

    result = run_command("migrate", env={"DATABASE_PATH": str(db_path)}, cwd=tmp_path)

    assert result.returncode == 1
    assert "schema version 99, newer than" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("prepare", "cause"),
    [
        (lambda path: path.write_bytes(b"this is not a database" * 100), "not a database"),
        (lambda path: path.mkdir(), "it is a folder, not a file"),
    ],
)
@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_an_unusable_database_stops_the_program_in_one_line(
    tmp_path: Path, prepare: Any, cause: str, command: str
) -> None:
    db_path = tmp_path / "broken.db"
    prepare(db_path)

    result = run_command(command, env={"DATABASE_PATH": str(db_path)}, cwd=tmp_path)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"interview-system: cannot use the database {db_path}: ")
    assert cause in lines[-1]
    assert "Traceback" not in result.stderr
