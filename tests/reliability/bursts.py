"""A burst of turns over HTTP that runs until the server under it is killed."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.backends import PostgresBackend, SqliteBackend
from tests.builders import NEW_SESSION_BODY
from tests.servers import launch_server

TURNS_PER_SESSION = 5


async def turns_until_killed(
    client: httpx.AsyncClient,
    acknowledged: dict[str, int],
    turn_body: Callable[[int], dict[str, Any]],
) -> None:
    """Create sessions and record turns in them until the server stops answering.

    `acknowledged` maps each session to the last turn the server answered 201 for.
    """
    try:
        while True:
            created = await client.post("/sessions", json=NEW_SESSION_BODY)
            assert created.status_code == 201, created.text
            session_id = created.json()["id"]
            acknowledged[session_id] = 0
            for number in range(1, TURNS_PER_SESSION + 1):
                response = await client.post(
                    f"/sessions/{session_id}/turns", json=turn_body(number)
                )
                assert response.status_code == 201, response.text
                acknowledged[session_id] = number
    except httpx.TransportError:
        return


def server_env(backend: SqliteBackend | PostgresBackend) -> dict[str, str]:
    """What a server process needs to use `backend`'s store."""
    if isinstance(backend, SqliteBackend):
        return {"DATABASE_PATH": str(backend.path), "DATABASE_URL": ""}
    return {"DATABASE_URL": backend.dsn, "DATABASE_POOL_SIZE": "4"}


async def burst_then_kill(
    cwd: Path,
    env: dict[str, str],
    rng: random.Random,
    acknowledged: dict[str, int],
    turn_body: Callable[[int], dict[str, Any]],
    writers: int,
) -> None:
    """Start a server, have `writers` clients record turns, and SIGKILL it at a random moment."""
    server = launch_server(cwd, env)
    await asyncio.to_thread(server.wait_until_healthy)
    limits = httpx.Limits(max_connections=writers)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=10) as client:
        running = [
            asyncio.create_task(turns_until_killed(client, acknowledged, turn_body))
            for _ in range(writers)
        ]
        await asyncio.sleep(rng.uniform(0.5, 1.5))
        server.kill()
        await asyncio.gather(*running)
