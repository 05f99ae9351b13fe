"""`interview-system export --study S`: one file for a whole study, to standard output or --out."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from src.domain.models.graph import GraphChange
from src.domain.models.utterance import NewUtterance
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session, state_of
from tests.qdpx_reader import read_qdpx
from tests.servers import SERVER, run_command

pytestmark = pytest.mark.sqlite

ANSWER = "Coffee keeps me awake"


async def study_sessions(db_path: Path, study: str, count: int) -> list[str]:
    ids = []
    async with SessionRepository(db_path) as repo:
        for number in range(count):
            session = await repo.create(new_session(study_id=study, participant_id=f"p{number}"))
            graph = GraphChange.model_validate(
                {
                    "nodes": [
                        {
                            "id": "awake",
                            "type": "consequence",
                            "label": "Stay awake",
                            "provenance": [
                                {"turn_number": 1, "speaker": "respondent", "start": 13, "end": 21}
                            ],
                        }
                    ]
                }
            )
            await repo.record_turn(
                session.id,
                [NewUtterance(turn_number=1, speaker="respondent", text=ANSWER)],
                state_of(session, turn_count=1),
                graph=graph,
            )
            ids.append(session.id)
        await repo.create(new_session(study_id=f"other-{uuid.uuid4()}"))
    return ids


def env(db_path: Path) -> dict[str, str]:
    return {"DATABASE_PATH": str(db_path), "DATABASE_URL": ""}


async def test_a_study_exports_as_one_qdpx_to_standard_output_and_to_a_file(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "store.db"
    study = f"study-{uuid.uuid4()}"
    ids = await study_sessions(db_path, study, 3)
    written = subprocess.run(
        [str(SERVER), "export", "--study", study],
        env={"PATH": "/usr/bin:/bin", **env(db_path)},
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert written.returncode == 0, written.stderr
    for content in (written.stdout,):
        project = read_qdpx(content)
        assert set(project["sources"]) == set(ids)
        assert all(
            source["codings"] == [(("consequence", "Stay awake"), "me awake")]
            for source in project["sources"].values()
        )
    out = tmp_path / "study.qdpx"
    to_file = run_command(
        "export", "--study", study, "--out", str(out), env=env(db_path), cwd=tmp_path
    )
    assert to_file.returncode == 0, to_file.stderr
    assert set(read_qdpx(out.read_bytes())["sources"]) == set(ids)


async def test_a_study_exports_as_jsonl_and_csv(tmp_path: Path) -> None:
    db_path = tmp_path / "store.db"
    study = f"study-{uuid.uuid4()}"
    ids = await study_sessions(db_path, study, 2)
    jsonl = run_command(
        "export", "--study", study, "--format", "jsonl", env=env(db_path), cwd=tmp_path
    )
    assert jsonl.returncode == 0, jsonl.stderr
    assert [json.loads(line)["session"]["id"] for line in jsonl.stdout.splitlines()] == ids
    csv = run_command("export", "--study", study, "--format", "csv", env=env(db_path), cwd=tmp_path)
    assert csv.returncode == 0, csv.stderr
    rows = csv.stdout.splitlines()
    assert rows[0].startswith("session_id,") and len(rows) == 3


async def test_an_unknown_study_or_a_session_format_is_refused(tmp_path: Path) -> None:
    db_path = tmp_path / "store.db"
    study = f"study-{uuid.uuid4()}"
    await study_sessions(db_path, study, 1)
    unknown = run_command("export", "--study", "nobody", env=env(db_path), cwd=tmp_path)
    assert unknown.returncode != 0 and "nobody" in unknown.stderr
    markdown = run_command(
        "export", "--study", study, "--format", "markdown", env=env(db_path), cwd=tmp_path
    )
    assert markdown.returncode == 2 and "qdpx, csv or jsonl" in markdown.stderr
