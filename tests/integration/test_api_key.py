"""The optional API key: every route but /health needs it once it is set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from src.core.config import Settings
from tests.builders import NEW_SESSION_BODY
from tests.http import serve_in_process

KEY = "k" * 24


@pytest.fixture
async def locked(db_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_path=db_path, database_url=None, api_key=SecretStr(KEY))
    async with serve_in_process(settings) as client:
        yield client


@pytest.mark.parametrize(
    "authorization",
    [None, "", f"Bearer {KEY[:-1]}", f"Bearer {KEY}x", f"bearer{KEY}", KEY, f"Basic {KEY}"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/sessions"),
        ("GET", "/sessions"),
        ("GET", "/sessions/x"),
        ("DELETE", "/sessions/x"),
    ],
)
async def test_requests_without_the_key_get_401(
    locked: httpx.AsyncClient, authorization: str | None, method: str, path: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await locked.request(method, path, headers=headers, json=NEW_SESSION_BODY)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert KEY not in response.text


async def test_the_key_opens_every_route(locked: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}

    created = await locked.post("/sessions", json=NEW_SESSION_BODY, headers=headers)
    fetched = await locked.get(f"/sessions/{created.json()['id']}", headers=headers)

    assert (created.status_code, fetched.status_code) == (201, 200)


async def test_health_needs_no_key(locked: httpx.AsyncClient) -> None:
    assert (await locked.get("/health")).status_code == 200


async def test_without_a_key_nothing_is_asked(db_path: Path) -> None:
    async with serve_in_process(Settings(database_path=db_path, api_key=None)) as client:
        assert (await client.post("/sessions", json=NEW_SESSION_BODY)).status_code == 201


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="16 characters"):
        Settings(api_key=SecretStr("short"))


def test_an_empty_key_means_no_key() -> None:
    assert Settings(api_key=SecretStr("")).api_key is None
