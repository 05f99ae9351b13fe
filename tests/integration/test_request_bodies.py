"""What the server does with request bodies: size, media type, encoding and nesting."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from src.core.config import Settings
from src.main import create_app
from tests.backends import SqliteBackend
from tests.http import serve_in_process

NEW_SESSION = {"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"}
MIB = 1024 * 1024
SMALL_LIMIT = 4096
PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


async def streamed(size: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A body sent chunked, with no Content-Length."""
    sent = 0
    while sent < size:
        piece = min(chunk, size - sent)
        yield b" " * piece
        sent += piece


@pytest.fixture
async def small_limit(sqlite_backend: SqliteBackend) -> AsyncIterator[httpx.AsyncClient]:
    settings = sqlite_backend.settings().model_copy(update={"max_body_bytes": SMALL_LIMIT})
    async with serve_in_process(settings) as client:
        yield client


def body_operations() -> list[tuple[str, str]]:
    """Every operation that takes a JSON body, as (method, path)."""
    paths = create_app().openapi()["paths"]
    return sorted(
        (method.upper(), path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "requestBody" in operation
    )


class TestSize:
    def test_the_default_limit_is_one_mib(self) -> None:
        assert Settings(database_url=None).max_body_bytes == MIB

    async def test_a_declared_body_over_max_body_bytes_gets_413(
        self, small_limit: httpx.AsyncClient
    ) -> None:
        content = json.dumps(NEW_SESSION).encode().ljust(SMALL_LIMIT + 1)

        response = await small_limit.post(
            "/sessions", content=content, headers={"content-type": "application/json"}
        )

        problem = assert_problem(response, 413)
        assert str(SMALL_LIMIT) in problem["detail"]

    async def test_a_body_of_exactly_max_body_bytes_is_read(
        self, small_limit: httpx.AsyncClient
    ) -> None:
        content = json.dumps(NEW_SESSION).encode().ljust(SMALL_LIMIT)

        response = await small_limit.post(
            "/sessions", content=content, headers={"content-type": "application/json"}
        )

        assert response.status_code == 201, response.text

    async def test_a_body_of_one_mib_is_read_by_default(
        self, sqlite_client: httpx.AsyncClient
    ) -> None:
        content = json.dumps(NEW_SESSION).encode().ljust(MIB)

        response = await sqlite_client.post(
            "/sessions", content=content, headers={"content-type": "application/json"}
        )

        assert response.status_code == 201, response.text

    @pytest.mark.parametrize("path", ["/sessions/{id}/pause", "/sessions/{id}", "/health"])
    async def test_a_chunked_body_over_the_limit_is_refused_where_no_body_is_read(
        self, sqlite_client: httpx.AsyncClient, path: str
    ) -> None:
        session = (await sqlite_client.post("/sessions", json=NEW_SESSION)).json()
        method = "GET" if path == "/health" else "POST" if "pause" in path else "DELETE"

        response = await sqlite_client.request(
            method,
            path.replace("{id}", session["id"]),
            content=streamed(MIB + 1),
            headers={"content-type": "application/json"},
        )

        assert_problem(response, 413)
        after = await sqlite_client.get(f"/sessions/{session['id']}")
        assert (after.status_code, after.json()["status"]) == (200, "active")

    async def test_a_chunked_body_within_the_limit_is_read(
        self, sqlite_client: httpx.AsyncClient
    ) -> None:
        async def body() -> AsyncIterator[bytes]:
            yield json.dumps(NEW_SESSION).encode()
            yield b" " * 200_000

        response = await sqlite_client.post(
            "/sessions", content=body(), headers={"content-type": "application/json"}
        )

        assert response.status_code == 201, response.text


class TestMediaType:
    def test_every_body_route_is_checked(self) -> None:
        assert ("POST", "/sessions") in body_operations()
        assert ("PUT", "/sessions/{session_id}/state") in body_operations()

    @pytest.mark.parametrize(("method", "path"), body_operations())
    @pytest.mark.parametrize(
        "content_type",
        [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"],
    )
    async def test_a_json_body_without_the_json_media_type_gets_415(
        self, sqlite_client: httpx.AsyncClient, method: str, path: str, content_type: str | None
    ) -> None:
        session = (await sqlite_client.post("/sessions", json=NEW_SESSION)).json()
        headers = {} if content_type is None else {"content-type": content_type}

        response = await sqlite_client.request(
            method,
            path.replace("{session_id}", session["id"]),
            content=json.dumps(session["state"]).encode(),
            headers=headers,
        )

        problem = assert_problem(response, 415)
        assert "Content-Type: application/json" in problem["detail"]
        assert (await sqlite_client.get(f"/sessions/{session['id']}")).json()["version"] == 1

    @pytest.mark.parametrize(
        "content_type",
        ["application/json", "application/json; charset=utf-8", "Application/JSON"],
    )
    async def test_json_media_types_are_read(
        self, sqlite_client: httpx.AsyncClient, content_type: str
    ) -> None:
        response = await sqlite_client.post(
            "/sessions", content=json.dumps(NEW_SESSION), headers={"content-type": content_type}
        )

        assert response.status_code == 201, response.text


class TestEncoding:
    @pytest.mark.parametrize(
        "content",
        [
            json.dumps(NEW_SESSION).encode("utf-16"),
            json.dumps(NEW_SESSION).encode("utf-32"),
            json.dumps({**NEW_SESSION, "concept_name": "Caf\u00e9"}, ensure_ascii=False).encode(
                "latin-1"
            ),
            b'{"methodology": "mec", "concept_id": "c", "concept_name": "\xed\xa0\x80"}',
        ],
        ids=["utf-16", "utf-32", "latin-1", "encoded-surrogate"],
    )
    async def test_a_body_that_is_not_utf_8_is_refused_saying_so(
        self, sqlite_client: httpx.AsyncClient, content: bytes
    ) -> None:
        response = await sqlite_client.post(
            "/sessions", content=content, headers={"content-type": "application/json"}
        )

        problem = assert_problem(response, 400)
        assert "UTF-8" in problem["detail"]
        listed = await sqlite_client.get("/sessions")
        assert listed.json() == []


class TestNesting:
    @pytest.mark.parametrize("depth", [1000, 100_000])
    async def test_a_body_nested_past_what_the_server_parses_is_refused_saying_so(
        self, sqlite_client: httpx.AsyncClient, depth: int
    ) -> None:
        content = b'{"a":' * depth + b"1" + b"}" * depth

        response = await sqlite_client.post(
            "/sessions", content=content, headers={"content-type": "application/json"}
        )

        problem = assert_problem(response, 400)
        assert "nest" in problem["detail"]
