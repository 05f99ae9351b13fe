"""Numbers in request bodies are JSON numbers: booleans and strings are refused."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from src.domain.models.session import Session, SessionState

NEW_SESSION = {"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"}
NOT_NUMBERS = [True, False, "7", "0.5", "1e0", None, [1], {"n": 1}]


async def new_session(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/sessions", json=NEW_SESSION)
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]


@pytest.mark.parametrize("field", ["turn_count", "coverage_score"])
@pytest.mark.parametrize("value", NOT_NUMBERS)
async def test_a_state_number_that_is_not_a_number_is_refused(
    client: httpx.AsyncClient, field: str, value: Any
) -> None:
    session = await new_session(client)

    response = await client.put(
        f"/sessions/{session['id']}/state", json={**session["state"], field: value}
    )

    assert_refused(response, field)
    assert (await client.get(f"/sessions/{session['id']}")).json()["version"] == 1


@pytest.mark.parametrize("field", ["turn_count", "coverage_score"])
@pytest.mark.parametrize("value", [value for value in NOT_NUMBERS if value is not None])
async def test_a_state_number_in_a_merge_patch_that_is_not_a_number_is_refused(
    client: httpx.AsyncClient, field: str, value: Any
) -> None:
    # In a merge patch null removes a member (a typed one takes its default): not refused.
    session = await new_session(client)
    utterance = {"turn_number": 1, "speaker": "interviewer", "text": "Why?"}

    patched = await client.patch(
        f"/sessions/{session['id']}/state",
        content=json.dumps({field: value}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    turn = await client.post(
        f"/sessions/{session['id']}/turns",
        json={"utterances": [utterance], "state_patch": {field: value}},
    )

    assert_refused(patched, field)
    assert_refused(turn, f"state_patch.{field}")
    assert (await client.get(f"/sessions/{session['id']}")).json()["version"] == 1


@pytest.mark.parametrize("value", [*NOT_NUMBERS, 1.5])
async def test_a_turn_number_that_is_not_an_integer_is_refused(
    client: httpx.AsyncClient, value: Any
) -> None:
    session = await new_session(client)
    utterance = {"turn_number": value, "speaker": "interviewer", "text": "Why?"}

    appended = await client.post(f"/sessions/{session['id']}/utterances", json=utterance)
    turn = await client.post(
        f"/sessions/{session['id']}/turns",
        json={"utterances": [utterance], "state": session["state"]},
    )

    assert_refused(appended, "turn_number")
    assert_refused(turn, "utterances.0.turn_number")
    listed = await client.get(f"/sessions/{session['id']}/utterances")
    assert listed.json() == []


async def test_numbers_are_still_accepted(client: httpx.AsyncClient) -> None:
    session = await new_session(client)
    state = {**session["state"], "turn_count": 3, "coverage_score": 1}
    # JSON Schema counts 7.0 as an integer, so the published schema allows it.
    utterance = {"turn_number": 7.0, "speaker": "interviewer", "text": "Why?"}

    response = await client.put(f"/sessions/{session['id']}/state", json=state)
    appended = await client.post(f"/sessions/{session['id']}/utterances", json=utterance)

    assert response.status_code == 200, response.text
    assert response.json()["state"]["coverage_score"] == 1.0
    assert appended.status_code == 201, appended.text
    assert appended.json()["turn_number"] == 7


def test_the_python_models_keep_pydantic_s_usual_conversions() -> None:
    # The spec constructs these models from database rows; the strictness is
    # for JSON bodies only.
    state = SessionState(
        methodology="mec", concept_id="c", concept_name="n", turn_count="3", coverage_score=1
    )
    session = Session(
        id="s",
        methodology="mec",
        concept_id="c",
        concept_name="n",
        state=state,
        status="paused",
        created_at="2024-01-01T00:00:00Z",
    )

    assert (state.turn_count, state.coverage_score) == (3, 1.0)
    assert session.status == "paused"


@pytest.mark.parametrize("value", [*NOT_NUMBERS, 1.5, -1])
async def test_a_fork_turn_that_is_not_a_whole_number_is_refused(
    client: httpx.AsyncClient, value: Any
) -> None:
    session = await new_session(client)

    response = await client.post(f"/sessions/{session['id']}/fork", json={"at_turn": value})

    assert_refused(response, "at_turn")
    listed = await client.get("/sessions", params={"status": "all"})
    assert [each["id"] for each in listed.json()] == [session["id"]]
