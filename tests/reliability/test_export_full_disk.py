"""An export onto a full disk: one line about the export's file, no partial file left."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from src.domain.export import ExportFormat, session_export_file_name
from src.domain.models.session import Session
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session
from tests.reliability.conftest import Tmpfs
from tests.servers import SERVER

pytestmark = pytest.mark.sqlite


async def session_with_long_transcript(db_path: Path) -> Session:
    async with SessionRepository(db_path) as repo:
        session = await repo.create(new_session())
        for number in range(1, 21):
            await repo.append_utterance(
                session.id,
                NewUtterance(turn_number=number, speaker=Speaker.RESPONDENT, text="x" * 20_000),
            )
        return session


def fill(tmpfs: Tmpfs) -> None:
    with (tmpfs.path / "filler").open("wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass


@pytest.mark.parametrize("bulk", [False, True])
def test_an_export_onto_a_full_disk_blames_its_file_and_leaves_none(
    tmpfs: Tmpfs, tmp_path: Path, bulk: bool
) -> None:
    db_path = tmp_path / "interview.db"
    session = asyncio.run(session_with_long_transcript(db_path))
    out = tmpfs.path / "exports"
    out.mkdir()
    fill(tmpfs)
    args = ["--status", "active", "--out", str(out)] if bulk else [session.id, "--out", str(out)]

    result = subprocess.run(
        [str(SERVER), "export", *args],
        env={"PATH": "/usr/bin:/bin", "DATABASE_PATH": str(db_path), "DATABASE_URL": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"interview-system: cannot write the export to "
        f"{out / session_export_file_name(session, ExportFormat.JSON)}: "
        "No space left on device"
    )
    assert list(out.iterdir()) == []
