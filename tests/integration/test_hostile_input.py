"""Hostile strings are refused with 422 or stored and returned byte for byte, on every backend."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

HOSTILE = [
    "'; DROP TABLE sessions; --",
    'Robert"); DELETE FROM sessions WHERE ("1"="1',
    "1 OR 1=1",
    "%' OR '%'='",
    "$1::text",
    "?",
    ":id",
    "\\x00",
    "back\\slash",
    "Ünïcödé ☕ 珈琲 🧪",
    "\u202eright-to-left",
    "\U0001f600" * 50,
    "x" * 200,
    "e\u0301",  # combining accent: two code points, kept as sent
    "nul\x00byte",
    "bell\x07",
    "line\nbreak",
    "x" * 201,
]


@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_names_are_refused_or_kept_exactly(
    client: httpx.AsyncClient, text: str
) -> None:
    body = {"methodology": text[:64], "concept_id": text[:128], "concept_name": text}

    response = await client.post("/sessions", json=body)

    assert response.status_code in (201, 422), response.text
    assert response.headers["content-type"].startswith(
        "application/json" if response.status_code == 201 else "application/problem+json"
    )
    if response.status_code == 201:
        stored = (await client.get(f"/sessions/{response.json()['id']}")).json()
        assert stored["methodology"] == body["methodology"]
        assert stored["concept_id"] == body["concept_id"]
        assert stored["concept_name"] == body["concept_name"].strip()
    else:
        assert "Traceback" not in response.text and "SELECT" not in response.text


@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_ids_in_paths_are_a_404_or_a_422(
    client: httpx.AsyncClient, text: str
) -> None:
    path = f"/sessions/{quote(text, safe='')}"

    for method in ("GET", "DELETE"):
        response = await client.request(method, path)
        assert response.status_code in (404, 422), response.text
        assert response.headers["content-type"] == "application/problem+json"


async def test_the_store_still_works_after_every_hostile_string(
    client: httpx.AsyncClient,
) -> None:
    for text in HOSTILE:
        await client.post(
            "/sessions", json={"methodology": "m", "concept_id": "c", "concept_name": text}
        )

    response = await client.get("/sessions?limit=500")

    assert response.status_code == 200
    names = {session["concept_name"] for session in response.json()}
    assert "'; DROP TABLE sessions; --" in names
