"""`restore` puts the copy in place with the mode and owner of the database it replaces.

The checked copy is staged in a temporary file (mode 0600, owned by whoever
runs `restore`) and renamed over the database: run as root for a server
that runs as its own user, the server could then no longer open its
database, and a group that could read it no longer could.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from pathlib import Path

import pytest

from src.persistence.database import init_database
from tests.servers import SERVER

pytestmark = pytest.mark.sqlite

NOBODY = 65534


def run(*args: str, db_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SERVER), *args],
        env={"PATH": "/usr/bin:/bin", "DATABASE_PATH": str(db_path), "DATABASE_URL": ""},
        cwd=db_path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_restored_database_keeps_the_mode_of_the_one_it_replaces(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    asyncio.run(init_database(db_path))
    copy = tmp_path / "copy.db"
    assert run("backup", str(copy), db_path=db_path).returncode == 0
    os.chmod(db_path, 0o640)

    result = run("restore", str(copy), db_path=db_path)

    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o640


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may give a file to another user")
def test_the_restored_database_keeps_the_owner_of_the_one_it_replaces(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    asyncio.run(init_database(db_path))
    copy = tmp_path / "copy.db"
    assert run("backup", str(copy), db_path=db_path).returncode == 0
    os.chown(db_path, NOBODY, NOBODY)

    result = run("restore", str(copy), db_path=db_path)

    assert result.returncode == 0, result.stderr
    owner = db_path.stat()
    assert (owner.st_uid, owner.st_gid) == (NOBODY, NOBODY)
