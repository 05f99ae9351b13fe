"""`interview-system search` and `export --pseudonymize`, in process with click's CliRunner."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session
from tests.integration.test_cli_commands import invoke

pytestmark = pytest.mark.sqlite

SAID = "I drink café au lait; write to jane.doe+study@example.com"
KEY = "a-research-team-secret-of-32-chars"


@pytest.fixture
def stored_session(tmp_path: Path) -> tuple[Path, str]:
    db_path = tmp_path / "search.db"

    async def store() -> str:
        async with SessionRepository(db_path) as repo:
            session = await repo.create(new_session())
            await repo.append_utterance(
                session.id, NewUtterance(turn_number=1, speaker=Speaker.RESPONDENT, text=SAID)
            )
            return session.id

    return db_path, asyncio.run(store())


def test_search_prints_one_tab_separated_line_per_hit(stored_session: tuple[Path, str]) -> None:
    db_path, session_id = stored_session

    result = invoke("search", "cafe", "--speaker", "respondent", db_path=db_path)

    assert result.exit_code == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.split("\t")[:3] == [session_id, "1", "respondent"]
    assert "<mark>café</mark>" in line


def test_search_without_a_word_is_one_line_and_exit_1(stored_session: tuple[Path, str]) -> None:
    db_path, _ = stored_session

    result = invoke("search", '"*', db_path=db_path)

    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_pseudonymized_export_needs_the_key(stored_session: tuple[Path, str]) -> None:
    db_path, session_id = stored_session

    result = invoke("export", session_id, "--pseudonymize", db_path=db_path)

    assert result.exit_code == 1
    assert "PSEUDONYM_KEY" in result.stderr
    assert result.stdout == ""


def test_a_pseudonymized_export_redacts_what_was_said(stored_session: tuple[Path, str]) -> None:
    db_path, session_id = stored_session

    result = invoke("export", session_id, "--pseudonymize", db_path=db_path, PSEUDONYM_KEY=KEY)

    assert result.exit_code == 0, result.stderr
    (utterance,) = json.loads(result.stdout)["utterances"]
    assert utterance["text"] == "I drink café au lait; write to [email]"
