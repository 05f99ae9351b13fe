"""Another process holds the write lock past the busy timeout: writes get 503, reads go on."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from src.api.errors import PROBLEM_MEDIA_TYPE
from src.persistence.database import BUSY_TIMEOUT_SECONDS
from tests.builders import NEW_SESSION_BODY
from tests.servers import running_server

pytestmark = pytest.mark.sqlite


# Takes the write lock, says so, and keeps it until its stdin closes.
_HOLD_WRITE_LOCK = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute("UPDATE sessions SET turn_count = turn_count WHERE 0")
print("locked", flush=True)
sys.stdin.read()
connection.execute("ROLLBACK")
"""


@contextmanager
def write_lock_held_by_another_process(db_path: Path) -> Iterator[None]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITE_LOCK, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline() == "locked\n"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["retry-after"] == "1"
    problem = response.json()
    assert problem["status"] == 503
    assert problem["detail"] == "The database is busy; try again shortly."
    assert "sqlite" not in response.text.lower()


async def test_writes_get_503_while_reads_go_on_and_all_recovers(tmp_path: Path) -> None:
    db_path = tmp_path / "locked.db"
    env = {"DATABASE_PATH": str(db_path), "DATABASE_URL": ""}
    with running_server(tmp_path, env) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            before = [
                (await client.post("/sessions", json=NEW_SESSION_BODY)).json() for _ in range(3)
            ]
            target = before[0]

            with write_lock_held_by_another_process(db_path):
                create = asyncio.create_task(client.post("/sessions", json=NEW_SESSION_BODY))
                state = {**target["state"], "turn_count": 5}
                update = asyncio.create_task(
                    client.put(f"/sessions/{target['id']}/state", json=state)
                )
                delete = asyncio.create_task(client.delete(f"/sessions/{before[1]['id']}"))
                await asyncio.sleep(BUSY_TIMEOUT_SECONDS / 5)

                # The writes wait for the lock; meanwhile reads are answered.
                read = await client.get(f"/sessions/{target['id']}")
                listed = await client.get("/sessions")
                health = await client.get("/health")
                assert not any(task.done() for task in (create, update, delete))
                assert read.status_code == 200 and read.json() == target
                assert {s["id"] for s in listed.json()} == {s["id"] for s in before}
                assert health.status_code == 200

                for task in (create, update, delete):
                    assert_unavailable(await task)

            # Lock released: nothing was lost or half-done, and writes work again.
            unchanged = await client.get(f"/sessions/{target['id']}")
            assert unchanged.json() == target
            created = await client.post("/sessions", json=NEW_SESSION_BODY)
            assert created.status_code == 201
            updated = await client.put(f"/sessions/{target['id']}/state", json=state)
            assert updated.status_code == 200 and updated.json()["version"] == 2
            assert (await client.delete(f"/sessions/{before[1]['id']}")).status_code == 204

    connection = sqlite3.connect(db_path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {row[0] for row in connection.execute("SELECT id FROM sessions")}
    finally:
        connection.close()
    assert stored == {before[0]["id"], before[2]["id"], created.json()["id"]}
