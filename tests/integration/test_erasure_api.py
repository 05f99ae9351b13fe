"""DELETE /participants/{participant_id} and `interview-system erase`: admin only, counts
what went, 404 for a participant no session names, recorded in the audit log by counts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from src.api.audit import GATHER_SECONDS
from src.core.config import Settings
from src.core.keys import Scope, add_key
from src.persistence.repositories.session_repo import SessionRepository
from tests.backends import PostgresBackend, SqliteBackend
from tests.builders import NEW_SESSION_BODY, new_session
from tests.http import serve_in_process
from tests.integration.test_cli_commands import invoke
from tests.servers import running_server

PARTICIPANT = "participant-Ottoline-Brackenbury"


@dataclass
class Keys:
    reader: str
    writer: str
    admin: str

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, name)}"}


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    key_file = tmp_path / "keys.toml"
    return Keys(
        reader=add_key(key_file, "reader", [Scope.READ]),
        writer=add_key(key_file, "writer", [Scope.WRITE]),
        admin=add_key(key_file, "admin", [Scope.ADMIN]),
    )


@pytest.fixture
async def client(
    backend: SqliteBackend | PostgresBackend, keys: Keys, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings: Settings = backend.settings().model_copy(update={"api_keys": tmp_path / "keys.toml"})
    async with serve_in_process(settings) as http:
        yield http


async def start(client: httpx.AsyncClient, keys: Keys, utterances: int, **fields: str) -> str:
    """A session with `utterances` utterances (one a turn); its id."""
    created = await client.post(
        "/sessions", json={**NEW_SESSION_BODY, **fields}, headers=keys.bearer("writer")
    )
    assert created.status_code == 201, created.text
    session_id: str = created.json()["id"]
    for turn in range(1, utterances + 1):
        said = {"turn_number": turn, "speaker": "respondent", "text": f"turn {turn} said"}
        appended = await client.post(
            f"/sessions/{session_id}/utterances", json=said, headers=keys.bearer("writer")
        )
        assert appended.status_code == 201, appended.text
    return session_id


async def status_of(client: httpx.AsyncClient, keys: Keys, session_id: str) -> int:
    return (await client.get(f"/sessions/{session_id}", headers=keys.bearer("reader"))).status_code


async def test_erasure_answers_the_counts_and_takes_the_participants_sessions_in_every_study(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    erased_ids = [
        await start(client, keys, 3, study_id="st-one", participant_id=PARTICIPANT),
        await start(client, keys, 2, study_id="st-two", participant_id=PARTICIPANT),
    ]
    kept_ids = [
        await start(client, keys, 1, study_id="st-one", participant_id="someone-else"),
        await start(client, keys, 1, study_id="st-one"),
    ]

    response = await client.delete(f"/participants/{PARTICIPANT}", headers=keys.bearer("admin"))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    # Two created events, and one per turn or utterance written through the API.
    assert response.json() == {"sessions": 2, "utterances": 5, "events": 7}
    assert [await status_of(client, keys, session_id) for session_id in erased_ids] == [404, 404]
    assert [await status_of(client, keys, session_id) for session_id in kept_ids] == [200, 200]
    listed = await client.get(
        "/sessions", params={"participant_id": PARTICIPANT}, headers=keys.bearer("reader")
    )
    assert listed.json() == []


async def test_erasing_a_participant_no_session_names_is_404_problem_json_without_the_id(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    await start(client, keys, 1, participant_id="someone-else")

    response = await client.delete(f"/participants/{PARTICIPANT}", headers=keys.bearer("admin"))

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "participant_not_found"
    assert PARTICIPANT not in response.text


@pytest.mark.parametrize("key", ["reader", "writer"])
async def test_read_and_write_keys_may_not_erase(
    client: httpx.AsyncClient, keys: Keys, key: str
) -> None:
    session_id = await start(client, keys, 1, participant_id=PARTICIPANT)

    response = await client.delete(f"/participants/{PARTICIPANT}", headers=keys.bearer(key))

    assert response.status_code == 403
    assert response.json()["scope"] == "admin"
    assert await status_of(client, keys, session_id) == 200


async def test_the_audit_log_keeps_the_erasures_counts_and_never_the_participant(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    await start(client, keys, 4, participant_id=PARTICIPANT)

    await client.delete(f"/participants/{PARTICIPANT}", headers=keys.bearer("admin"))

    entries = await erasures(client, keys)
    assert [(entry["key_name"], entry["counts"]) for entry in entries] == [
        ("admin", {"sessions": 1, "utterances": 4, "events": 5})
    ]
    assert entries[0]["path"] == "/participants/{participant_id}"
    assert PARTICIPANT not in json.dumps(entries)


async def erasures(client: httpx.AsyncClient, keys: Keys) -> list[dict[str, Any]]:
    """The erasure entries, once one is written (entries are written just after)."""
    deadline = time.monotonic() + 10
    while True:
        response = await client.get(
            "/audit", params={"action": "erasure"}, headers=keys.bearer("admin")
        )
        entries: list[dict[str, Any]] = response.json()
        if entries or time.monotonic() > deadline:
            return entries
        await asyncio.sleep(GATHER_SECONDS / 2)


@pytest.mark.sqlite
def test_the_erase_command_prints_the_counts_and_records_them(tmp_path: Path) -> None:
    db_path = tmp_path / "erase.db"

    async def store() -> None:
        async with SessionRepository(db_path) as repo:
            await repo.create(new_session(participant_id=PARTICIPANT))
            await repo.create(new_session(participant_id=PARTICIPANT, study_id="st-x"))

    asyncio.run(store())

    result = invoke("erase", "--participant", PARTICIPANT, db_path=db_path)

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"sessions": 2, "utterances": 0, "events": 2}

    async def audit() -> list[Any]:
        async with SessionRepository(db_path) as repo:
            return list((await repo.list_audit()).items)

    (entry,) = asyncio.run(audit())
    assert (entry.action, entry.method, entry.key_name) == ("erasure", "CLI", None)
    assert entry.counts == {"sessions": 2, "utterances": 0, "events": 2}
    assert PARTICIPANT not in entry.model_dump_json()


@pytest.mark.sqlite
def test_the_erase_command_says_so_in_one_line_and_exits_1_for_an_unknown_participant(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "erase.db"
    assert invoke("migrate", db_path=db_path).exit_code == 0

    result = invoke("erase", "--participant", PARTICIPANT, db_path=db_path)

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "interview-system: No session names this participant."
    ]


@pytest.mark.sqlite
def test_the_server_log_never_names_an_erased_participant(tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(tmp_path / "logged.db"), "DATABASE_URL": "", "LOG_FORMAT": "json"}
    with running_server(tmp_path, env) as url, httpx.Client(base_url=url) as http:
        created = http.post("/sessions", json={**NEW_SESSION_BODY, "participant_id": PARTICIPANT})
        erased = http.delete(f"/participants/{PARTICIPANT}")
        missing = http.delete(f"/participants/{PARTICIPANT}")

    assert (created.status_code, erased.status_code, missing.status_code) == (201, 200, 404)
    log = "".join(path.read_text() for path in sorted(tmp_path.glob("server-*.log")))
    requests = [json.loads(line) for line in log.splitlines() if '"request"' in line]
    erasures = [line["path"] for line in requests if line["path"].startswith("/participants/")]
    assert erasures == ["/participants/{participant_id}"] * 2
    assert PARTICIPANT not in log
