"""JSON exports of format 1 (before turn records) and 2 both read back."""

from __future__ import annotations

import json

import pytest

from src.domain.export import parse_json_export, read_json_export

VERSION_1 = {
    "format": "interview-session-export",
    "format_version": 1,
    "session": {
        "id": "old",
        "methodology": "mec",
        "concept_id": "c",
        "concept_name": "Coffee",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-02T00:00:00Z",
        "state": {
            "methodology": "mec",
            "concept_id": "c",
            "concept_name": "Coffee",
            "turn_count": 1,
            "coverage_score": 0.5,
            "last_strategy": "ladder",
        },
        "status": "completed",
        "version": 3,
        "ended_at": "2026-01-02T00:00:00Z",
    },
    "utterances": [
        {
            "turn_number": 1,
            "speaker": "respondent",
            "text": "hi",
            "metadata": None,
            "created_at": "2026-01-01T10:00:00Z",
        }
    ],
}


def test_a_version_1_export_reads_with_the_new_fields_defaulted() -> None:
    session, utterances = parse_json_export(json.dumps(VERSION_1))
    assert (session.id, session.version, session.state.turn_count) == ("old", 3, 1)
    assert (session.labels, session.config, session.state.data, session.study_id) == (
        {},
        {},
        {},
        None,
    )
    assert [u.text for u in utterances] == ["hi"]
    assert read_json_export(json.dumps(VERSION_1)).records == []


def test_a_version_2_export_with_records_reads_back() -> None:
    document = {
        **VERSION_1,
        "format_version": 2,
        "records": [{"turn_number": 1, "strategy": "ladder", "scores": {"depth": 0.5}}],
    }
    exported = read_json_export(json.dumps(document))
    assert [(r.turn_number, r.strategy, r.scores) for r in exported.records] == [
        (1, "ladder", {"depth": 0.5})
    ]


@pytest.mark.parametrize("version", [0, 3, "2", None])
def test_an_unknown_format_version_is_refused(version: object) -> None:
    with pytest.raises(ValueError, match="format version"):
        parse_json_export(json.dumps({**VERSION_1, "format_version": version}))


async def test_markdown_escapes_what_the_client_wrote_in_the_new_fields() -> None:
    from collections.abc import AsyncIterator

    from src.domain.export import ExportFormat, export_record
    from src.domain.models.turn import NumberedTurnRecord
    from src.domain.models.utterance import Utterance
    from tests.builders import new_session

    session = new_session(
        study_id="study-1",
        participant_id="p-1",
        labels={"note": "first\n# not a heading\n- not a list"},
    )
    said = Utterance(
        session_id=session.id,
        turn_number=1,
        speaker="respondent",
        text="hello",
        created_at=session.created_at,
    )
    record = NumberedTurnRecord(turn_number=1, strategy="probe\n> not a quote")

    async def one(item: object) -> AsyncIterator[object]:
        yield item

    pieces = [
        piece
        async for piece in export_record(
            session,
            one(said),  # type: ignore[arg-type]
            ExportFormat.MARKDOWN,
            one(record),  # type: ignore[arg-type]
        )
    ]
    markdown = "".join(pieces)
    lines = markdown.splitlines()
    assert not any(line.startswith(("# not", "- not", "> not")) for line in lines)
    assert "\\# not a heading" in markdown
    assert "\\> not a quote" in markdown
    assert "- Strategy: probe" in markdown
