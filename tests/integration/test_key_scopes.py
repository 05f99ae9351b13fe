"""Named keys over HTTP: 401 without a valid key, 403 without the scope, the caller in the state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Request
from pydantic import SecretStr

from src.api.api_key import ApiKeyMiddleware, caller_of
from src.core.config import Settings
from src.core.keys import Scope, add_key, remove_key
from src.main import create_app

pytestmark = pytest.mark.sqlite

API_KEY = "k" * 24
NEW_SESSION = {"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app, with a route that answers who the middleware let in."""
    app = create_app(settings)

    @app.get("/whoami", include_in_schema=False)
    async def whoami(request: Request) -> dict[str, object]:
        caller = caller_of(request.scope)
        return {"name": None if caller is None else caller.name}

    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as client,
    ):
        yield client


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys.toml"


@pytest.fixture
def keys(key_file: Path) -> dict[Scope, str]:
    return {scope: add_key(key_file, f"{scope}-key", [scope]) for scope in Scope}


@pytest.fixture
async def client(
    db_path: Path, key_file: Path, keys: dict[Scope, str]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_path=db_path, database_url=None, api_key=SecretStr(API_KEY), api_keys=key_file
    )
    async with serving(settings) as http:
        yield http


async def test_a_read_key_reads_and_gets_403_on_a_write(
    client: httpx.AsyncClient, keys: dict[Scope, str]
) -> None:
    listed = await client.get("/sessions", headers=bearer(keys[Scope.READ]))
    refused = await client.post("/sessions", json=NEW_SESSION, headers=bearer(keys[Scope.READ]))

    assert listed.status_code == 200
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "insufficient_scope"
    assert refused.json()["scope"] == "write"
    assert "'read-key'" in refused.json()["detail"]
    assert refused.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="write"'
    assert keys[Scope.READ] not in refused.text
    listed_after = await client.get("/sessions", headers=bearer(keys[Scope.READ]))
    assert listed_after.json() == []


async def test_a_write_key_writes_and_gets_403_on_admin_routes(
    client: httpx.AsyncClient, keys: dict[Scope, str]
) -> None:
    created = await client.post("/sessions", json=NEW_SESSION, headers=bearer(keys[Scope.WRITE]))
    erase = await client.delete("/participants/p-1", headers=bearer(keys[Scope.WRITE]))
    audit = await client.get("/audit", headers=bearer(keys[Scope.WRITE]))

    assert created.status_code == 201
    assert (erase.status_code, audit.status_code) == (403, 403)
    assert erase.json()["scope"] == audit.json()["scope"] == "admin"


@pytest.mark.parametrize("key_name", ["admin-key", "api_key"])
async def test_admin_keys_pass_admin_routes(
    client: httpx.AsyncClient, keys: dict[Scope, str], key_name: str
) -> None:
    key = API_KEY if key_name == "api_key" else keys[Scope.ADMIN]

    erase = await client.delete("/participants/p-1", headers=bearer(key))
    created = await client.post("/sessions", json=NEW_SESSION, headers=bearer(key))

    assert erase.status_code == 404  # no such route yet: the key passed
    assert created.status_code == 201


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic a2V5", "Bearer wrong-key", "Bearer-read-key"],
)
async def test_no_valid_key_gets_401(
    client: httpx.AsyncClient, keys: dict[Scope, str], authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await client.get("/sessions", headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_digest_from_the_file_is_no_key(client: httpx.AsyncClient, key_file: Path) -> None:
    digest = key_file.read_text().split('sha256 = "')[1].split('"')[0]

    assert (await client.get("/sessions", headers=bearer(digest))).status_code == 401


async def test_two_authorization_headers_get_401(
    client: httpx.AsyncClient, keys: dict[Scope, str]
) -> None:
    headers = [("Authorization", f"Bearer {keys[Scope.ADMIN]}"), ("Authorization", "Bearer x")]

    response = await client.get("/sessions", headers=headers)

    assert response.status_code == 401


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
async def test_the_scheme_is_matched_in_any_case(
    client: httpx.AsyncClient, keys: dict[Scope, str], scheme: str
) -> None:
    for key in [*keys.values(), API_KEY]:
        response = await client.get("/sessions", headers={"Authorization": f"{scheme} {key}"})
        assert response.status_code == 200


async def test_the_key_itself_is_matched_exactly(
    client: httpx.AsyncClient, keys: dict[Scope, str]
) -> None:
    key = keys[Scope.READ]

    for wrong in [key.upper(), key.lower(), key[:-1], key + key[-1], f" {key}x"]:
        assert (await client.get("/sessions", headers=bearer(wrong))).status_code == 401


@pytest.mark.parametrize("path", ["/health", "/docs", "/redoc", "/openapi.json"])
async def test_health_and_the_docs_need_no_key(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200


async def test_the_callers_name_is_in_the_request_state(
    client: httpx.AsyncClient, keys: dict[Scope, str]
) -> None:
    names = [
        (await client.get("/whoami", headers=bearer(key))).json()["name"]
        for key in [keys[Scope.READ], keys[Scope.ADMIN], API_KEY]
    ]

    assert names == ["read-key", "admin-key", "api_key"]


async def test_a_key_added_or_removed_while_serving_counts_at_once(
    client: httpx.AsyncClient, key_file: Path
) -> None:
    key = add_key(key_file, "newcomer", [Scope.READ])
    assert (await client.get("/sessions", headers=bearer(key))).status_code == 200

    remove_key(key_file, "newcomer")
    assert (await client.get("/sessions", headers=bearer(key))).status_code == 401


async def test_a_file_broken_while_serving_keeps_the_keys_read_last(
    client: httpx.AsyncClient, key_file: Path, keys: dict[Scope, str]
) -> None:
    key_file.write_text("[[key]\n")

    response = await client.get("/sessions", headers=bearer(keys[Scope.READ]))

    assert response.status_code == 200


async def test_api_keys_alone_locks_the_api(db_path: Path, key_file: Path) -> None:
    key = add_key(key_file, "only", [Scope.WRITE])
    settings = Settings(database_path=db_path, database_url=None, api_keys=key_file)

    async with serving(settings) as client:
        anonymous = await client.get("/sessions")
        with_key = await client.post("/sessions", json=NEW_SESSION, headers=bearer(key))
        api_key = await client.get("/sessions", headers=bearer(API_KEY))

    assert (anonymous.status_code, with_key.status_code, api_key.status_code) == (401, 201, 401)


async def test_an_empty_key_file_refuses_everyone(db_path: Path, key_file: Path) -> None:
    key_file.write_text("")
    settings = Settings(database_path=db_path, database_url=None, api_keys=key_file)

    async with serving(settings) as client:
        assert (await client.get("/sessions", headers=bearer("x" * 40))).status_code == 401
        assert (await client.get("/health")).status_code == 200


async def test_without_keys_the_state_names_no_caller(db_path: Path) -> None:
    async with serving(Settings(database_path=db_path, database_url=None)) as client:
        response = await client.get("/whoami", headers=bearer("anything"))

    assert response.json() == {"name": None}


async def test_a_bad_key_file_fails_the_start_naming_api_keys(tmp_path: Path) -> None:
    settings = Settings(api_keys=tmp_path / "missing.toml")
    middleware = ApiKeyMiddleware(create_app(settings), settings=lambda: settings)
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await middleware({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]

    assert len(sent) == 1
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "(API_KEYS): there is no such file" in str(sent[0]["message"])
