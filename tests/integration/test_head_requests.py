"""HEAD is answered wherever GET is (RFC 9110 9.3.2), on a real server process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from src.main import create_app
from tests.servers import running_server

NEW_SESSION = {"methodology": "mec", "concept_id": "c", "concept_name": "Coffee", "study_id": "s"}
# Headers that may differ between two answers to the same request.
VOLATILE = {"date", "content-length", "transfer-encoding", "x-request-id"}


def get_paths() -> list[str]:
    """Every path the app answers GET on: its operations and the documentation pages."""
    app = create_app()
    paths = {path for path, operations in app.openapi()["paths"].items() if "get" in operations}
    paths |= {"/sessions/"}  # the collection's other spelling, left out of the schema
    for route in app.routes:
        if isinstance(route, Route) and "GET" in (route.methods or ()):
            paths.add(route.path)
    return sorted(paths)


STUDY = "head-study"
# Routes that answer 422 without these.
REQUIRED_QUERY = {"/search": "?q=coffee", "/sessions/{session_id}/graph/similar": "?node=n"}
# Streams that never end while the client listens: their GET is compared by its headers.
STREAMS = {"/events"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    directory: Path = tmp_path_factory.mktemp("head")
    env = {"DATABASE_PATH": str(directory / "head.db"), "DATABASE_URL": ""}
    with running_server(directory, env) as url:
        body = {**NEW_SESSION, "study_id": STUDY}
        session_id = httpx.post(f"{url}/sessions", json=body).json()["id"]
        httpx.post(
            f"{url}/sessions/{session_id}/utterances",
            json={"turn_number": 1, "speaker": "interviewer", "text": "Why coffee?"},
        )
        node = {"id": "n", "type": "t", "label": "Coffee", "embedding": [1.0]}
        httpx.post(f"{url}/sessions/{session_id}/graph", json={"nodes": [node]})
        # The audit trail writes its entries a moment after their answers: GET and
        # HEAD of /audit must not fall on either side of that write.
        for _ in range(500):
            if len(httpx.get(f"{url}/audit").json()) == 3:
                break
            time.sleep(0.01)
        yield url, session_id


def test_every_get_route_is_found() -> None:
    assert {"/health", "/sessions", "/sessions/{session_id}", "/openapi.json"} <= set(get_paths())


@pytest.mark.parametrize("path", get_paths())
def test_head_answers_like_get_without_a_body(server: tuple[str, str], path: str) -> None:
    url, session_id = server
    filled = path.replace("{session_id}", session_id).replace("{version}", "1")
    target = url + filled.replace("{study_id}", STUDY) + REQUIRED_QUERY.get(path, "")

    if path in STREAMS:
        with httpx.stream("GET", target) as get:
            pass
    else:
        get = httpx.get(target)
    head = httpx.head(target)

    assert get.is_success or get.is_redirect, get.headers  # `/` leads to /console
    assert head.status_code == get.status_code
    assert head.content == b""
    same = {name: value for name, value in get.headers.items() if name not in VOLATILE}
    assert {name: value for name, value in head.headers.items() if name not in VOLATILE} == same
    if "content-length" in get.headers:
        assert head.headers["content-length"] == get.headers["content-length"]


def test_head_on_a_missing_session_is_a_404_without_a_body(server: tuple[str, str]) -> None:
    url, _ = server

    response = httpx.head(f"{url}/sessions/nope")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.content == b""


def test_head_where_get_is_not_allowed_is_a_405(server: tuple[str, str]) -> None:
    url, session_id = server

    response = httpx.head(f"{url}/sessions/{session_id}/pause")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_the_allow_header_of_a_get_route_names_head(server: tuple[str, str]) -> None:
    url, session_id = server

    response = httpx.put(f"{url}/sessions/{session_id}")

    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH"
