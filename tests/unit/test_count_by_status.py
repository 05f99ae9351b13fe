"""The repository counts sessions by status on each backend, a missing status as 0."""

from __future__ import annotations

from src.domain.models.session import SessionStatus
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.builders import new_session


async def test_sessions_are_counted_in_each_status(repo: SessionRepositoryProtocol) -> None:
    empty = await repo.count_by_status()
    for number, status in enumerate(["active", "active", "paused", "completed"]):
        await repo.create(new_session(id=f"s-{number}", status=SessionStatus(status)))

    counted = await repo.count_by_status()

    assert empty == {"active": 0, "paused": 0, "completed": 0, "abandoned": 0}
    assert counted == {"active": 2, "paused": 1, "completed": 1, "abandoned": 0}
