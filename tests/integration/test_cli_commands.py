"""The `interview-system` command line, in process with click's CliRunner."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import sqlite3
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from src.cli import cli
from src.core.config import Settings
from src.domain.export import ExportFormat, session_export_file_name
from src.domain.models.session import Session
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session
from tests.servers import SERVER

pytestmark = pytest.mark.sqlite

COMMANDS = ["serve", "migrate", "backup", "restore", "export", "search", "sweep", "keys"]


def invoke(*args: str, db_path: Path | None = None, **env: str) -> Result:
    environment = {"DATABASE_URL": "", **env}
    if db_path is not None:
        environment["DATABASE_PATH"] = str(db_path)
    return CliRunner().invoke(cli, list(args), env=environment, catch_exceptions=False)


def stored(db_path: Path, count: int, status: str = "active") -> list[Session]:
    async def store() -> list[Session]:
        async with SessionRepository(db_path) as repo:
            sessions = [await repo.create(new_session(status=status)) for _ in range(count)]
        return sessions

    return asyncio.run(store())


class TestHelp:
    def test_the_group_lists_every_command_with_its_description(self) -> None:
        result = invoke("--help")

        assert result.exit_code == 0
        for command in COMMANDS:
            assert f"  {command} " in result.stdout

    def test_no_command_shows_the_help(self) -> None:
        result = invoke()

        assert result.exit_code == 2
        assert result.stderr.startswith("Usage: interview-system [OPTIONS] COMMAND")
        assert "  export " in result.stderr

    @pytest.mark.parametrize("command", COMMANDS)
    def test_every_command_has_help_with_a_description(self, command: str) -> None:
        result = invoke(command, "--help")

        assert result.exit_code == 0
        assert result.stdout.startswith(f"Usage: interview-system {command}")
        description = result.stdout.split("\n\n")[1].strip()
        assert len(description) > 20

    @pytest.mark.parametrize(
        ("command", "defaults"),
        [
            ("serve", ["[default: HOST, else 127.0.0.1]", "[default: PORT, else 8000]"]),
            ("export", ["[default: json]", "[default: standard output]"]),
        ],
    )
    def test_options_show_their_defaults(self, command: str, defaults: list[str]) -> None:
        result = invoke(command, "--help", COLUMNS="200")

        for default in defaults:
            assert default in result.stdout

    def test_version(self) -> None:
        result = invoke("--version")

        assert result.exit_code == 0
        assert result.stdout == f"interview-system, version {version('interview-system')}\n"


class TestErrors:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["nonsense"], "No such command 'nonsense'."),
            (
                ["export", "--format", "pdf", "x"],
                "'pdf' is not one of 'json', 'markdown', 'csv', 'graphml', 'qdpx', 'jsonl'.",
            ),
            (["serve", "--port", "eighty"], "'eighty' is not a valid integer."),
            (["backup"], "Missing argument 'FILE'."),
        ],
    )
    def test_a_usage_error_is_one_line_and_exit_2(self, args: list[str], message: str) -> None:
        result = invoke(*args)

        assert result.exit_code == 2
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line.startswith("interview-system: ")
        assert message in line

    def test_a_bad_setting_is_one_line_and_exit_2(self, tmp_path: Path) -> None:
        result = invoke("migrate", db_path=tmp_path / "x.db", DATABASE_SYNCHRONOUS="off")

        assert result.exit_code == 2
        (line,) = result.stderr.splitlines()
        assert line.startswith("interview-system: invalid setting DATABASE_SYNCHRONOUS")

    def test_a_database_error_is_one_line_and_exit_1(self, tmp_path: Path) -> None:
        db_path = tmp_path / "junk.db"
        db_path.write_bytes(b"junk" * 1000)

        result = invoke("migrate", db_path=db_path)

        assert result.exit_code == 1
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"interview-system: cannot use the database {db_path}: ")

    def test_migrate_refuses_a_negative_schema_version_and_changes_nothing(
        self, tmp_path: Path
    ) -> None:
        db_path = tmp_path / "odd.db"
        connection = sqlite3.connect(db_path)
        connection.execute("PRAGMA user_version = -1")
        connection.close()

        result = invoke("migrate", db_path=db_path)

        assert result.exit_code == 1
        (line,) = result.stderr.splitlines()
        assert line == (
            f"interview-system: cannot use the database {db_path}: "
            "it has schema version -1, which no version of this program writes"
        )
        connection = sqlite3.connect(db_path)
        assert connection.execute("PRAGMA user_version").fetchone() == (-1,)
        assert connection.execute("SELECT name FROM sqlite_schema").fetchall() == []
        connection.close()


class TestBackup:
    def test_the_copy_has_no_write_ahead_log_and_reading_it_makes_none(
        self, tmp_path: Path
    ) -> None:
        db_path = tmp_path / "live.db"
        stored(db_path, 3)
        copy = tmp_path / "copies" / "copy.db"
        copy.parent.mkdir()

        result = invoke("backup", str(copy), db_path=db_path)

        assert result.exit_code == 0, result.stderr
        assert "sessions=3" in result.stderr
        assert sorted(p.name for p in copy.parent.iterdir()) == ["copy.db"]
        reader = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
        assert reader.execute("SELECT count(*) FROM sessions").fetchone() == (3,)
        reader.close()
        assert sorted(p.name for p in copy.parent.iterdir()) == ["copy.db"]

    def test_a_backup_over_the_database_itself_is_refused(self, tmp_path: Path) -> None:
        db_path = tmp_path / "live.db"
        stored(db_path, 1)
        before = db_path.read_bytes()

        result = invoke("backup", str(db_path), db_path=db_path)

        assert result.exit_code == 1
        (line,) = result.stderr.splitlines()
        assert "it is the database itself" in line
        assert db_path.read_bytes() == before


class TestExport:
    def test_bulk_export_draws_clicks_progress_bar_and_reports_the_count(
        self, tmp_path: Path
    ) -> None:
        db_path = tmp_path / "live.db"
        sessions = stored(db_path, 3, status="completed")
        out = tmp_path / "exports"

        result = invoke("export", "--status", "completed", "--out", str(out), db_path=db_path)

        assert result.exit_code == 0, result.stderr
        assert "exporting" in result.stderr  # the bar's label; the bar itself only on a terminal
        assert "sessions=3" in result.stderr
        assert sorted(p.name for p in out.iterdir()) == sorted(
            session_export_file_name(s, ExportFormat.JSON) for s in sessions
        )

    def test_export_to_standard_output(self, tmp_path: Path) -> None:
        db_path = tmp_path / "live.db"
        (session,) = stored(db_path, 1)

        result = invoke("export", session.id, "--format", "markdown", db_path=db_path)

        assert result.exit_code == 0, result.stderr
        assert session.id in result.stdout


class TestDatabasePath:
    def test_a_tilde_is_the_home_folder(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.setenv("DATABASE_PATH", "~/data/interview.db")

        assert Settings().database_path == tmp_path / "data" / "interview.db"

    def test_migrate_creates_the_database_under_the_home_folder(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.chdir(tmp_path)
        home = tmp_path / "home"
        home.mkdir()

        result = invoke("migrate", HOME=str(home), DATABASE_PATH="~/interview.db")

        assert result.exit_code == 0, result.stderr
        assert (home / "interview.db").is_file()
        assert not (tmp_path / "~").exists()


def test_on_a_terminal_the_bulk_export_draws_clicks_bar(tmp_path: Path) -> None:
    db_path = tmp_path / "live.db"
    stored(db_path, 3, status="paused")
    controller, terminal = pty.openpty()
    try:
        finished = subprocess.run(
            [str(SERVER), "export", "--status", "paused", "--out", str(tmp_path / "out")],
            env={"PATH": "/usr/bin:/bin", "DATABASE_PATH": str(db_path), "DATABASE_URL": ""},
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            timeout=60,
            check=False,
        )
    finally:
        os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the terminal has no writer left
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)

    assert finished.returncode == 0, shown
    assert re.search(rb"exporting\s+\[#+\]\s+3/3", shown), shown
