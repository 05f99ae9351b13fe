"""Retention on every backend: idle active sessions pause, long-paused ones are abandoned."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from src.domain.models.session import SessionStatus, utc_now
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.retention import sweep
from tests.backends import PostgresBackend, SqliteBackend
from tests.builders import NEW_SESSION_BODY, new_session
from tests.http import serve_in_process

HOUR = timedelta(hours=1)


async def test_nothing_moves_before_its_time(repo: SessionRepositoryProtocol) -> None:
    active = await repo.create(new_session())
    paused = await repo.create(new_session(status="paused"))

    result = await sweep(
        repo, idle_pause_after=HOUR, abandon_paused_after=HOUR, now=utc_now() + HOUR / 2
    )

    assert result.paused == [] and result.abandoned == []
    assert await repo.get(active.id) == active
    assert await repo.get(paused.id) == paused


async def test_idle_sessions_pause_then_are_abandoned_as_the_clock_moves(
    repo: SessionRepositoryProtocol,
) -> None:
    active = await repo.create(new_session())
    completed = await repo.create(new_session(status="completed"))
    start = utc_now()

    first = await sweep(
        repo, idle_pause_after=HOUR, abandon_paused_after=HOUR, now=start + 2 * HOUR
    )
    paused = await repo.get(active.id)

    assert first.paused == [active.id] and first.abandoned == []
    assert paused is not None and paused.status == SessionStatus.PAUSED
    assert paused.version == active.version + 1

    # The pause was a write: it starts the paused clock again, on the real clock.
    second = await sweep(
        repo, idle_pause_after=HOUR, abandon_paused_after=HOUR, now=utc_now() + 2 * HOUR
    )
    abandoned = await repo.get(active.id)

    assert second.abandoned == [active.id]
    assert abandoned is not None and abandoned.status == SessionStatus.ABANDONED
    assert abandoned.ended_at is not None and abandoned.version == active.version + 2
    assert await repo.get(completed.id) == completed


async def test_a_rule_left_unset_is_off(repo: SessionRepositoryProtocol) -> None:
    active = await repo.create(new_session())
    paused = await repo.create(new_session(status="paused"))

    result = await sweep(
        repo, idle_pause_after=None, abandon_paused_after=HOUR, now=utc_now() + 2 * HOUR
    )

    assert result.abandoned == [paused.id]
    assert await repo.get(active.id) == active


async def test_a_recent_utterance_keeps_a_session_active(repo: SessionRepositoryProtocol) -> None:
    quiet = await repo.create(new_session())
    talking = await repo.create(new_session())
    said = await repo.append_utterance(
        talking.id, NewUtterance(turn_number=1, speaker=Speaker.RESPONDENT, text="still here")
    )
    assert talking.updated_at < said.created_at

    # The cut-off falls exactly on the utterance: both rows are older than it.
    result = await sweep(
        repo, idle_pause_after=HOUR, abandon_paused_after=None, now=said.created_at + HOUR
    )

    assert result.paused == [quiet.id]


async def test_the_server_sweeps_in_the_background(
    backend: SqliteBackend | PostgresBackend,
) -> None:
    settings = backend.settings().model_copy(
        update={
            "idle_pause_after": timedelta(milliseconds=50),
            "retention_sweep_interval": timedelta(milliseconds=20),
        }
    )
    async with serve_in_process(settings) as client:
        session = (await client.post("/sessions", json=NEW_SESSION_BODY)).json()

        status = await wait_for_status(client, session["id"], "paused")

    assert status == "paused"


async def wait_for_status(client: httpx.AsyncClient, session_id: str, wanted: str) -> str:
    status = ""
    for _ in range(200):
        status = (await client.get(f"/sessions/{session_id}")).json()["status"]
        if status == wanted:
            break
        await asyncio.sleep(0.02)
    return status
