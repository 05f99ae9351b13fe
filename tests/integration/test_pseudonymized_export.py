"""Pseudonymised exports over HTTP and to files, on every backend; refused without a key."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from src.core.config import Settings, describe_settings_error
from src.domain.export import ExportFormat, parse_json_export
from src.domain.models.session import SessionStatus
from src.domain.models.utterance import NewUtterance, Speaker
from src.domain.redaction import Pseudonymizer
from src.exporting import export_many, export_one
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.backends import PostgresBackend, SqliteBackend
from tests.builders import new_session
from tests.http import serve_in_process
from tests.integration.test_sessions_api import assert_problem, create

KEY = "a-research-team-secret-of-32-chars"
SAID = "Reach me at jane.doe+study@example.com or +44 20 7946 0958; see www.example.org/me."
REDACTED = "Reach me at [email] or [phone]; see [url]."
METADATA = {"notes": ["call 020 7946 0958", {"site": "https://example.com/x"}], "n": 3}
REDACTED_METADATA = {"notes": ["call [phone]", {"site": "[url]"}], "n": 3}


@pytest.fixture
async def keyed_client(
    backend: SqliteBackend | PostgresBackend,
) -> Any:
    settings = backend.settings().model_copy(update={"pseudonym_key": SecretStr(KEY)})
    async with serve_in_process(settings) as http:
        yield http


async def record(client: httpx.AsyncClient) -> dict[str, Any]:
    session = await create(client)
    response = await client.post(
        f"/sessions/{session['id']}/utterances",
        json={"turn_number": 1, "speaker": "respondent", "text": SAID, "metadata": METADATA},
    )
    assert response.status_code == 201, response.text
    return session


async def test_a_pseudonymized_json_export_redacts_text_and_metadata(
    keyed_client: httpx.AsyncClient,
) -> None:
    session = await record(keyed_client)

    response = await keyed_client.get(
        f"/sessions/{session['id']}/export", params={"pseudonymize": "true"}
    )

    assert response.status_code == 200, response.text
    exported, utterances = parse_json_export(response.text)
    assert exported.id == session["id"]
    assert [(u.text, u.metadata) for u in utterances] == [(REDACTED, REDACTED_METADATA)]
    assert "example" not in response.text and "7946" not in response.text


@pytest.mark.parametrize("export_format", ["markdown", "csv"])
async def test_every_format_is_pseudonymized(
    keyed_client: httpx.AsyncClient, export_format: str
) -> None:
    session = await record(keyed_client)

    response = await keyed_client.get(
        f"/sessions/{session['id']}/export",
        params={"format": export_format, "pseudonymize": "true"},
    )

    assert response.status_code == 200, response.text
    assert "example" not in response.text and "7946" not in response.text
    if export_format == "csv":
        (row,) = csv.DictReader(io.StringIO(response.text))
        assert row["text"] == REDACTED
        assert json.loads(row["metadata"]) == REDACTED_METADATA
    elif export_format == "markdown":  # brackets escaped, so they stay text
        assert REDACTED.replace("[", "\\[").replace("]", "\\]") in response.text
    else:
        assert REDACTED in response.text


async def test_without_pseudonymize_the_record_is_exported_as_said(
    keyed_client: httpx.AsyncClient,
) -> None:
    session = await record(keyed_client)

    response = await keyed_client.get(f"/sessions/{session['id']}/export")

    _, utterances = parse_json_export(response.text)
    assert [(u.text, u.metadata) for u in utterances] == [(SAID, METADATA)]


async def test_without_a_key_a_pseudonymized_export_is_a_409_saying_why(
    client: httpx.AsyncClient,
) -> None:
    session = await record(client)

    response = await client.get(
        f"/sessions/{session['id']}/export", params={"pseudonymize": "true"}
    )

    body = assert_problem(response, 409)
    assert body["code"] == "pseudonym_key_missing"
    assert "PSEUDONYM_KEY" in body["detail"]
    assert body["errors"][0]["field"] == "pseudonymize"
    assert SAID not in response.text


async def test_an_unknown_session_is_a_404_with_or_without_pseudonyms(
    keyed_client: httpx.AsyncClient,
) -> None:
    response = await keyed_client.get("/sessions/nope/export", params={"pseudonymize": "true"})

    assert_problem(response, 404)


async def test_files_are_pseudonymized_one_by_one_and_by_status(
    repo: SessionRepositoryProtocol, tmp_path: Path
) -> None:
    session = await repo.create(new_session(status=SessionStatus.ACTIVE))
    await repo.append_utterance(
        session.id,
        NewUtterance(turn_number=1, speaker=Speaker.RESPONDENT, text=SAID, metadata=METADATA),
    )
    pseudonymizer = Pseudonymizer(KEY.encode())

    one = io.StringIO()
    await export_one(repo, session.id, ExportFormat.JSON, one, pseudonymizer=pseudonymizer)
    (tmp_path / "out").mkdir()
    (written,) = await export_many(
        repo, [session.id], ExportFormat.JSON, tmp_path / "out", pseudonymizer=pseudonymizer
    )

    for text in (one.getvalue(), written.read_text(encoding="utf-8")):
        _, utterances = parse_json_export(text)
        assert [(u.text, u.metadata) for u in utterances] == [(REDACTED, REDACTED_METADATA)]


def test_a_short_pseudonym_key_stops_the_program_naming_the_variable() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(pseudonym_key="short")

    assert "PSEUDONYM_KEY" in describe_settings_error(caught.value)


def test_an_empty_pseudonym_key_is_unset() -> None:
    assert Settings(pseudonym_key="").pseudonym_key is None
