"""Open JSON fields nest at most MAX_JSON_DEPTH levels; deeper ones are refused before storing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

NEW_SESSION = {"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"}
LIMIT = 32


def nested(depth: int, *, kind: str = "object") -> Any:
    """JSON `depth` levels deep, counting the outermost object as level 1."""
    value: Any = 1
    for level in range(depth):
        if kind == "object" or level == depth - 1:
            value = {"k": value}
        else:
            value = [value]
    return value


async def new_session(client: httpx.AsyncClient) -> str:
    response = await client.post("/sessions", json=NEW_SESSION)
    session_id: str = response.json()["id"]
    return session_id


@pytest.mark.parametrize("kind", ["object", "array"])
async def test_metadata_at_the_limit_is_stored_and_read_back(
    client: httpx.AsyncClient, kind: str
) -> None:
    session_id = await new_session(client)
    metadata = nested(LIMIT, kind=kind)
    utterance = {"turn_number": 1, "speaker": "interviewer", "text": "Why?", "metadata": metadata}

    response = await client.post(f"/sessions/{session_id}/utterances", json=utterance)

    assert response.status_code == 201, response.text
    listed = await client.get(f"/sessions/{session_id}/utterances")
    assert listed.json()[0]["metadata"] == metadata


@pytest.mark.parametrize("depth", [LIMIT + 1, 256, 900])
@pytest.mark.parametrize("kind", ["object", "array"])
async def test_metadata_deeper_than_the_limit_is_a_422_naming_the_field(
    client: httpx.AsyncClient, depth: int, kind: str
) -> None:
    session_id = await new_session(client)
    utterance = {
        "turn_number": 1,
        "speaker": "respondent",
        "text": "Because.",
        "metadata": nested(depth, kind=kind),
    }

    appended = await client.post(f"/sessions/{session_id}/utterances", json=utterance)
    turn = await client.post(
        f"/sessions/{session_id}/turns",
        json={
            "utterances": [utterance],
            "state": {**NEW_SESSION, "turn_count": 1},
        },
    )

    for response, field in ((appended, "metadata"), (turn, "utterances.0.metadata")):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        errors = response.json()["errors"]
        assert [error["field"] for error in errors] == [field]
        assert f"at most {LIMIT} levels" in errors[0]["reason"]
    # Nothing was stored, and the transcript still reads.
    listed = await client.get(f"/sessions/{session_id}/utterances")
    assert (listed.status_code, listed.json()) == (200, [])
    resumed = await client.get(f"/sessions/{session_id}/resume")
    assert resumed.status_code == 200
    exported = await client.get(f"/sessions/{session_id}/export")
    assert exported.json()["utterances"] == []
