"""The -wal file stays bounded while reads keep a snapshot open at every moment."""

from __future__ import annotations

import asyncio
import os
import sqlite3

import pytest

from src.domain.models.session import utc_now
from src.persistence.repositories import session_repo
from src.persistence.repositories.session_repo import SessionRepository, to_text
from tests.builders import new_session, state_of

_LIMIT = 1024 * 1024


@pytest.mark.sqlite
async def test_back_to_back_searches_do_not_let_the_log_grow_without_bound(
    sqlite_repo: SessionRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_repo, "LOG_LIMIT_BYTES", _LIMIT)
    monkeypatch.setattr(session_repo, "LOG_CHECK_EVERY", 20)
    session = await sqlite_repo.create(new_session())
    stamp = to_text(utc_now())
    with sqlite3.connect(sqlite_repo.db_path) as bulk:
        bulk.executemany(
            "INSERT INTO utterances (session_id, turn_number, speaker, text, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            ((session.id, n + 1, "respondent", f"coffee {n}", stamp) for n in range(20_000)),
        )
    bulk.close()
    searching = True

    async def search() -> None:
        # Two at once on one connection: one of them always holds a snapshot.
        while searching:
            await sqlite_repo.search("coffee", limit=10)

    searchers = [asyncio.ensure_future(search()) for _ in range(2)]
    log = sqlite_repo.db_path + "-wal"
    largest = 0
    try:
        current = session
        for n in range(600):
            state = state_of(current, data={"notes": "x" * 16_384, "n": n})
            current = await sqlite_repo.update_state(session.id, state)
            largest = max(largest, os.stat(log).st_size)
    finally:
        searching = False
        await asyncio.gather(*searchers)

    # Each write adds some 30 KiB of pages to the log, 18 MiB in all; SQLite's own
    # checkpoints, when they can start the log over, keep it near 4 MiB.
    assert largest < 8 * _LIMIT
