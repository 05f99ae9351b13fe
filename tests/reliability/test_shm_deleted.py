"""The -shm file deleted under a running server: nothing more is acknowledged, nothing is lost.

The -shm file is the index every process on a WAL database shares. A server
whose -shm was deleted goes on with its own copy, while the next process to
open the database (a second server, a `sweep` from cron) makes a new one:
two processes then write one log with two indexes, and acknowledged writes
are lost and the file's indexes damaged.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx
import pytest

from src.core.errors import StorageUnavailableError
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import NEW_SESSION_BODY, new_session
from tests.servers import running_server

pytestmark = pytest.mark.sqlite


def stored_ids(db_path: Path) -> set[str]:
    connection = sqlite3.connect(db_path)
    try:
        return {row[0] for row in connection.execute("SELECT id FROM sessions")}
    finally:
        connection.close()


def integrity(db_path: Path) -> str:
    connection = sqlite3.connect(db_path)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


async def test_reads_and_writes_are_refused_once_the_shm_file_is_deleted(
    sqlite_repo: SessionRepository, db_path: Path
) -> None:
    kept = await sqlite_repo.create(new_session())
    Path(f"{db_path}-shm").unlink()

    with pytest.raises(StorageUnavailableError, match="-shm"):
        await sqlite_repo.create(new_session())
    with pytest.raises(StorageUnavailableError, match="-shm"):
        await sqlite_repo.get(kept.id)
    with pytest.raises(StorageUnavailableError, match="-shm"):
        await sqlite_repo.ping()


def test_no_write_is_lost_when_another_process_opens_the_database_after(tmp_path: Path) -> None:
    db_path = tmp_path / "interview.db"
    env = {"DATABASE_PATH": str(db_path), "DATABASE_URL": ""}
    acknowledged: set[str] = set()
    refused = 0
    with running_server(tmp_path, env) as url, httpx.Client(base_url=url) as client:
        for _ in range(20):
            answer = client.post("/sessions", json=NEW_SESSION_BODY)
            assert answer.status_code == 201
            acknowledged.add(answer.json()["id"])
        Path(f"{db_path}-shm").unlink()

        async def elsewhere() -> set[str]:
            # Another process on the same file, as a second server would be.
            async with SessionRepository(db_path) as other:
                return {(await other.create(new_session())).id for _ in range(20)}

        acknowledged |= asyncio.run(elsewhere())
        for _ in range(20):
            answer = client.post("/sessions", json=NEW_SESSION_BODY)
            if answer.status_code == 201:
                acknowledged.add(answer.json()["id"])
            else:
                assert answer.status_code == 503, answer.text
                refused += 1
        health = client.get("/health").status_code

    assert integrity(db_path) == "ok"
    assert acknowledged <= stored_ids(db_path), "acknowledged writes were lost"
    assert refused == 20
    assert health == 503
