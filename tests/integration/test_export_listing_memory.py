"""Listing the sessions to export (a study's, or every one in a status) holds a page of
sessions at a time, not the whole listing: memory stays flat in the number of sessions."""

from __future__ import annotations

import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from src.domain.models.session import SessionState, SessionStatus
from src.exporting import session_ids_with_status
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.repositories.session_repo import SessionRepository
from src.study_exporting import study_session_ids
from tests.builders import new_session

pytestmark = pytest.mark.sqlite

STUDY = "study-listing-memory"
# A state of about 10 KiB as JSON, a hundred strings once read back.
DATA = {"notes": [f"{number:03} " + "x" * 96 for number in range(100)]}

Listing = Callable[[SessionRepositoryProtocol], Awaitable[list[str]]]


async def _peak_while_listing(db_path: Path, sessions: int, listing: Listing) -> int:
    """The peak of Python's allocations while `listing` lists a store of `sessions`."""
    async with SessionRepository(db_path, synchronous="normal") as repository:
        for _ in range(sessions):
            state = SessionState(
                methodology="mec", concept_id="concept-coffee", concept_name="Coffee", data=DATA
            )
            await repository.create(new_session(study_id=STUDY, state=state))
        tracemalloc.start()
        try:
            ids = await listing(repository)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert len(ids) == sessions
    return peak


@pytest.mark.parametrize(
    "listing",
    [
        lambda repository: study_session_ids(repository, STUDY),
        lambda repository: session_ids_with_status(repository, SessionStatus.ACTIVE),
    ],
    ids=["study", "status"],
)
async def test_three_times_the_sessions_hold_no_more_memory_while_listed(
    tmp_path: Path, listing: Listing
) -> None:
    # Both past two pages: while the next page is read, the last one is still held.
    few = await _peak_while_listing(tmp_path / "few.db", 120, listing)
    many = await _peak_while_listing(tmp_path / "many.db", 360, listing)
    assert many <= 1.3 * few, (few, many)
