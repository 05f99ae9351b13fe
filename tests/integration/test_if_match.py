"""If-Match: every 412 names the version the session is at, whatever the header held."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

NEW_SESSION = {"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"}


async def new_session(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.post("/sessions", json=NEW_SESSION)).json()
    return body


async def conditional_writes(
    client: httpx.AsyncClient, session: dict[str, Any], if_match: str
) -> list[httpx.Response]:
    """A state update, a move and a turn, each sent with the same If-Match."""
    headers = {"If-Match": if_match}
    sid = session["id"]
    turn = {
        "utterances": [{"turn_number": 1, "speaker": "interviewer", "text": "Why?"}],
        "state": session["state"],
    }
    return [
        await client.put(f"/sessions/{sid}/state", json=session["state"], headers=headers),
        await client.post(f"/sessions/{sid}/pause", headers=headers),
        await client.post(f"/sessions/{sid}/turns", json=turn, headers=headers),
    ]


@pytest.mark.parametrize(
    ("if_match", "expected_version"),
    [
        ('W/"1"', 1),
        ('"abc"', None),
        ('"2"', 2),
        ('"99999999999999999999999"', None),
        ('"2", "3"', None),
        ('W/"1", "2"', None),
        ('"-1"', None),
    ],
)
async def test_every_412_carries_the_expected_and_the_actual_version(
    client: httpx.AsyncClient, if_match: str, expected_version: int | None
) -> None:
    session = await new_session(client)

    for response in await conditional_writes(client, session, if_match):
        assert response.status_code == 412, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["actual_version"] == 1
        assert problem["expected_version"] == expected_version
        assert problem["session_id"] == session["id"]
    assert (await client.get(f"/sessions/{session['id']}")).json()["version"] == 1


async def test_a_weak_tag_is_refused_saying_why(client: httpx.AsyncClient) -> None:
    session = await new_session(client)

    (response, *_) = await conditional_writes(client, session, 'W/"1"')

    assert "weak" in response.json()["detail"]


@pytest.mark.parametrize("if_match", ["1", '"1', "W/1", '"1" "2"', "garbage", '"1",,x', ","])
async def test_an_if_match_that_is_no_list_of_entity_tags_matches_nothing(
    client: httpx.AsyncClient, if_match: str
) -> None:
    session = await new_session(client)

    for response in await conditional_writes(client, session, if_match):
        assert response.status_code == 412, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert (problem["expected_version"], problem["actual_version"]) == (None, 1)
        assert "entity tags" in problem["detail"]
    assert (await client.get(f"/sessions/{session['id']}")).json()["version"] == 1


async def test_an_if_match_on_a_missing_session_is_a_404(client: httpx.AsyncClient) -> None:
    for if_match in ['"1"', 'W/"1"', "garbage", '"1", "2"']:
        response = await client.post("/sessions/nope/pause", headers={"If-Match": if_match})

        assert response.status_code == 404, (if_match, response.text)


@pytest.mark.parametrize("if_match", ['"1"', '"7", "1"', "*", ' "1" ', '"1",'])
async def test_a_tag_naming_the_current_version_lets_the_write_through(
    client: httpx.AsyncClient, if_match: str
) -> None:
    session = await new_session(client)

    response = await client.put(
        f"/sessions/{session['id']}/state", json=session["state"], headers={"If-Match": if_match}
    )

    assert response.status_code == 200, response.text
