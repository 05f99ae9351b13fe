"""Pseudonymised exports move each coding and quote onto the redacted transcript."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.backends import PostgresBackend, SqliteBackend
from tests.builders import NEW_SESSION_BODY
from tests.http import serve_in_process
from tests.qdpx_reader import read_qdpx

KEY = "a-research-team-secret-of-32-chars"
SAID = "Mail me at jane.doe@example.com or call +44 20 7946 0958, it keeps me awake"
QUOTES = {"awake": "keeps me awake", "contact": "jane.doe@example.com or call"}


@pytest.fixture
async def keyed_client(backend: SqliteBackend | PostgresBackend) -> Any:
    settings = backend.settings().model_copy(update={"pseudonym_key": SecretStr(KEY)})
    async with serve_in_process(settings) as http:
        yield http


def node(node_id: str) -> dict[str, Any]:
    start = SAID.index(QUOTES[node_id])
    span = {
        "turn_number": 1,
        "speaker": "respondent",
        "start": start,
        "end": start + len(QUOTES[node_id]),
    }
    return {"id": node_id, "type": "t", "label": node_id, "provenance": [span]}


async def test_codings_and_quotes_fall_on_the_redacted_text(
    keyed_client: httpx.AsyncClient,
) -> None:
    created = await keyed_client.post("/sessions", json={**NEW_SESSION_BODY, "participant_id": "p"})
    sid = created.json()["id"]
    turn = await keyed_client.post(
        f"/sessions/{sid}/turns",
        json={
            "utterances": [{"turn_number": 1, "speaker": "respondent", "text": SAID}],
            "state_patch": {"turn_count": 1},
            "graph": {"nodes": [node("awake"), node("contact")]},
        },
    )
    assert turn.status_code == 201, turn.text
    params = {"format": "qdpx", "pseudonymize": "true"}
    project = read_qdpx((await keyed_client.get(f"/sessions/{sid}/export", params=params)).content)
    (source,) = project["sources"].values()
    assert "example.com" not in source["text"] and "7946" not in source["text"]
    assert sorted(text for _code, text in source["codings"]) == [
        "[email] or call",
        "keeps me awake",
    ]
    markdown = (
        await keyed_client.get(
            f"/sessions/{sid}/export", params={"format": "markdown", "pseudonymize": "true"}
        )
    ).text
    assert "example.com" not in markdown
    assert "“keeps me awake”" in markdown and "“\\[email\\] or call”" in markdown
