"""GET /events over real server processes: resuming after a lost client misses nothing and
repeats nothing, across two servers on one database; bad ids and filters are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from src.domain.models.session import utc_now
from src.persistence.repositories.session_repo import SessionRepository
from tests.backends import PostgresBackend, SqliteBackend
from tests.builders import NEW_SESSION_BODY
from tests.servers import running_server
from tests.sse import Message, messages, next_events

Backend = SqliteBackend | PostgresBackend
TURNS = 100


def server_env(backend: Backend) -> dict[str, str]:
    if isinstance(backend, SqliteBackend):
        return {"DATABASE_PATH": str(backend.path), "DATABASE_URL": ""}
    return {"DATABASE_URL": backend.dsn, "DATABASE_POOL_SIZE": "8"}


@contextmanager
def two_servers(backend: Backend, cwd: Path) -> Iterator[tuple[str, str]]:
    env = {**server_env(backend), "API_KEY": "", "API_KEYS": ""}
    with running_server(cwd, env) as writer, running_server(cwd, env) as reader:
        yield writer, reader


@asynccontextmanager
async def listening(
    url: str, headers: dict[str, str] | None = None, **params: Any
) -> AsyncIterator[AsyncIterator[Message]]:
    async with (
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30, read=None)) as client,
        client.stream("GET", "/events", params=params, headers=headers or {}) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield messages(response)


async def record_turn(client: httpx.AsyncClient, session_id: str, number: int) -> None:
    response = await client.post(
        f"/sessions/{session_id}/turns",
        json={
            "utterances": [
                {"turn_number": number, "speaker": "interviewer", "text": f"Question {number}"},
                {"turn_number": number, "speaker": "respondent", "text": f"Answer {number}"},
            ],
            "state_patch": {"turn_count": number},
        },
    )
    assert response.status_code == 201, response.text


async def test_a_client_that_reconnects_gets_exactly_the_events_it_missed_from_another_server(
    backend: Backend, tmp_path: Path
) -> None:
    with two_servers(backend, tmp_path) as (writer_url, reader_url):
        async with httpx.AsyncClient(base_url=writer_url, timeout=30) as writer:
            created = await writer.post("/sessions", json=NEW_SESSION_BODY)
            session_id = created.json()["id"]

            async with listening(reader_url, session_id=session_id) as stream:
                await record_turn(writer, session_id, 1)
                (first,) = await next_events(stream, 1)
            # The client is gone mid-stream; the interview goes on without it.
            assert first.event == "session.turn_recorded"
            assert first.json()["data"]["turn_number"] == 1
            for number in range(2, TURNS + 2):
                await record_turn(writer, session_id, number)

            resume = {"Last-Event-ID": first.id or ""}
            async with listening(reader_url, resume, session_id=session_id) as stream:
                missed = await next_events(stream, TURNS)
                await record_turn(writer, session_id, TURNS + 2)
                (after,) = await next_events(stream, 1)

    assert [message.event for message in missed] == ["session.turn_recorded"] * TURNS
    turn_numbers = [message.json()["data"]["turn_number"] for message in missed]
    assert turn_numbers == list(range(2, TURNS + 2))
    ids = [int(first.id or 0)] + [int(message.id or 0) for message in missed]
    assert ids == sorted(set(ids))
    assert [message.json()["id"] for message in missed] == ids[1:]
    # Nothing repeated, nothing extra: the next event is the next write.
    assert after.json()["data"]["turn_number"] == TURNS + 2
    assert int(after.id or 0) > ids[-1]


async def test_every_event_shows_the_contract_fields(backend: Backend, tmp_path: Path) -> None:
    with two_servers(backend, tmp_path) as (writer_url, reader_url):
        async with (
            httpx.AsyncClient(base_url=writer_url, timeout=30) as writer,
            listening(reader_url, study_id="study-events") as stream,
        ):
            created = await writer.post(
                "/sessions", json={**NEW_SESSION_BODY, "study_id": "study-events"}
            )
            session_id = created.json()["id"]
            await writer.post("/sessions", json=NEW_SESSION_BODY)  # another study: not shown
            await writer.post(
                f"/sessions/{session_id}/utterances",
                json={"turn_number": 1, "speaker": "respondent", "text": "<b>hi</b>"},
            )
            await writer.post(f"/sessions/{session_id}/pause")
            await writer.delete(f"/sessions/{session_id}")
            received = await next_events(stream, 4)

    assert [message.event for message in received] == [
        "session.created",
        "session.utterance_added",
        "session.status_changed",
        "session.deleted",
    ]
    for message in received:
        event = message.json()
        assert set(event) == {"id", "type", "session_id", "study_id", "version", "at", "data"}
        assert (event["type"], str(event["id"])) == (message.event, message.id)
        assert (event["session_id"], event["study_id"]) == (session_id, "study-events")
    assert received[1].json()["data"]["utterance"]["text"] == "<b>hi</b>"
    assert received[2].json()["data"] == {"status": "paused"}


@pytest.mark.sqlite
async def test_bad_event_ids_and_filters_are_refused(
    sqlite_backend: SqliteBackend, tmp_path: Path
) -> None:
    with running_server(tmp_path, server_env(sqlite_backend)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for bad in ("abc", "-1", "1.5", "", "+5", "1e3", "0x10"):
                response = await client.get("/events", headers={"Last-Event-ID": bad})
                assert response.status_code == 400, (bad, response.text)
                assert response.headers["content-type"] == "application/problem+json"
            # Whole numbers past any id there is, with or without leading zeros: past the
            # newest, so 410 as any such id.
            for ahead_of_all in ("9" * 19, "9" * 30, "0" * 19 + "1", "9" * 5000, "0" * 2000 + "7"):
                response = await client.get("/events", headers={"Last-Event-ID": ahead_of_all})
                assert response.status_code == 410, (ahead_of_all, response.text)
            assert (await client.get("/events", params={"after": "x1"})).status_code == 400
            unknown = await client.get("/events", params={"sesion_id": "a"})
            assert unknown.status_code == 422
            assert unknown.json()["errors"][0]["field"].endswith("sesion_id")
            await client.post("/sessions", json=NEW_SESSION_BODY)
            # Retention trims everything written so far: resuming before it is 410.
            async with SessionRepository(sqlite_backend.path) as repository:
                trimmed = await repository.trim_events(utc_now())
            assert trimmed >= 1
            gone = await client.get("/events", params={"after": "0"})
            assert gone.status_code == 410
            assert gone.json()["trimmed_through"] == trimmed
            # An id past the newest came from an older copy of the log (a restore): its
            # ids after it name other events now, so resuming there would skip them.
            async with client.stream(
                "GET", "/events", headers={"Last-Event-ID": str(trimmed + 1)}
            ) as ahead:
                assert ahead.status_code == 410
                await ahead.aread()
            assert f"newest id is {trimmed}" in ahead.json()["detail"]
            # Resuming from the trimmed bound itself misses nothing: it streams, however
            # many zeros lead the id.
            for resume in (str(trimmed), "0" * 2000 + str(trimmed)):
                async with client.stream(
                    "GET", "/events", headers={"Last-Event-ID": resume}
                ) as response:
                    assert response.status_code == 200
