"""Every route of the OpenAPI schema against a real server, with each scope of key.

A `read` key gets 403 on every write and passes every read; a `write` key
gets 403 on the admin routes; no key or a wrong one gets 401 everywhere but
/health.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from src.api.access import required_scope
from src.core.keys import Scope, add_key, key_digest
from src.main import create_app
from tests.servers import launch_server

pytestmark = pytest.mark.sqlite

API_KEY = "api-key-" + "k" * 24
NEW_SESSION = {"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"}
# Routes still to come, named here so that their rules are tested before they are.
ADMIN_ROUTES = [("DELETE", "/participants/{participant_id}")]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as the schema has it, with {parameters}
    required_query: dict[str, Any]

    def url(self, session_id: str) -> str:
        def fill(match: re.Match[str]) -> str:
            return session_id if match[1] == "session_id" else f"unknown-{match[1]}"

        return re.sub(r"\{(\w+)\}", fill, self.path)

    @property
    def only_session_ids(self) -> bool:
        return set(re.findall(r"\{(\w+)\}", self.path)) <= {"session_id"}


def schema_operations() -> list[Operation]:
    operations = []
    for path, methods in create_app().openapi()["paths"].items():
        for method, operation in methods.items():
            query = {
                parameter["name"]: 1 if parameter["schema"].get("type") == "integer" else "coffee"
                for parameter in operation.get("parameters", [])
                if parameter["in"] == "query" and parameter.get("required")
            }
            operations.append(Operation(method.upper(), path, query))
    return operations


OPERATIONS = schema_operations()
READS = [op for op in OPERATIONS if required_scope(op.method, op.path) == Scope.READ]
WRITES = [op for op in OPERATIONS if required_scope(op.method, op.path) == Scope.WRITE]
ADMINS = [op for op in OPERATIONS if required_scope(op.method, op.path) == Scope.ADMIN] + [
    Operation(method, path, {}) for method, path in ADMIN_ROUTES
]


def ids(operations: list[Operation]) -> list[str]:
    return [f"{op.method} {op.path}" for op in operations]


@dataclass
class Server:
    url: str
    keys: dict[str, str]  # by scope name, and "api_key"
    log_path: Path
    key_file: Path

    def request(self, op: Operation, key: str | None, session_id: str) -> httpx.Response:
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        with httpx.stream(
            op.method,
            self.url + op.url(session_id),
            params=op.required_query,
            headers=headers,
            json={} if op.method in ("POST", "PUT", "PATCH") else None,
            timeout=30,
        ) as response:
            # An event stream never ends while it is read: its status and headers tell.
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                response.read()
        return response

    def new_session(self) -> str:
        response = httpx.post(
            f"{self.url}/sessions", json=NEW_SESSION, headers=self.bearer("write"), timeout=30
        )
        assert response.status_code == 201, response.text
        session_id: str = response.json()["id"]
        return session_id

    def bearer(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("scoped-server")
    key_file = folder / "keys.toml"
    keys = {scope.value: add_key(key_file, f"{scope}-key", [scope]) for scope in Scope}
    launched = launch_server(
        folder,
        {
            "DATABASE_PATH": str(folder / "sessions.db"),
            "DATABASE_URL": "",
            "API_KEY": API_KEY,
            "API_KEYS": str(key_file),
        },
    )
    try:
        launched.wait_until_healthy()
        yield Server(launched.url, {**keys, "api_key": API_KEY}, launched.log_path, key_file)
    except BaseException:
        launched.kill()
        raise
    launched.stop()


@pytest.fixture(scope="module")
def session_id(server: Server) -> str:
    session = server.new_session()
    utterance = {"turn_number": 1, "speaker": "interviewer", "text": "Why coffee?"}
    added = httpx.post(
        f"{server.url}/sessions/{session}/utterances",
        json=utterance,
        headers=server.bearer("write"),
        timeout=30,
    )
    assert added.status_code == 201, added.text
    # The node the reads' required `node` query names ("coffee"), so that they find it.
    node = {"id": "coffee", "type": "t", "label": "Coffee", "embedding": [1.0]}
    graphed = httpx.post(
        f"{server.url}/sessions/{session}/graph",
        json={"nodes": [node]},
        headers=server.bearer("write"),
        timeout=30,
    )
    assert graphed.status_code == 200, graphed.text
    return session


def test_the_schema_has_reads_and_writes_to_walk() -> None:
    assert len(READS) >= 5
    assert len(WRITES) >= 8
    assert ("GET", "/audit") in [(op.method, op.path) for op in ADMINS]


@pytest.mark.parametrize("op", WRITES + ADMINS, ids=ids(WRITES + ADMINS))
def test_a_read_key_gets_403_on_every_write(server: Server, session_id: str, op: Operation) -> None:
    response = server.request(op, server.keys["read"], session_id)

    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_the_writes_refused_to_a_read_key_changed_nothing(server: Server, session_id: str) -> None:
    path = f"{server.url}/sessions/{session_id}"
    before = httpx.get(path, headers=server.bearer("read")).json()["version"]
    for op in WRITES:
        server.request(op, server.keys["read"], session_id)

    response = httpx.get(path, headers=server.bearer("read"))

    assert response.status_code == 200
    assert (response.json()["version"], response.json()["status"]) == (before, "active")


@pytest.mark.parametrize("op", READS, ids=ids(READS))
def test_a_read_key_passes_every_read(server: Server, session_id: str, op: Operation) -> None:
    response = server.request(op, server.keys["read"], session_id)
    head = server.request(
        Operation("HEAD", op.path, op.required_query), server.keys["read"], session_id
    )

    if op.only_session_ids:
        assert response.status_code == 200, response.text
    assert response.status_code not in (401, 403) and response.status_code < 500, response.text
    assert head.status_code not in (401, 403) and head.status_code < 500


@pytest.mark.parametrize("op", WRITES, ids=ids(WRITES))
def test_a_write_key_passes_every_write(server: Server, op: Operation) -> None:
    response = server.request(op, server.keys["write"], server.new_session())

    assert response.status_code not in (401, 403) and response.status_code < 500, response.text


@pytest.mark.parametrize("op", ADMINS, ids=ids(ADMINS))
def test_a_write_key_gets_403_on_admin_routes(
    server: Server, session_id: str, op: Operation
) -> None:
    response = server.request(op, server.keys["write"], session_id)

    assert response.status_code == 403, response.text
    assert response.json()["scope"] == "admin"


@pytest.mark.parametrize("key", ["admin", "api_key"])
@pytest.mark.parametrize("op", ADMINS, ids=ids(ADMINS))
def test_admin_keys_pass_admin_routes(
    server: Server, session_id: str, op: Operation, key: str
) -> None:
    response = server.request(op, server.keys[key], session_id)

    assert response.status_code not in (401, 403) and response.status_code < 500, response.text


@pytest.mark.parametrize("key", [None, "wrong-key", f"{API_KEY}x"])
def test_without_a_valid_key_every_route_but_health_gets_401(
    server: Server, session_id: str, key: str | None
) -> None:
    for op in OPERATIONS + ADMINS:
        response = server.request(op, key, session_id)
        if op.path == "/health":
            assert response.status_code == 200
        else:
            assert response.status_code == 401, f"{op.method} {op.path}"
            assert response.headers["www-authenticate"] == "Bearer"


def test_the_log_holds_no_key_and_no_digest(server: Server, session_id: str) -> None:
    for key in server.keys.values():
        httpx.get(f"{server.url}/sessions", headers={"Authorization": f"Bearer {key}x"})
        httpx.get(f"{server.url}/sessions", headers={"Authorization": f"Bearer {key}"})

    log = server.log_path.read_text()

    assert "/sessions" in log  # the requests were logged
    for key in server.keys.values():
        assert key not in log
        assert key_digest(key.encode()).hex() not in log
