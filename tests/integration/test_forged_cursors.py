"""Cursors are signed: a forged one, or one whose key no query can bind, answers 422."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from src.core.errors import InvalidCursorError
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.backends import PostgresBackend, SqliteBackend, forge_cursor
from tests.builders import new_session

Backend = SqliteBackend | PostgresBackend

# Sort keys a listing never hands out, each of which once failed to bind (500).
SESSION_KEYS: dict[str, Any] = {
    "date_that_overflows_in_utc": ["0001-01-01T00:00:00+14:00", "s-1"],
    "date_past_year_9999_in_utc": ["9999-12-31T23:59:59-14:00", "s-1"],
    "date_without_a_zone": ["2026-01-01T00:00:00", "s-1"],
    "id_with_a_lone_surrogate": ["2026-01-01T00:00:00+00:00", "s-\ud800"],
    "id_with_nul": ["2026-01-01T00:00:00+00:00", "s-\x00"],
    "id_too_long": ["2026-01-01T00:00:00+00:00", "s" * 129],
    "id_as_a_list": ["2026-01-01T00:00:00+00:00", ["s-1"]],
    "date_as_a_number": [20260101, "s-1"],
    "one_value": ["2026-01-01T00:00:00+00:00"],
    "an_object": {"created_at": "2026-01-01T00:00:00+00:00", "id": "s-1"},
}
TURN_KEYS: dict[str, Any] = {
    "turn_past_int8": [2**63, "interviewer"],
    "turn_past_int4": [2**31, "interviewer"],
    "negative_turn": [-1, "interviewer"],
    "turn_as_a_boolean": [True, "interviewer"],
    "turn_as_text": ["1", "interviewer"],
    "turn_as_a_float": [1.5, "interviewer"],
    "speaker_as_a_list": [1, ["interviewer"]],
    "unknown_speaker": [1, "narrator"],
    "speaker_with_nul": [1, "interviewer\x00"],
}


def unsigned(sort_key: Any) -> str:
    """A cursor as this store made them before they were signed: base64 of the JSON."""
    return base64.urlsafe_b64encode(json.dumps(sort_key).encode()).decode().rstrip("=")


async def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_cursor"
    assert response.json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("shape", SESSION_KEYS)
async def test_a_session_cursor_that_cannot_bind_is_refused(
    backend: Backend, repo: SessionRepositoryProtocol, client: httpx.AsyncClient, shape: str
) -> None:
    await repo.create(new_session())
    cursor = await forge_cursor(backend, SESSION_KEYS[shape])

    with pytest.raises(InvalidCursorError):
        await repo.list_sessions(cursor=cursor)
    await assert_refused(await client.get("/sessions", params={"cursor": cursor}))


@pytest.mark.parametrize("shape", TURN_KEYS)
async def test_an_utterance_cursor_that_cannot_bind_is_refused(
    backend: Backend, repo: SessionRepositoryProtocol, client: httpx.AsyncClient, shape: str
) -> None:
    session = await repo.create(new_session())
    await repo.append_utterance(
        session.id, NewUtterance(turn_number=1, speaker=Speaker.INTERVIEWER, text="Hello")
    )
    cursor = await forge_cursor(backend, TURN_KEYS[shape])

    with pytest.raises(InvalidCursorError):
        await repo.list_utterances(session.id, cursor=cursor)
    response = await client.get(f"/sessions/{session.id}/utterances", params={"cursor": cursor})
    await assert_refused(response)


@pytest.mark.parametrize(
    "sort_key", [["2026-01-01T00:00:00+00:00", "s-1"], [1, "interviewer"]], ids=["session", "turn"]
)
async def test_a_cursor_without_the_store_s_signature_is_refused(
    backend: Backend, repo: SessionRepositoryProtocol, client: httpx.AsyncClient, sort_key: Any
) -> None:
    session = await repo.create(new_session())
    genuine = await forge_cursor(backend, sort_key)
    payload, signature = genuine.split(".")
    tampered = await forge_cursor(backend, [*sort_key[:-1], sort_key[-1] + "x"])
    forged = [
        unsigned(sort_key),
        f"{payload}.{'A' * len(signature)}",
        f"{tampered.split('.')[0]}.{signature}",
        f"{payload}.",
        f"{payload}.{signature}.{signature}",
    ]

    for cursor in forged:
        with pytest.raises(InvalidCursorError):
            await repo.list_sessions(cursor=cursor)
        with pytest.raises(InvalidCursorError):
            await repo.list_utterances(session.id, cursor=cursor)
        await assert_refused(await client.get("/sessions", params={"cursor": cursor}))
        response = await client.get(f"/sessions/{session.id}/utterances", params={"cursor": cursor})
        await assert_refused(response)


async def test_every_repository_on_one_database_accepts_the_others_cursors(
    backend: Backend,
) -> None:
    async with backend.open() as first, backend.open() as second:
        for _ in range(3):
            await first.create(new_session())
        page = await first.list_sessions(limit=1)
        assert page.next_cursor is not None

        following = await second.list_sessions(limit=1, cursor=page.next_cursor)

    assert len(following.items) == 1 and following.items[0] != page.items[0]


async def test_a_cursor_from_another_database_is_refused(
    backend: Backend, repo: SessionRepositoryProtocol, sqlite_backend_elsewhere: SqliteBackend
) -> None:
    async with sqlite_backend_elsewhere.open() as elsewhere:
        for _ in range(2):
            await elsewhere.create(new_session())
        page = await elsewhere.list_sessions(limit=1)
    assert page.next_cursor is not None

    with pytest.raises(InvalidCursorError):
        await repo.list_sessions(limit=1, cursor=page.next_cursor)
