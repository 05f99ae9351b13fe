"""On SQLite a search runs on a connection of its own: a slow one holds up no other read."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from src.domain.models.session import utc_now
from src.persistence.repositories.session_repo import SessionRepository, to_text
from tests.builders import new_session

pytestmark = pytest.mark.sqlite

_MATCHES = 100_000


async def test_a_slow_search_holds_up_no_other_read(sqlite_repo: SessionRepository) -> None:
    # A word in every utterance: a search weighs each match, a few µs apiece.
    session = await sqlite_repo.create(new_session(study_id="study-slow"))
    stamp = to_text(utc_now())
    with sqlite3.connect(sqlite_repo.db_path) as bulk:
        bulk.executemany(
            "INSERT INTO utterances (session_id, turn_number, speaker, text, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                (session.id, n // 2 + 1, ("interviewer", "respondent")[n % 2], f"coffee {n}", stamp)
                for n in range(_MATCHES)
            ),
        )

    searching = asyncio.ensure_future(sqlite_repo.search("coffee", limit=10))
    await asyncio.sleep(0.05)
    assert not searching.done(), "the search should take long enough to overlap other reads"
    summary = await sqlite_repo.study_summary("study-slow")
    graph = await sqlite_repo.get_graph(session.id)
    counts = await sqlite_repo.count_by_status()
    # Each answered while the search still weighed its matches.
    assert not searching.done()
    assert sum(summary.sessions.values()) == 1
    assert graph.nodes == [] and graph.edges == []
    assert sum(counts.values()) == 1
    page = await searching
    assert len(page.items) == 10
