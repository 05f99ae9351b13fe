"""`interview-system export` names its files as the HTTP download does, and keeps two
sessions whose names would be the same apart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from src.domain.export import ExportFormat, parse_json_export, session_export_file_name
from src.domain.models.session import Session
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session
from tests.integration.test_cli_export_safety import run

pytestmark = pytest.mark.sqlite


def stored(db_path: Path, *session_ids: str) -> list[Session]:
    async def store() -> list[Session]:
        async with SessionRepository(db_path) as repo:
            return [
                await repo.create(new_session(id=session_id, status="completed"))
                for session_id in session_ids
            ]

    return asyncio.run(store())


def test_a_bulk_export_keeps_two_sessions_that_map_to_one_name_apart(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    # Both ids become "s_1" in a file name; the concept and the day are the same too.
    first, second = stored(db_path, "s/1", "s:1")
    folder = tmp_path / "exports"
    assert session_export_file_name(first, ExportFormat.JSON) == session_export_file_name(
        second, ExportFormat.JSON
    )

    result = run("export", "--status", "completed", "--out", str(folder), db_path=db_path)

    assert result.returncode == 0, result.stderr
    name = session_export_file_name(first, ExportFormat.JSON)
    stem = name.removesuffix(".json")
    assert sorted(p.name for p in folder.iterdir()) == [f"{stem}-2.json", name]
    exported = {parse_json_export(p.read_text(encoding="utf-8"))[0].id for p in folder.iterdir()}
    assert exported == {"s/1", "s:1"}


def test_a_single_export_into_a_folder_carries_the_concept_and_day(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    (session,) = stored(db_path, "one")

    result = run("export", "one", "--format", "markdown", "--out", str(tmp_path), db_path=db_path)

    assert result.returncode == 0, result.stderr
    day = session.created_at.date().isoformat()
    assert (tmp_path / f"{session.concept_id}_{day}_one.md").is_file()
