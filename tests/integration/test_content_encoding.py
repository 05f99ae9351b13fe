"""A body in a content coding the server does not decode (gzip, say) gets 415 that says so."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

NEW_SESSION = json.dumps({"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"})


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate", "gzip, identity"])
async def test_an_encoded_body_gets_415_naming_the_coding(
    client: httpx.AsyncClient, coding: str
) -> None:
    body = gzip.compress(NEW_SESSION.encode())

    answer = await client.post(
        "/sessions",
        content=body,
        headers={"Content-Type": "application/json", "Content-Encoding": coding},
    )

    assert answer.status_code == 415, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "Content-Encoding" in answer.json()["detail"]
    assert answer.headers["accept-encoding"] == "identity"


async def test_a_plain_body_said_to_be_gzip_is_not_stored(client: httpx.AsyncClient) -> None:
    listed_before = (await client.get("/sessions")).json()

    answer = await client.post(
        "/sessions",
        content=NEW_SESSION,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )

    assert answer.status_code == 415, answer.text
    assert (await client.get("/sessions")).json() == listed_before


async def test_identity_is_no_coding(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/sessions",
        content=NEW_SESSION,
        headers={"Content-Type": "application/json", "Content-Encoding": "identity"},
    )

    assert answer.status_code == 201, answer.text
