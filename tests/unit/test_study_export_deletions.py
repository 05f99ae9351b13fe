"""A study export while its sessions are deleted: each session is in it whole or not at all."""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from src.domain.export import read_json_export
from src.domain.models.graph import GraphChange
from src.domain.models.utterance import NewUtterance
from src.persistence.repositories import transcript
from src.persistence.repositories.protocol import UtterancePage
from src.persistence.repositories.session_repo import SessionRepository
from src.study_exporting import StudyExportFormat, export_study
from tests.builders import new_session, state_of
from tests.qdpx_reader import read_qdpx

pytestmark = pytest.mark.sqlite

TURNS = 3
UTTERANCES = 2 * TURNS
QUOTE = "keeps me awake"


class DeletingRepository(SessionRepository):
    """The store, with `victim` deleted as another client would: right after a page of
    `trigger`'s utterances is read."""

    victim = ""
    trigger = ""

    async def list_utterances(self, session_id: str, **options: Any) -> UtterancePage:
        page = await super().list_utterances(session_id, **options)
        if session_id == self.trigger and self.victim:
            await self.delete(self.victim)
            self.victim = ""
        return page


async def study_of(repo: SessionRepository, study: str, count: int) -> list[str]:
    ids = []
    for number in range(count):
        session = await repo.create(new_session(study_id=study, participant_id=f"p{number}"))
        for turn in range(1, TURNS + 1):
            graph = GraphChange.model_validate(
                {
                    "nodes": [
                        {
                            "id": f"n{turn}",
                            "type": "consequence",
                            "label": f"Awake {turn}",
                            "provenance": [
                                {
                                    "turn_number": turn,
                                    "speaker": "respondent",
                                    "start": 7,
                                    "end": 21,
                                }
                            ],
                        }
                    ]
                }
            )
            said = [
                NewUtterance(turn_number=turn, speaker="interviewer", text="Why?"),
                NewUtterance(turn_number=turn, speaker="respondent", text=f"Coffee {QUOTE}"),
            ]
            current = await repo.get(session.id)
            assert current is not None
            await repo.record_turn(
                session.id, said, state_of(current, turn_count=turn), graph=graph
            )
        ids.append(session.id)
    return ids


def utterance_counts(content: bytes, export_format: StudyExportFormat) -> Counter[str]:
    """How many utterances of each session the export holds; checks that it is whole."""
    if export_format is StudyExportFormat.JSONL:
        lines = content.decode().splitlines()
        exports = [read_json_export(line) for line in lines]
        return Counter({export.session.id: len(export.utterances) for export in exports})
    if export_format is StudyExportFormat.CSV:
        rows = csv.DictReader(io.StringIO(content.decode(), newline=""))
        return Counter(row["session_id"] for row in rows)
    project = read_qdpx(content)
    listed = {f"Sources/{path}" for path in project["paths"]}
    assert {name for name in project["files"] if name.startswith("Sources/")} == listed
    case_refs = {ref for refs in project["cases"].values() for ref in refs}
    assert case_refs <= set(project["guids"])
    counts: Counter[str] = Counter()
    for session_id, source in project["sources"].items():
        lines = source["text"].splitlines()
        counts[session_id] = sum(
            line.startswith(("Interviewer: ", "Respondent: ")) for line in lines
        )
        assert [quote for _code, quote in source["codings"]] == [QUOTE] * TURNS
    return counts


@pytest.mark.parametrize("export_format", list(StudyExportFormat))
@pytest.mark.parametrize("when", ["while it is read", "after it is read"])
async def test_a_session_deleted_during_a_study_export_is_in_it_whole_or_not_at_all(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    export_format: StudyExportFormat,
    when: str,
) -> None:
    monkeypatch.setattr(transcript, "EXPORT_PAGE_SIZE", 2)
    study = f"study-{uuid.uuid4()}"
    async with DeletingRepository(str(tmp_path / "store.db")) as repo:
        first, victim, last = await study_of(repo, study, 3)
        repo.victim = victim
        repo.trigger = victim if when == "while it is read" else last
        content = b"".join(
            [
                chunk
                async for chunk in export_study(repo, study, [first, victim, last], export_format)
            ]
        )
        assert await repo.get(victim) is None

    counts = utterance_counts(content, export_format)
    assert counts[first] == counts[last] == UTTERANCES
    if when == "while it is read":
        assert victim not in counts
    else:
        assert counts[victim] in (0, UTTERANCES)
        assert set(counts) <= {first, victim, last}
