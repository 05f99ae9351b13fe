"""GET /audit and what the API records in it, on every backend, with named keys and API_KEY."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from src.api.audit import GATHER_SECONDS
from src.core.config import Settings
from src.core.keys import Scope, add_key
from src.main import create_app
from tests.backends import PostgresBackend, SqliteBackend, postgres_schema
from tests.builders import NEW_SESSION_BODY
from tests.http import serve_in_process
from tests.servers import running_server

API_KEY = "the-single-api-key-" + "q" * 16
PHRASE = "my sister Okonkwo-Vallejo drinks oolong at dawn"
PARTICIPANT = "participant-Zyxwvut-77"


@dataclass
class Keys:
    ingest: str  # write
    analyst: str  # read
    auditor: str  # admin

    def bearer(self, name: str) -> dict[str, str]:
        key = API_KEY if name == "api_key" else getattr(self, name)
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    key_file = tmp_path / "keys.toml"
    return Keys(
        ingest=add_key(key_file, "ingest", [Scope.WRITE]),
        analyst=add_key(key_file, "analyst", [Scope.READ]),
        auditor=add_key(key_file, "auditor", [Scope.ADMIN]),
    )


def keyed(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={"api_key": SecretStr(API_KEY), "api_keys": tmp_path / "keys.toml"}
    )


@pytest.fixture
async def client(
    backend: SqliteBackend | PostgresBackend, keys: Keys, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(keyed(backend.settings(), tmp_path)) as http:
        yield http


async def audit_entries(
    client: httpx.AsyncClient, keys: Keys, count: int, **params: Any
) -> list[dict[str, Any]]:
    """The newest entries, once at least `count` are there (they are written just after)."""
    deadline = time.monotonic() + 10
    while True:
        response = await client.get("/audit", params=params, headers=keys.bearer("auditor"))
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        await asyncio.sleep(GATHER_SECONDS / 2)


def brief(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (entry["key_name"], entry["action"], entry["method"], entry["path"], entry["session_id"])
        for entry in entries
    ]


async def test_writes_exports_and_refusals_are_recorded_with_the_key_names(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    created = await client.post("/sessions", json=NEW_SESSION_BODY, headers=keys.bearer("ingest"))
    session_id = created.json()["id"]
    utterance = {"turn_number": 1, "speaker": "respondent", "text": PHRASE}
    said = await client.post(
        f"/sessions/{session_id}/utterances", json=utterance, headers=keys.bearer("api_key")
    )
    exported = await client.get(f"/sessions/{session_id}/export", headers=keys.bearer("analyst"))
    forbidden = await client.post(f"/sessions/{session_id}/pause", headers=keys.bearer("analyst"))
    unauthorized = await client.get("/sessions", headers={"Authorization": "Bearer nope" * 3})
    # Not recorded: reads, HEAD, and refusals that are not about the key.
    await client.get(f"/sessions/{session_id}", headers=keys.bearer("analyst"))
    await client.head(f"/sessions/{session_id}/export", headers=keys.bearer("analyst"))
    await client.delete("/sessions/no-such-session", headers=keys.bearer("ingest"))
    await client.post("/sessions", json={}, headers=keys.bearer("ingest"))
    assert [r.status_code for r in (created, said, exported, forbidden, unauthorized)] == [
        201,
        201,
        200,
        403,
        401,
    ]

    entries = await audit_entries(client, keys, 5)

    assert brief(entries) == [
        (None, "unauthorized", "GET", "/sessions", None),
        ("analyst", "forbidden", "POST", f"/sessions/{session_id}/pause", session_id),
        ("analyst", "export", "GET", f"/sessions/{session_id}/export", session_id),
        ("api_key", "write", "POST", f"/sessions/{session_id}/utterances", session_id),
        ("ingest", "write", "POST", "/sessions", None),
    ]
    assert all(entry["counts"] is None for entry in entries)
    stamps = [entry["at"] for entry in entries]
    assert stamps == sorted(stamps, reverse=True)
    assert all(stamp.endswith("Z") for stamp in stamps)


async def test_without_any_key_configured_the_key_name_is_null(
    backend: SqliteBackend | PostgresBackend,
) -> None:
    async with serve_in_process(backend.settings()) as client:
        await client.post("/sessions", json=NEW_SESSION_BODY)
        deadline = time.monotonic() + 10
        while not (entries := (await client.get("/audit")).json()):
            assert time.monotonic() < deadline
            await asyncio.sleep(GATHER_SECONDS / 2)

    assert brief(entries) == [(None, "write", "POST", "/sessions", None)]


@pytest.mark.parametrize(
    ("key", "status"),
    [
        (None, 401),
        ("wrong", 401),
        ("analyst", 403),
        ("ingest", 403),
        ("auditor", 200),
        ("api_key", 200),
    ],
)
async def test_the_audit_log_is_for_admin_keys_only(
    client: httpx.AsyncClient, keys: Keys, key: str | None, status: int
) -> None:
    headers = {} if key is None else {"Authorization": "Bearer " + "w" * 30}
    if key not in (None, "wrong"):
        headers = keys.bearer(key)

    response = await client.get("/audit", headers=headers)

    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["scope"] == "admin"


async def test_pages_follow_the_link_header_newest_first(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    for _ in range(5):
        await client.post("/sessions", json=NEW_SESSION_BODY, headers=keys.bearer("ingest"))
    everything = await audit_entries(client, keys, 5, limit=500)

    pages, url = [], "/audit?limit=2&action=write"
    while url:
        response = await client.get(url, headers=keys.bearer("auditor"))
        assert response.status_code == 200, response.text
        pages.append(response.json())
        link = response.headers.get("link")
        url = link.split(">")[0].lstrip("<") if link else ""

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [entry for page in pages for entry in page] == everything
    assert "after=" in response.request.url.query.decode()


async def test_filters_by_key_name_and_action(client: httpx.AsyncClient, keys: Keys) -> None:
    await client.post("/sessions", json=NEW_SESSION_BODY, headers=keys.bearer("ingest"))
    await client.post("/sessions", json=NEW_SESSION_BODY, headers=keys.bearer("api_key"))
    await client.post("/sessions", json=NEW_SESSION_BODY, headers=keys.bearer("analyst"))
    await audit_entries(client, keys, 3)

    by_ingest = await audit_entries(client, keys, 1, key_name="ingest")
    forbidden = await audit_entries(client, keys, 1, action="forbidden")

    assert brief(by_ingest) == [("ingest", "write", "POST", "/sessions", None)]
    assert brief(forbidden) == [("analyst", "forbidden", "POST", "/sessions", None)]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "limit=x",
        "action=read",
        "after=nonsense",
        "key_name=no%20spaces",
        "after=",
    ],
)
async def test_bad_parameters_get_422(client: httpx.AsyncClient, keys: Keys, query: str) -> None:
    response = await client.get(f"/audit?{query}", headers=keys.bearer("auditor"))

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_erasure_is_recorded_with_counts_and_without_the_participant_a_study_export_too(
    backend: SqliteBackend | PostgresBackend, keys: Keys, tmp_path: Path
) -> None:
    app = create_app(keyed(backend.settings(), tmp_path))
    said = {"turn_number": 1, "speaker": "respondent", "text": PHRASE}

    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as client,
    ):
        created = await client.post(
            "/sessions",
            json={**NEW_SESSION_BODY, "participant_id": PARTICIPANT},
            headers=keys.bearer("ingest"),
        )
        session_id = created.json()["id"]
        await client.post(
            f"/sessions/{session_id}/utterances", json=said, headers=keys.bearer("ingest")
        )
        # Someone else's session keeps the study there to export after the erasure.
        await client.post(
            "/sessions",
            json={**NEW_SESSION_BODY, "study_id": "st-1", "participant_id": "someone-else"},
            headers=keys.bearer("ingest"),
        )
        refused = await client.delete(f"/participants/{PARTICIPANT}", headers=keys.bearer("ingest"))
        erased = await client.delete(f"/participants/{PARTICIPANT}", headers=keys.bearer("auditor"))
        exported = await client.get("/studies/st-1/export", headers=keys.bearer("analyst"))
        entries = await audit_entries(client, keys, 5)

    assert (refused.status_code, erased.status_code, exported.status_code) == (403, 200, 200)
    template = "/participants/{participant_id}"
    assert brief(entries)[:3] == [
        ("analyst", "export", "GET", "/studies/st-1/export", None),
        ("auditor", "erasure", "DELETE", template, None),
        ("ingest", "forbidden", "DELETE", template, None),
    ]
    # Its events: the session's creation and its utterance.
    assert entries[1]["counts"] == {"sessions": 1, "utterances": 1, "events": 2}
    assert PARTICIPANT not in str(entries)


async def test_the_log_holds_no_key_no_body_and_no_participant(
    sqlite_backend: SqliteBackend, keys: Keys, tmp_path: Path
) -> None:
    """The bytes of the database file and its WAL hold no key and nothing from a body."""
    wrong_key = "isk_" + "z" * 40
    said = {"turn_number": 1, "speaker": "respondent", "text": PHRASE}
    async with serve_in_process(keyed(sqlite_backend.settings(), tmp_path)) as client:
        created = await client.post(
            f"/sessions?note={PHRASE}", json=NEW_SESSION_BODY, headers=keys.bearer("ingest")
        )
        utterances = f"/sessions/{created.json()['id']}/utterances"
        # Recorded, each of them; none of their bodies is stored anywhere.
        await client.post(utterances, json=said, headers=keys.bearer("analyst"))
        await client.post(utterances, json=said, headers={"Authorization": f"Bearer {wrong_key}"})
        await client.delete(f"/participants/{PARTICIPANT}", headers=keys.bearer("analyst"))
        await client.post(
            f"/sessions/{created.json()['id']}/pause?why={PHRASE}", headers=keys.bearer("api_key")
        )
        entries = await audit_entries(client, keys, 5)

    assert [entry["action"] for entry in entries] == [
        "write",
        "forbidden",
        "unauthorized",
        "forbidden",
        "write",
    ]
    stored = b"".join(
        path.read_bytes()
        for path in sqlite_backend.path.parent.iterdir()
        if path.name.startswith(sqlite_backend.path.name)
    )
    for secret in (keys.ingest, keys.analyst, keys.auditor, API_KEY, wrong_key, PARTICIPANT):
        assert secret.encode() not in stored
    for word in ("Okonkwo-Vallejo", "oolong"):
        assert word.encode() not in stored
    assert b"/participants/{participant_id}" in stored  # the file was read as written


@pytest.mark.parametrize(
    "database",
    [
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
async def test_the_audit_log_survives_a_restart(database: str, keys: Keys, tmp_path: Path) -> None:
    """Entries of requests answered just before a SIGTERM are written before the server exits."""
    env = {"API_KEY": API_KEY, "API_KEYS": str(tmp_path / "keys.toml")}
    async with contextlib.AsyncExitStack() as stack:
        if database == "sqlite":
            env |= {"DATABASE_PATH": str(tmp_path / "audited.db"), "DATABASE_URL": ""}
        else:
            env["DATABASE_URL"] = await stack.enter_async_context(postgres_schema())
        with running_server(tmp_path, env) as url:
            for _ in range(3):
                async with httpx.AsyncClient(base_url=url) as http:
                    created = await http.post(
                        "/sessions", json=NEW_SESSION_BODY, headers=keys.bearer("ingest")
                    )
                assert created.status_code == 201
            async with httpx.AsyncClient(base_url=url) as http:
                assert (await http.get("/sessions")).status_code == 401
        # Stopped at once, before the entries' write was due: the shutdown wrote them.
        with running_server(tmp_path, env) as url:
            async with httpx.AsyncClient(base_url=url) as http:
                response = await http.get("/audit", headers=keys.bearer("auditor"))

    assert response.status_code == 200
    assert brief(response.json()) == [
        (None, "unauthorized", "GET", "/sessions", None),
        *[("ingest", "write", "POST", "/sessions", None)] * 3,
    ]


async def test_the_audit_table_holds_no_key_no_body_and_no_participant(
    backend: SqliteBackend | PostgresBackend, keys: Keys, tmp_path: Path
) -> None:
    wrong_key = "isk_" + "y" * 40
    said = {"turn_number": 1, "speaker": "respondent", "text": PHRASE}
    async with serve_in_process(keyed(backend.settings(), tmp_path)) as client:
        created = await client.post(
            f"/sessions?note={PHRASE}", json=NEW_SESSION_BODY, headers=keys.bearer("ingest")
        )
        utterances = f"/sessions/{created.json()['id']}/utterances"
        await client.post(utterances, json=said, headers=keys.bearer("api_key"))
        await client.post(utterances, json=said, headers=keys.bearer("analyst"))
        await client.post(utterances, json=said, headers={"Authorization": f"Bearer {wrong_key}"})
        await client.delete(f"/participants/{PARTICIPANT}", headers=keys.bearer("ingest"))
        await audit_entries(client, keys, 5)

    # Every column of every entry but its id and time, as one text.
    counts = "counts::text" if isinstance(backend, PostgresBackend) else "counts"
    joined = "string_agg" if isinstance(backend, PostgresBackend) else "group_concat"
    columns = "coalesce(key_name, '') || path || action || method || coalesce(session_id, '')"
    row = await backend.fetch_one(
        f"SELECT count(*) AS n, {joined}({columns} || coalesce({counts}, ''), '|') AS stored"
        " FROM audit_log"
    )

    assert row is not None and row["n"] == 5
    for secret in (keys.ingest, keys.analyst, API_KEY, wrong_key, PARTICIPANT, "Okonkwo"):
        assert secret not in row["stored"]
    assert "api_key" in row["stored"] and "/participants/{participant_id}" in row["stored"]
