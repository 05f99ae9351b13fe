"""Two repositories on one SQLite file: a write that reads before it writes is never
refused because the other committed in between."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session

pytestmark = pytest.mark.sqlite

PATCHES = 150


async def test_patches_from_two_repositories_on_one_file_all_land(db_path: Path) -> None:
    async with SessionRepository(db_path) as first, SessionRepository(db_path) as second:
        session = await first.create(new_session())

        async def patch_many(repository: SessionRepository, name: str) -> None:
            for number in range(PATCHES):
                await repository.patch_state(session.id, {"data": {name: number}})

        await asyncio.gather(patch_many(first, "first"), patch_many(second, "second"))

        stored = await first.get(session.id)
        assert stored is not None
        assert stored.version == 1 + 2 * PATCHES
        assert stored.state.data == {"first": PATCHES - 1, "second": PATCHES - 1}
