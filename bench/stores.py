"""Stores of a given size, loaded by a bulk path (not through the repository)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from bench.speech import spoken
from src.persistence.database import init_database
from src.persistence.postgres import init_postgres
from src.persistence.repositories.session_repo import to_text

METHODOLOGY, CONCEPT_ID, CONCEPT_NAME = "mec", "concept-bench", "Bench concept"
SAMPLE_SIZE = 5000
STUDIES = 50
"""The sessions of the bench's stores are spread over this many studies (`study-0`...)."""
UTTERANCES_PER_SESSION = 10
"""The utterances each session of the repository's SQLite stores holds: 10,000,000 at
1,000,000 sessions."""
_CHUNK = 50_000
_SPEAKERS = ("interviewer", "respondent")
INSERT_SESSION = (
    "INSERT INTO sessions (id, methodology, concept_id, concept_name, status, study_id,"
    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_UTTERANCE = (
    "INSERT INTO utterances (session_id, turn_number, speaker, text, created_at)"
    " VALUES (?, ?, ?, ?, ?)"
)


def _rows(count: int) -> Iterator[tuple[str, datetime]]:
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=30) / max(count, 1)
    for n in range(count):
        yield str(uuid.uuid4()), start + step * n


def _sample(ids: list[str]) -> list[str]:
    stride = max(len(ids) // SAMPLE_SIZE, 1)
    return ids[::stride][:SAMPLE_SIZE]


def build_sqlite_store(path: Path, count: int, utterances_per_session: int = 0) -> list[str]:
    """A SQLite store of `count` active sessions, spread over `STUDIES` studies, each
    with `utterances_per_session` utterances of made-up speech (two a turn) indexed for
    search by the schema's own triggers; returns a sample of the sessions' ids."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    asyncio.run(init_database(path))
    connection = sqlite3.connect(path, isolation_level=None)
    ids: list[str] = []
    text = spoken()
    sessions: list[tuple[str, ...]] = []
    utterances: list[tuple[object, ...]] = []

    def flush() -> None:
        connection.execute("BEGIN")
        connection.executemany(INSERT_SESSION, sessions)
        connection.executemany(INSERT_UTTERANCE, utterances)
        connection.execute("COMMIT")
        sessions.clear()
        utterances.clear()

    try:
        for n, (session_id, created_at) in enumerate(_rows(count)):
            ids.append(session_id)
            stamp = to_text(created_at)
            study_id = f"study-{n % STUDIES}"
            sessions.append(
                (
                    session_id,
                    METHODOLOGY,
                    CONCEPT_ID,
                    CONCEPT_NAME,
                    "active",
                    study_id,
                    stamp,
                    stamp,
                )
            )
            utterances += (
                (session_id, 1 + k // 2, _SPEAKERS[k % 2], text(k), stamp)
                for k in range(utterances_per_session)
            )
            if len(sessions) + len(utterances) >= _CHUNK:
                flush()
        flush()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return _sample(ids)


async def build_postgres_store(dsn: str, count: int) -> list[str]:
    """A PostgreSQL store of `count` active sessions (COPY); returns a sample of their ids."""
    await init_postgres(dsn)
    connection = await asyncpg.connect(dsn)
    ids: list[str] = []
    try:
        await connection.execute("TRUNCATE sessions CASCADE")
        records = []
        for session_id, created_at in _rows(count):
            ids.append(session_id)
            records.append(
                (
                    session_id,
                    METHODOLOGY,
                    CONCEPT_ID,
                    CONCEPT_NAME,
                    "active",
                    created_at,
                    created_at,
                )
            )
        await connection.copy_records_to_table(
            "sessions",
            records=records,
            columns=[
                "id",
                "methodology",
                "concept_id",
                "concept_name",
                "status",
                "created_at",
                "updated_at",
            ],
        )
        await connection.execute("ANALYZE sessions")
    finally:
        await connection.close()
    return _sample(ids)


def file_size_mib(path: Path) -> float:
    return os.path.getsize(path) / 2**20
