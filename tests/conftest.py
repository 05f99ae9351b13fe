from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from src.persistence.repositories.session_repo import SessionRepository


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A database file that does not exist yet, in a folder of its own."""
    return tmp_path / "store" / "sessions.db"


@pytest.fixture
async def repo(db_path: Path) -> AsyncIterator[SessionRepository]:
    """A repository on a real SQLite file, closed in the loop that opened it."""
    async with SessionRepository(str(db_path)) as repository:
        yield repository
