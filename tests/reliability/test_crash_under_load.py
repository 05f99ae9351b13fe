"""SIGKILL the server at random moments under concurrent writes: nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.builders import NEW_SESSION_BODY
from tests.servers import launch_server

pytestmark = pytest.mark.sqlite

KILLS = 5
WRITERS = 16


async def write_until_killed(client: httpx.AsyncClient, acknowledged: dict[str, int]) -> None:
    """Create sessions and update their state until the server stops answering."""
    try:
        while True:
            created = await client.post("/sessions", json=NEW_SESSION_BODY)
            assert created.status_code == 201, created.text
            session = created.json()
            acknowledged[session["id"]] = 1
            for turn in range(1, 4):
                state = {**session["state"], "turn_count": turn}
                updated = await client.put(f"/sessions/{session['id']}/state", json=state)
                assert updated.status_code == 200, updated.text
                acknowledged[session["id"]] = updated.json()["version"]
    except httpx.TransportError:
        return


async def _first_acknowledgement(acknowledged: dict[str, int], writes_before: int) -> None:
    for _ in range(3000):
        if sum(acknowledged.values()) > writes_before:
            return
        await asyncio.sleep(0.01)


def stored_versions(db_path: Path) -> dict[str, int]:
    connection = sqlite3.connect(db_path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return dict(connection.execute("SELECT id, version FROM sessions").fetchall())
    finally:
        connection.close()


async def test_acknowledged_writes_survive_repeated_sigkill(tmp_path: Path) -> None:
    db_path = tmp_path / "crashed.db"
    env = {"DATABASE_PATH": str(db_path), "DATABASE_URL": ""}
    rng = random.Random(2026)
    acknowledged: dict[str, int] = {}

    for _ in range(KILLS):
        writes_before = sum(acknowledged.values())
        server = launch_server(tmp_path, env)
        await asyncio.to_thread(server.wait_until_healthy)
        # One client for all writers, built before the clock starts: building
        # an httpx client loads certificates, tens of milliseconds each.
        limits = httpx.Limits(max_connections=WRITERS)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=10) as client:
            writers = [
                asyncio.create_task(write_until_killed(client, acknowledged))
                for _ in range(WRITERS)
            ]
            # A random moment of the burst, once it has begun: a server busy with
            # its first requests after a restart may take longer than the pause.
            await _first_acknowledgement(acknowledged, writes_before)
            await asyncio.sleep(rng.uniform(0.1, 1.0))
            server.kill()
            await asyncio.gather(*writers)

        stored = stored_versions(db_path)
        missing = [sid for sid in acknowledged if sid not in stored]
        behind = [sid for sid, version in acknowledged.items() if stored.get(sid, 0) < version]
        assert missing == [] and behind == []
        assert sum(acknowledged.values()) > writes_before, "no write was acknowledged this time"
