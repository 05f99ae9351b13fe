"""Settings from the environment, and one clear line for a bad value."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from src.core.config import Settings, describe_settings_error
from src.persistence.database import load_migrations


def test_defaults_are_the_contract_s(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_PATH", "HOST", "PORT"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings()

    assert settings.database_path == Path("data/interview.db")
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_PATH", "/srv/x.db")
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "9001")

    settings = Settings()

    assert (settings.database_path, settings.host, settings.port) == (
        Path("/srv/x.db"),
        "0.0.0.0",
        9001,
    )


def test_a_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PORT", raising=False)
    (tmp_path / ".env").write_text("PORT=9100\n")

    assert Settings().port == 9100


@pytest.mark.parametrize("port", ["0", "65536", "eighty"])
def test_a_bad_port_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch, port: str) -> None:
    monkeypatch.setenv("PORT", port)

    with pytest.raises(ValidationError) as raised:
        Settings()

    message = describe_settings_error(raised.value)
    assert message.startswith("invalid setting PORT: ")
    assert "\n" not in message


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "src.cli", *args]
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        command,
        env={"PYTHONPATH": str(root), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_command_line_stops_on_a_bad_setting_naming_it(tmp_path: Path) -> None:
    result = run_cli("serve", env={"PORT": "99999"}, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "interview-system: invalid setting PORT: Input should be less than or equal to 65535"
    ]


def test_migrate_creates_the_database_and_exits(tmp_path: Path) -> None:
    db_path = tmp_path / "nested" / "cli.db"

    result = run_cli("migrate", env={"DATABASE_PATH": str(db_path)}, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert db_path.exists()
    assert f"schema_version={len(load_migrations())}" in result.stderr


def test_migrate_refuses_a_newer_database_with_one_line(tmp_path: Path) -> None:
    db_path = tmp_path / "newer.db"
    run_cli("migrate", env={"DATABASE_PATH": str(db_path)}, cwd=tmp_path)
    connection = sqlite3.connect(db_path)
    connection.execute("PRAGMA user_version = 99")
    connection.close()

    result = run_cli("migrate", env={"DATABASE_PATH": str(db_path)}, cwd=tmp_path)

    assert result.returncode == 1
    assert "schema version 99, newer than" in result.stderr
    assert "Traceback" not in result.stderr


def test_database_synchronous_accepts_full_or_normal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_SYNCHRONOUS", "normal")

    assert Settings().database_synchronous == "normal"


def test_a_bad_database_synchronous_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_SYNCHRONOUS", "off")

    with pytest.raises(ValidationError) as raised:
        Settings()

    assert describe_settings_error(raised.value).startswith("invalid setting DATABASE_SYNCHRONOUS")


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

    result = run_cli(command, env={"DATABASE_PATH": str(db_path)}, cwd=tmp_path)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"interview-system: cannot use the database {db_path}: ")
    assert cause in lines[-1]
    assert "Traceback" not in result.stderr
