"""Erasure: a participant with 50 sessions of 40 turns, erased from a store that holds
`background` other utterances (its search index is what SQLite's purge merges).

    python -m bench.erasure sqlite PATH|postgres DSN BACKGROUND REPETITIONS

Prints JSON: the medians of the whole erasure and, on SQLite, of its parts
(the transaction; the index merge and the log checkpoint after it).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

from bench import turns
from bench.repository import new_session
from bench.stores import (
    CONCEPT_ID,
    CONCEPT_NAME,
    INSERT_SESSION,
    INSERT_UTTERANCE,
    METHODOLOGY,
)
from src.persistence.database import init_database
from src.persistence.postgres import init_postgres
from src.persistence.repositories.core import RepositoryCore
from src.persistence.repositories.postgres_session_repo import PostgresSessionRepository
from src.persistence.repositories.session_repo import SessionRepository, to_text

SESSIONS, TURNS = 50, 40
_TURNS_PER_BACKGROUND_SESSION = 40
_CHUNK = 20_000
_SESSION_COLUMNS = ["id", "methodology", "concept_id", "concept_name", "status"]
_SESSION_COLUMNS += ["study_id", "created_at", "updated_at"]
_UTTERANCE_COLUMNS = ["session_id", "turn_number", "speaker", "text", "created_at"]


def background_text(n: int) -> str:
    """The text of the background's utterance `n`, as erasure measures it."""
    return f"utterance {n} about coffee, tea number {n % 997} and home {n % 31}"


def _background(
    count: int, text: Callable[[int], str], studies: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Sessions and `count` utterances of other participants (two a turn); the sessions
    spread over `studies` studies (`study-0`...) in turn, or none for 0."""
    now = datetime.now(UTC)
    sessions: list[tuple[Any, ...]] = []
    utterances: list[tuple[Any, ...]] = []
    per_session = 2 * _TURNS_PER_BACKGROUND_SESSION
    for first in range(0, count, per_session):
        session_id = str(uuid.uuid4())
        study_id = f"study-{len(sessions) % studies}" if studies else None
        sessions.append(
            (session_id, METHODOLOGY, CONCEPT_ID, CONCEPT_NAME, "active", study_id, now, now)
        )
        for n in range(first, min(first + per_session, count)):
            speaker = "interviewer" if n % 2 == 0 else "respondent"
            utterances.append((session_id, 1 + (n - first) // 2, speaker, text(n), now))
    return sessions, utterances


def build_sqlite(
    path: Path, count: int, *, text: Callable[[int], str] = background_text, studies: int = 0
) -> None:
    """A SQLite store of `count` background utterances, written in bulk in one transaction
    through the schema's own triggers, which fill the search index as any write does."""
    asyncio.run(init_database(path))
    sessions, utterances = _background(count, text, studies)
    connection = sqlite3.connect(path, isolation_level=None)
    stamp = [(*row[:6], to_text(row[6]), to_text(row[7])) for row in sessions]
    try:
        connection.execute("BEGIN")
        connection.executemany(INSERT_SESSION, stamp)
        for start in range(0, len(utterances), _CHUNK):
            connection.executemany(
                INSERT_UTTERANCE,
                [(*row[:4], to_text(row[4])) for row in utterances[start : start + _CHUNK]],
            )
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


async def build_postgres(
    dsn: str, count: int, *, text: Callable[[int], str] = background_text, studies: int = 0
) -> None:
    """A PostgreSQL store of `count` background utterances, loaded with COPY: the search
    vector is a generated column and its GIN index is kept up by the insert, as any write."""
    await init_postgres(dsn)
    sessions, utterances = _background(count, text, studies)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "sessions", records=sessions, columns=_SESSION_COLUMNS
        )
        await connection.copy_records_to_table(
            "utterances", records=utterances, columns=_UTTERANCE_COLUMNS
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def _record_participant(repository: RepositoryCore, participant_id: str) -> None:
    async def interview() -> None:
        session = await repository.create(
            new_session().model_copy(update={"participant_id": participant_id})
        )
        for number in range(1, TURNS + 1):
            await repository.record_turn(
                session.id,
                turns.utterances(number),
                state_patch=turns.state_patch(number),
                record=turns.RECORD,
            )

    await asyncio.gather(*(interview() for _ in range(SESSIONS)))


async def measure(kind: str, store: str, repetitions: int) -> dict[str, Any]:
    repository: RepositoryCore = (
        SessionRepository(store) if kind == "sqlite" else PostgresSessionRepository(store)
    )
    runs: dict[str, list[float]] = {}
    async with repository:
        for _ in range(repetitions):
            participant_id = f"bench-{uuid.uuid4()}"
            await _record_participant(repository, participant_id)
            began = time.perf_counter()
            if isinstance(repository, SessionRepository):
                erased = await RepositoryCore.erase_participant(repository, participant_id)
                runs.setdefault("transaction_s", []).append(time.perf_counter() - began)
                purge_began = time.perf_counter()
                await repository._sqlite.purge_erased()
                runs.setdefault("purge_s", []).append(time.perf_counter() - purge_began)
            else:
                erased = await repository.erase_participant(participant_id)
            runs.setdefault("total_s", []).append(time.perf_counter() - began)
            assert (erased.sessions, erased.utterances) == (SESSIONS, SESSIONS * TURNS * 2)
    return {name: statistics.median(values) for name, values in runs.items()}


def main() -> None:
    kind, store, background, repetitions = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    if kind == "sqlite":
        build_sqlite(Path(store), background)
    else:
        asyncio.run(build_postgres(store, background))
    result = uvloop.run(measure(kind, store, repetitions))
    print(json.dumps({"background_utterances": background, **result}))


if __name__ == "__main__":
    main()
