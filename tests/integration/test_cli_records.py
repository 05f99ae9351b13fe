"""`interview-system export` and `sweep` on a real database file."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
from pathlib import Path

import pytest

from src.domain.export import CSV_COLUMNS, ExportFormat, parse_json_export, session_export_file_name
from src.domain.models.session import Session
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session
from tests.servers import SERVER, run_command

pytestmark = pytest.mark.sqlite


def run(*args: str, db_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    database = {"DATABASE_PATH": str(db_path), "DATABASE_URL": ""}
    return run_command(*args, env={**database, **env}, cwd=db_path.parent)


async def stored_sessions(db_path: Path, statuses: list[str], turns: int) -> list[Session]:
    async with SessionRepository(db_path) as repo:
        sessions = [await repo.create(new_session()) for _ in statuses]
        for session in sessions:
            for number in range(1, turns + 1):
                for speaker in Speaker:
                    await repo.append_utterance(
                        session.id,
                        NewUtterance(
                            turn_number=number, speaker=speaker, text=f"{speaker} {number}"
                        ),
                    )
        for session, status in zip(sessions, statuses, strict=True):
            if status != "active":
                await repo.transition(session.id, status)
        return [s for s in [await repo.get(s.id) for s in sessions] if s is not None]


async def test_export_one_session_to_standard_output(tmp_path: Path) -> None:
    db_path = tmp_path / "cli.db"
    (session,) = await stored_sessions(db_path, ["completed"], turns=3)

    result = run("export", session.id, db_path=db_path)

    assert result.returncode == 0, result.stderr
    exported, utterances = parse_json_export(result.stdout)
    assert exported == session
    assert [(u.turn_number, u.speaker.value) for u in utterances] == [
        (n, s) for n in range(1, 4) for s in ("interviewer", "respondent")
    ]


async def test_export_every_completed_session_to_a_folder(tmp_path: Path) -> None:
    db_path = tmp_path / "cli.db"
    sessions = await stored_sessions(db_path, ["completed", "active", "completed"], turns=2)
    out = tmp_path / "exports"

    result = run(
        "export", "--status", "completed", "--format", "csv", "--out", str(out), db_path=db_path
    )

    assert result.returncode == 0, result.stderr
    assert "sessions=2" in result.stderr
    files = sorted(out.iterdir())
    assert [f.name for f in files] == sorted(
        session_export_file_name(s, ExportFormat.CSV) for s in sessions if s.status == "completed"
    )
    for file in files:
        rows = list(csv.DictReader(io.StringIO(file.read_text(encoding="utf-8"), newline="")))
        assert tuple(rows[0]) == CSV_COLUMNS
        assert len(rows) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "export takes one of a SESSION_ID, --status or --study, not several or none"),
        (
            ["some-id", "--status", "completed"],
            "export takes one of a SESSION_ID, --status or --study",
        ),
        (["--status", "completed"], "export --status needs --out FOLDER"),
    ],
)
def test_export_arguments_are_checked(tmp_path: Path, args: list[str], message: str) -> None:
    result = run("export", *args, db_path=tmp_path / "cli.db")

    assert result.returncode == 2
    assert message in result.stderr


def test_a_reader_that_stops_early_ends_the_export_quietly(tmp_path: Path) -> None:
    db_path = tmp_path / "cli.db"
    (session,) = asyncio.run(stored_sessions(db_path, ["completed"], turns=2000))
    env = {"PATH": "/usr/bin:/bin", "DATABASE_PATH": str(db_path), "DATABASE_URL": ""}
    export = subprocess.Popen(
        [str(SERVER), "export", session.id, "--format", "csv"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert export.stdout is not None and export.stderr is not None
    export.stdout.read(100)
    export.stdout.close()  # as `| head -c 100` does

    stderr = export.stderr.read()
    export.stderr.close()

    assert export.wait(timeout=60) == 1
    assert stderr.strip() == ""


def test_exporting_a_missing_session_is_one_line(tmp_path: Path) -> None:
    assert run("migrate", db_path=tmp_path / "cli.db").returncode == 0
    result = run("export", "nobody", db_path=tmp_path / "cli.db")

    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1]
        == "interview-system: Session 'nobody' does not exist."
    )


async def test_sweep_pauses_idle_sessions_once(tmp_path: Path) -> None:
    db_path = tmp_path / "cli.db"
    active, paused = await stored_sessions(db_path, ["active", "paused"], turns=0)

    result = run("sweep", db_path=db_path, IDLE_PAUSE_AFTER="0.001")

    assert result.returncode == 0, result.stderr
    assert "paused=1" in result.stderr and "abandoned=0" in result.stderr
    async with SessionRepository(db_path) as repo:
        after = await repo.get(active.id)
        assert after is not None and after.status == "paused"
        assert await repo.get(paused.id) == paused


def test_sweep_without_rules_changes_nothing(tmp_path: Path) -> None:
    assert run("migrate", db_path=tmp_path / "cli.db").returncode == 0
    result = run("sweep", db_path=tmp_path / "cli.db")

    assert result.returncode == 0
    assert "retention_off" in result.stderr
