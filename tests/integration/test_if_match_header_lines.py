"""If-Match sent as several header lines is one list (RFC 9110 5.3), not its first line."""

from __future__ import annotations

from typing import Any

import httpx

NEW_SESSION = {"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"}


async def new_session(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.post("/sessions", json=NEW_SESSION)).json()
    return body


async def test_a_tag_on_a_later_line_matches(client: httpx.AsyncClient) -> None:
    session = await new_session(client)
    lines = [("If-Match", '"7"'), ("If-Match", '"1"')]

    answer = await client.put(
        f"/sessions/{session['id']}/state", json=session["state"], headers=lines
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 2


async def test_no_line_matching_is_412_with_every_line_read(client: httpx.AsyncClient) -> None:
    session = await new_session(client)
    lines = [("If-Match", '"1"'), ("If-Match", '"7"')]
    await client.post(f"/sessions/{session['id']}/pause")  # now at version 2

    answer = await client.post(f"/sessions/{session['id']}/resume", headers=lines)

    assert answer.status_code == 412, answer.text
    problem = answer.json()
    # Two tags were named, so no one of them is "the" expected version.
    assert problem["expected_version"] is None
    assert problem["actual_version"] == 2
    assert (await client.get(f"/sessions/{session['id']}")).json()["status"] == "paused"
