"""Two API processes on one PostgreSQL database: shared sessions, no lost update."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.backends import PostgresBackend
from tests.builders import NEW_SESSION_BODY
from tests.servers import running_server

pytestmark = pytest.mark.postgres

CLIENTS = 32
ATTEMPTS_PER_CLIENT = 8
SESSIONS = 4


async def update_loop(
    client: httpx.AsyncClient, session_ids: list[str], worker: int
) -> list[tuple[str, int, int]]:
    """Read-modify-write with If-Match; returns (session, status, resulting version) per try."""
    outcomes = []
    for attempt in range(ATTEMPTS_PER_CLIENT):
        session_id = session_ids[(worker + attempt) % len(session_ids)]
        current = await client.get(f"/sessions/{session_id}")
        assert current.status_code == 200
        state = {**current.json()["state"], "turn_count": current.json()["version"]}
        response = await client.put(
            f"/sessions/{session_id}/state",
            json=state,
            headers={"If-Match": current.headers["etag"]},
        )
        version = response.json().get("version", 0) if response.status_code == 200 else 0
        outcomes.append((session_id, response.status_code, version))
    return outcomes


async def test_two_servers_share_sessions_and_lose_no_update(
    postgres_backend: PostgresBackend, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": postgres_backend.dsn, "DATABASE_POOL_SIZE": "8"}
    with ExitStack() as servers:
        urls = [servers.enter_context(running_server(tmp_path, env)) for _ in range(2)]
        first, second = (httpx.AsyncClient(base_url=url, timeout=30) for url in urls)
        async with first, second:
            created = [
                (await first.post("/sessions", json=NEW_SESSION_BODY)).json()
                for _ in range(SESSIONS)
            ]
            for session in created:
                assert (await second.get(f"/sessions/{session['id']}")).json() == session

            ids = [session["id"] for session in created]
            results = await asyncio.gather(
                *(
                    update_loop((first, second)[worker % 2], ids, worker)
                    for worker in range(CLIENTS)
                )
            )
            finals = {sid: (await first.get(f"/sessions/{sid}")).json() for sid in ids}

    outcomes = [outcome for worker in results for outcome in worker]
    statuses = Counter(status for _, status, _ in outcomes)
    assert set(statuses) <= {200, 412}, statuses
    assert statuses[200] > 0
    for session_id in ids:
        won = sorted(v for sid, status, v in outcomes if sid == session_id and status == 200)
        # Each success is exactly one version step: 2, 3, 4, ... with no gap or repeat.
        assert won == list(range(2, 2 + len(won)))
        assert finals[session_id]["version"] == 1 + len(won)
        assert finals[session_id]["state"]["turn_count"] == len(won)
