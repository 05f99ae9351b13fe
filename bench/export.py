"""The streaming export's memory and speed: one session of N utterances, in a process of its own.

Run as `python -m bench.export DB_PATH SESSION_ID FORMAT`; prints JSON. The
store is built by `build_transcript_store`, in bulk, not through the repository.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from bench.repository import peak_rss_mib
from src.domain.export import ExportFormat
from src.exporting import export_one
from src.persistence.database import init_database
from src.persistence.repositories.session_repo import SessionRepository

__all__ = ["build_transcript_store"]

_TEXT = "I suppose it is about feeling ready for the day, and for the people who count on me. "


def build_transcript_store(path: Path, utterances: int) -> str:
    """A SQLite store holding one session with `utterances` utterances; returns its id."""
    asyncio.run(init_database(path))
    session_id = f"export-{utterances}"
    stamp = "2026-01-01T00:00:00.000000Z"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN")
        connection.execute(
            "INSERT INTO sessions (id, methodology, concept_id, concept_name, status, created_at,"
            " updated_at) VALUES (?, 'mec', 'coffee', 'Coffee', 'completed', ?, ?)",
            (session_id, stamp, stamp),
        )
        connection.executemany(
            "INSERT INTO utterances (session_id, turn_number, speaker, text, metadata, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                (
                    session_id,
                    n // 2,
                    ("interviewer", "respondent")[n % 2],
                    _TEXT * 2,
                    '{"strategy":"ladder_up"}',
                    stamp,
                )
                for n in range(utterances)
            ),
        )
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return session_id


async def measure(db_path: str, session_id: str, export_format: ExportFormat) -> dict[str, Any]:
    async with SessionRepository(db_path) as repository:
        await repository.get(session_id)
        before = peak_rss_mib()
        begin = time.perf_counter()
        with Path("/dev/null").open("w", encoding="utf-8") as out:  # noqa: ASYNC230
            await export_one(repository, session_id, export_format, out)
        elapsed = time.perf_counter() - begin
    return {"rss_before_mib": before, "peak_rss_mib": peak_rss_mib(), "elapsed_s": elapsed}


def main() -> None:
    db_path, session_id, export_format = sys.argv[1:4]
    print(json.dumps(asyncio.run(measure(db_path, session_id, ExportFormat(export_format)))))


if __name__ == "__main__":
    main()
