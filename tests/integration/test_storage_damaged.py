"""A stored row this program cannot show is an error about that row, never a bare 500."""

from __future__ import annotations

import json

import httpx
import pytest

from src.core.errors import StorageDamagedError
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.backends import PostgresBackend, SqliteBackend
from tests.builders import new_session

Backend = SqliteBackend | PostgresBackend


def nested(levels: int) -> str:
    """JSON text of objects nested `levels` deep."""
    return '{"a":' * levels + "1" + "}" * levels


def assert_damaged(response: httpx.Response, session_id: str) -> None:
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "storage_damaged"
    assert problem["session_id"] == session_id
    assert session_id in problem["detail"]


async def test_a_session_row_the_model_refuses_is_reported_as_damaged(
    backend: Backend, repo: SessionRepositoryProtocol, client: httpx.AsyncClient
) -> None:
    sound = await repo.create(new_session())
    damaged = await repo.create(new_session())
    # Blank once trimmed: the table's CHECK allows it, the model does not.
    await backend.execute(f"UPDATE sessions SET concept_name = '   ' WHERE id = '{damaged.id}'")

    with pytest.raises(StorageDamagedError) as raised:
        await repo.get(damaged.id)
    assert raised.value.session_id == damaged.id
    assert await repo.get(sound.id) == sound
    assert_damaged(await client.get(f"/sessions/{damaged.id}"), damaged.id)
    assert (await client.get(f"/sessions/{sound.id}")).status_code == 200
    # The listing leaves the damaged session out instead of failing for all.
    listing = await client.get("/sessions")
    assert listing.status_code == 200, listing.text
    assert [session["id"] for session in listing.json()] == [sound.id]


async def test_a_listing_pages_past_damaged_rows(
    backend: Backend, repo: SessionRepositoryProtocol
) -> None:
    sessions = [await repo.create(new_session()) for _ in range(5)]
    for damaged in sessions[1:4]:
        await backend.execute(f"UPDATE sessions SET concept_name = '   ' WHERE id = '{damaged.id}'")

    shown: list[str] = []
    cursor: str | None = None
    while True:
        page = await repo.list_sessions(limit=2, cursor=cursor)
        shown += [session.id for session in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert shown == [sessions[4].id, sessions[0].id]


async def test_a_write_to_a_damaged_session_is_reported_as_damaged(
    backend: Backend, repo: SessionRepositoryProtocol, client: httpx.AsyncClient
) -> None:
    damaged = await repo.create(new_session())
    await backend.execute(f"UPDATE sessions SET concept_name = '   ' WHERE id = '{damaged.id}'")

    assert_damaged(await client.post(f"/sessions/{damaged.id}/pause"), damaged.id)


async def test_an_utterance_nested_too_deep_to_show_is_reported_as_damaged(
    backend: Backend, repo: SessionRepositoryProtocol, client: httpx.AsyncClient
) -> None:
    session = await repo.create(new_session())
    await repo.append_utterance(
        session.id, NewUtterance(turn_number=1, speaker=Speaker.INTERVIEWER, text="Hello")
    )
    # As an older version of this program stored it, before nesting had a limit.
    await backend.execute(
        "INSERT INTO utterances (session_id, turn_number, speaker, text, metadata, created_at)"
        f" SELECT id, 1, 'respondent', 'Hi', '{nested(300)}', created_at FROM sessions"
        f" WHERE id = '{session.id}'"
    )

    with pytest.raises(StorageDamagedError) as raised:
        await repo.list_utterances(session.id)
    assert raised.value.session_id == session.id
    assert_damaged(await client.get(f"/sessions/{session.id}/utterances"), session.id)
    assert_damaged(await client.get(f"/sessions/{session.id}/resume"), session.id)
    assert (await client.get(f"/sessions/{session.id}")).status_code == 200
    shallow = await client.get(f"/sessions/{session.id}/utterances", params={"limit": 1})
    assert shallow.status_code == 200 and len(shallow.json()) == 1


async def test_metadata_nested_as_deep_as_a_response_can_show_is_shown(
    backend: Backend, repo: SessionRepositoryProtocol, client: httpx.AsyncClient
) -> None:
    session = await repo.create(new_session())
    await backend.execute(
        "INSERT INTO utterances (session_id, turn_number, speaker, text, metadata, created_at)"
        f" SELECT id, 1, 'respondent', 'Hi', '{nested(128)}', created_at FROM sessions"
        f" WHERE id = '{session.id}'"
    )

    response = await client.get(f"/sessions/{session.id}/utterances")

    assert response.status_code == 200
    assert response.json()[0]["metadata"] == json.loads(nested(128))
