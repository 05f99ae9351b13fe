"""A 422 names a bounded number of errors: a body with thousands of bad members cannot
make the server build and send an answer many times its own size."""

from __future__ import annotations

import json

import httpx

NEW_SESSION = {"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"}
UNKNOWN_MEMBERS = 20_000


async def test_thousands_of_bad_members_get_a_small_422(client: httpx.AsyncClient) -> None:
    body = json.dumps({**NEW_SESSION, **{f"k{n}": 1 for n in range(UNKNOWN_MEMBERS)}})

    answer = await client.post(
        "/sessions", content=body, headers={"Content-Type": "application/json"}
    )

    assert answer.status_code == 422
    assert len(answer.content) < 64 * 1024, f"{len(answer.content)} bytes for {len(body)}"
    problem = answer.json()
    assert 1 <= len(problem["errors"]) <= 100
    assert problem["errors"][0]["field"] == "k0"
    assert f"{UNKNOWN_MEMBERS - len(problem['errors'])} more" in problem["detail"]


async def test_a_few_errors_are_all_named(client: httpx.AsyncClient) -> None:
    answer = await client.post("/sessions", json={"methodology": "", "concept_name": 7})

    assert answer.status_code == 422
    problem = answer.json()
    assert {error["field"] for error in problem["errors"]} == {
        "methodology",
        "concept_id",
        "concept_name",
    }
    assert "more" not in problem["detail"]


async def test_a_huge_member_name_is_not_echoed_whole(client: httpx.AsyncClient) -> None:
    name = "k" * 500_000
    body = json.dumps({**NEW_SESSION, name: 1})

    answer = await client.post(
        "/sessions", content=body, headers={"Content-Type": "application/json"}
    )

    assert answer.status_code == 422
    assert len(answer.content) < 64 * 1024, f"{len(answer.content)} bytes for {len(body)}"
    assert answer.json()["errors"][0]["field"].startswith("k" * 100)
