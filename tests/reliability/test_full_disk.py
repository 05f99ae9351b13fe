"""The database's file system runs out of space: writes get 507, nothing stored is harmed."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import httpx
import pytest

from src.api.errors import PROBLEM_MEDIA_TYPE
from tests.reliability.conftest import Tmpfs
from tests.servers import running_server

pytestmark = pytest.mark.sqlite

MAX_WRITES = 5_000
NEW_SESSION = {"methodology": "mec", "concept_id": "c", "concept_name": "Coffee " * 28}


def fill(directory: Path) -> Path:
    """Write a file until the file system has no space left; return it."""
    filler = directory / "filler"
    chunk = b"\xff" * 65536
    with filler.open("wb", buffering=0) as file:
        while True:
            try:
                file.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                chunk = chunk[: len(chunk) // 2]
                if not chunk:
                    return filler


def assert_full(response: httpx.Response) -> None:
    assert response.status_code == 507, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["retry-after"] == "1"
    problem = response.json()
    assert problem["code"] == "storage_full"
    assert problem["detail"] == "The disk holding the database is full; no change was stored."


async def test_writes_get_507_when_the_disk_is_full_and_work_again_with_space(
    tmpfs: Tmpfs,
) -> None:
    db_path = tmpfs.path / "full.db"
    env = {"DATABASE_PATH": str(db_path), "DATABASE_URL": ""}
    with running_server(tmpfs.path.parent, env) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            stored = [(await client.post("/sessions", json=NEW_SESSION)).json() for _ in range(20)]
            filler = fill(tmpfs.path)

            # Writes may still land in space SQLite already holds; keep
            # writing until the file system refuses one.
            for _ in range(MAX_WRITES):
                response = await client.post("/sessions", json=NEW_SESSION)
                if response.status_code != 201:
                    break
                stored.append(response.json())
            assert_full(response)
            target = stored[0]
            state = {**target["state"], "turn_count": 1}
            update = await client.put(f"/sessions/{target['id']}/state", json=state)
            if update.status_code == 200:
                target = stored[0] = update.json()
            else:
                assert_full(update)

            for session in stored:
                assert (await client.get(f"/sessions/{session['id']}")).json() == session

            filler.unlink()
            created = await client.post("/sessions", json=NEW_SESSION)
            assert created.status_code == 201, created.text
            stored.append(created.json())
            state = {**target["state"], "turn_count": 2}
            updated = await client.put(f"/sessions/{target['id']}/state", json=state)
            assert updated.status_code == 200, updated.text
            stored[0] = updated.json()

    connection = sqlite3.connect(db_path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        versions = dict(connection.execute("SELECT id, version FROM sessions").fetchall())
    finally:
        connection.close()
    assert versions == {session["id"]: session["version"] for session in stored}
