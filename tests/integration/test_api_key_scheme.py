"""The API key's scheme is matched in any case, and the key itself exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from src.core.config import Settings
from tests.http import serve_in_process

KEY = "k" * 24


@pytest.fixture
async def locked(db_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_path=db_path, database_url=None, api_key=SecretStr(KEY))
    async with serve_in_process(settings) as client:
        yield client


@pytest.mark.parametrize(
    "authorization",
    [f"bearer {KEY}", f"BEARER {KEY}", f"BeArEr {KEY}", f"Bearer  {KEY}", f"Bearer {KEY} "],
)
async def test_the_bearer_scheme_is_matched_in_any_case(
    locked: httpx.AsyncClient, authorization: str
) -> None:
    response = await locked.get("/sessions", headers={"Authorization": authorization})

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "authorization",
    [
        f"bearer {KEY.upper()}",
        f"Bearer{KEY}",
        f"Bearers {KEY}",
        f"Basic {KEY}",
        f"Bearer {KEY}{KEY}",
        f"Bearer {KEY[:-1]}",
        "Bearer ",
        "Bearer",
        f"Bearer {KEY}\u00e9",
    ],
)
async def test_the_key_itself_must_match_exactly(
    locked: httpx.AsyncClient, authorization: str
) -> None:
    response = await locked.get(
        "/sessions", headers={b"Authorization": authorization.encode("utf-8")}
    )

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
