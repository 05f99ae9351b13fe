"""A backup onto a full disk blames the copy's disk, not the database, and leaves no file."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session
from tests.reliability.conftest import Tmpfs
from tests.servers import SERVER

pytestmark = pytest.mark.sqlite


async def database_of_ten_mib(db_path: Path) -> None:
    async with SessionRepository(db_path) as repo:
        session = await repo.create(new_session())
        for number in range(1, 501):
            await repo.append_utterance(
                session.id,
                NewUtterance(turn_number=number, speaker=Speaker.RESPONDENT, text="x" * 20_000),
            )


def test_a_backup_onto_a_full_disk_blames_the_copy(tmpfs: Tmpfs, tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    asyncio.run(database_of_ten_mib(db_path))
    target = tmpfs.path / "copy.db"  # 8 MiB: too small for the copy
    before = db_path.read_bytes()

    result = subprocess.run(
        [str(SERVER), "backup", str(target)],
        env={"PATH": "/usr/bin:/bin", "DATABASE_PATH": str(db_path), "DATABASE_URL": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert str(target) in line and "full" in line, line
    assert str(db_path) not in line, line
    assert list(tmpfs.path.iterdir()) == []
    assert db_path.read_bytes() == before


def test_a_restore_onto_a_full_disk_leaves_nothing_behind(tmpfs: Tmpfs, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    asyncio.run(database_of_ten_mib(copy))
    db_path = tmpfs.path / "interview.db"  # 8 MiB: too small to stage the copy in

    result = subprocess.run(
        [str(SERVER), "restore", str(copy)],
        env={"PATH": "/usr/bin:/bin", "DATABASE_PATH": str(db_path), "DATABASE_URL": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "full" in result.stderr.strip().splitlines()[-1], result.stderr
    assert list(tmpfs.path.iterdir()) == []
