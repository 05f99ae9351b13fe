"""/health says 503 once the -wal file is deleted, as every write then is, until a restart.

The server refuses every write from then on (nothing may be committed into
a log no other process will read), so a health check that answered 200
would keep a server that can store nothing in service.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from src.core.config import Settings
from src.core.errors import StorageUnavailableError
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import NEW_SESSION_BODY, new_session
from tests.http import serve_in_process

pytestmark = pytest.mark.sqlite


async def test_ping_fails_once_the_wal_file_is_deleted(
    sqlite_repo: SessionRepository, db_path: Path
) -> None:
    await sqlite_repo.create(new_session())
    await sqlite_repo.ping()
    Path(f"{db_path}-wal").unlink()

    with pytest.raises(StorageUnavailableError, match="-wal"):
        await sqlite_repo.ping()


async def test_health_is_503_while_writes_are_refused(db_path: Path) -> None:
    async with serve_in_process(Settings(database_path=db_path, database_url=None)) as client:
        assert (await client.post("/sessions", json=NEW_SESSION_BODY)).status_code == 201
        Path(f"{db_path}-wal").unlink()

        write = await client.post("/sessions", json=NEW_SESSION_BODY)
        health = await client.get("/health")

    assert write.status_code == 503
    assert health.status_code == 503, health.text
    assert "-wal" in health.json()["detail"]
    assert health.headers["retry-after"]
