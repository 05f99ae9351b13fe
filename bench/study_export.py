"""A whole study's export (qdpx, csv, jsonl): its memory and speed, in a process of its own.

    python -m bench.study_export build DB_PATH SESSIONS
    python -m bench.study_export DB_PATH FORMAT

`build` records one interview through the repository (TURNS turns, each with
its two utterances, a record and a graph change whose nodes and edges cite
the answer, so that the qdpx project has codings), then copies its rows in
bulk into SESSIONS - 1 more sessions of the same study, each with a participant
of its own and one node label in three its own, so that the code book grows
with the study as free-text labels make it grow.

The export prints JSON: the process's peak RSS (VmHWM) before and after, the
time, and the bytes written, through `export_study_to`, the code behind
`interview-system export --study S` (and, through `export_study`, behind
`GET /studies/{id}/export`), to /dev/null.
"""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO, cast

from bench import turns
from bench.repository import new_session, peak_rss_mib
from src.core.config import Settings
from src.domain.models.graph import GraphChange
from src.domain.models.utterance import NewUtterance
from src.exporting import export_study_to
from src.persistence.repositories.factory import create_repository
from src.persistence.repositories.session_repo import SessionRepository
from src.study_exporting import StudyExportFormat
from tests.backends import SESSION_TABLES

ANSWER = "I suppose it is about feeling ready for the day, and for the people who count on me. "
STUDY_ID = "bench-study"
TURNS = 20
NODES_PER_TURN, EDGES_PER_TURN = 3, 2
_TEMPLATE = "bench-study-0"


def _said(turn: int) -> list[NewUtterance]:
    return [
        NewUtterance(turn_number=turn, speaker="interviewer", text=f"And why is that? ({turn})"),
        NewUtterance(turn_number=turn, speaker="respondent", text=ANSWER * 2),
    ]


def _change(turn: int) -> GraphChange:
    """Nodes citing parts of the turn's answer, and edges between them."""
    nodes = []
    for index in range(NODES_PER_TURN):
        start = 10 * index + turn % 7
        nodes.append(
            {
                "id": f"n{turn}-{index}",
                "type": ("attribute", "consequence", "value")[index % 3],
                "label": f"label {turn % 10} {index}",
                "confidence": 0.8,
                "provenance": [
                    {
                        "turn_number": turn,
                        "speaker": "respondent",
                        "start": start,
                        "end": start + 25,
                    }
                ],
            }
        )
    edges = [
        {
            "id": f"e{turn}-{index}",
            "source": f"n{turn}-{index}",
            "target": f"n{turn}-{index + 1}",
            "type": "leads_to",
            "provenance": [{"turn_number": turn, "speaker": "respondent", "start": 0, "end": 12}],
        }
        for index in range(EDGES_PER_TURN)
    ]
    return GraphChange.model_validate({"nodes": nodes, "edges": edges})


async def _record_template(path: Path) -> None:
    async with SessionRepository(str(path)) as repository:
        session = new_session().model_copy(
            update={
                "id": _TEMPLATE,
                "study_id": STUDY_ID,
                "participant_id": "participant-0",
                "labels": {"site": "north", "wave": "1"},
            }
        )
        await repository.create(session)
        for turn in range(1, TURNS + 1):
            await repository.record_turn(
                session.id,
                _said(turn),
                state_patch=turns.state_patch(turn),
                record=turns.RECORD,
                graph=_change(turn),
            )


def build(path: Path, sessions: int) -> None:
    """A store holding one study of `sessions` sessions (see the module's docstring)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    asyncio.run(_record_template(path))
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        copies = []
        # Parents first, so that each row finds what it refers to; events are not exported.
        for table in reversed(SESSION_TABLES):
            columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            values = {
                "id": ":id",
                "session_id": ":id",
                "participant_id": ":participant",
                # One label in three the session's own.
                "label": "CASE WHEN node_id LIKE '%-0' THEN label || ' ' || :id ELSE label END",
            }
            key = "id" if table == "sessions" else "session_id"
            copies.append(
                f"INSERT INTO {table} ({', '.join(columns)})"  # noqa: S608
                f" SELECT {', '.join(values.get(c, c) for c in columns)}"
                f" FROM {table} WHERE {key} = :template"
            )
        connection.execute("BEGIN")
        for number in range(1, sessions):
            names = {
                "id": f"bench-study-{number}",
                "participant": f"participant-{number}",
                "template": _TEMPLATE,
            }
            for copy in copies:
                connection.execute(copy, names)
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


class _Counted(io.RawIOBase):
    """A file that counts what is written to it and passes it on."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.written += len(data)
        return self.out.write(data)


async def measure(db_path: str, export_format: StudyExportFormat) -> dict[str, Any]:
    # Opened as `interview-system export` opens it.
    async with create_repository(Settings(database_path=db_path), one_pass=True) as repository:
        await repository.get(_TEMPLATE)
        before = peak_rss_mib()
        with Path("/dev/null").open("wb") as null:  # noqa: ASYNC230
            out = _Counted(null)
            begin = time.perf_counter()
            await export_study_to(repository, STUDY_ID, export_format, cast(BinaryIO, out))
            elapsed = time.perf_counter() - begin
    return {
        "rss_before_mib": before,
        "peak_rss_mib": peak_rss_mib(),
        "elapsed_s": elapsed,
        "mib_written": out.written / 2**20,
    }


def main() -> None:
    if sys.argv[1] == "build":
        started = time.perf_counter()
        build(Path(sys.argv[2]), int(sys.argv[3]))
        print(json.dumps({"build_s": time.perf_counter() - started}))
        return
    db_path, export_format = sys.argv[1:3]
    print(json.dumps(asyncio.run(measure(db_path, StudyExportFormat(export_format)))))


if __name__ == "__main__":
    main()
