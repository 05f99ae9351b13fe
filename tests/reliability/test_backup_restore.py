"""Back up under write load, refuse to restore under a running server, restore when stopped."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.backends import stored_ids
from tests.builders import NEW_SESSION_BODY
from tests.servers import run_command, running_server

pytestmark = pytest.mark.sqlite

WRITERS = 8
WARM_UP_WRITES = 200


async def write_until(
    stop: asyncio.Event, warm: asyncio.Event, client: httpx.AsyncClient, acked: list[str]
) -> None:
    while not stop.is_set():
        response = await client.post("/sessions", json=NEW_SESSION_BODY)
        assert response.status_code == 201, response.text
        acked.append(response.json()["id"])
        if len(acked) >= WARM_UP_WRITES:
            warm.set()


async def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_command, *args, env=env, cwd=cwd)


async def test_backup_under_load_then_restore(tmp_path: Path) -> None:
    db_path = tmp_path / "live.db"
    copy_path = tmp_path / "backups" / "copy.db"
    copy_path.parent.mkdir()
    env = {"DATABASE_PATH": str(db_path), "DATABASE_URL": ""}
    acked: list[str] = []
    stop, warm = asyncio.Event(), asyncio.Event()

    with running_server(tmp_path, env) as url:
        limits = httpx.Limits(max_connections=WRITERS)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
            writers = [
                asyncio.create_task(write_until(stop, warm, client, acked)) for _ in range(WRITERS)
            ]
            await warm.wait()
            acked_before_backup = set(acked)
            backup = await run_cli("backup", str(copy_path), env=env, cwd=tmp_path)
            acked_during_backup = len(acked) - len(acked_before_backup)
            stop.set()
            await asyncio.gather(*writers)

            refused = await run_cli("restore", str(copy_path), env=env, cwd=tmp_path)

    assert backup.returncode == 0, backup.stderr
    assert acked_during_backup > 0, "the writers should go on while the backup runs"
    in_copy = stored_ids(copy_path)
    assert acked_before_backup <= in_copy
    assert in_copy <= set(acked)

    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        f"interview-system: The database {db_path} is in use by another process; "
        "stop it and try again."
    )
    assert stored_ids(db_path) == set(acked)

    restored = await run_cli("restore", str(copy_path), env=env, cwd=tmp_path)

    assert restored.returncode == 0, restored.stderr
    assert stored_ids(db_path) == in_copy
    with running_server(tmp_path, env) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for session_id in sorted(acked_before_backup)[:20]:
                assert (await client.get(f"/sessions/{session_id}")).status_code == 200
            assert (await client.post("/sessions", json=NEW_SESSION_BODY)).status_code == 201


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b"", "there is no such file"),
        (b"SQLite format 3\x00" + b"\x00" * 200, "it is not a session database"),
        (b"not a database at all" * 50, "it is not a session database"),
    ],
)
async def test_restore_refuses_a_file_that_is_not_a_sound_copy(
    tmp_path: Path, content: bytes, cause: str
) -> None:
    db_path = tmp_path / "live.db"
    env = {"DATABASE_PATH": str(db_path), "DATABASE_URL": ""}
    assert (await run_cli("migrate", env=env, cwd=tmp_path)).returncode == 0
    bad_copy = tmp_path / "bad.db"
    if content:
        bad_copy.write_bytes(content)
    before = db_path.read_bytes()

    result = await run_cli("restore", str(bad_copy), env=env, cwd=tmp_path)

    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"interview-system: cannot use the database {bad_copy}: {cause}")
    assert "Traceback" not in result.stderr
    assert db_path.read_bytes() == before


@pytest.mark.parametrize("command", ["backup", "restore"])
async def test_backup_and_restore_point_postgresql_users_to_its_own_tools(
    tmp_path: Path, command: str
) -> None:
    env = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}

    result = await run_cli(command, str(tmp_path / "copy.db"), env=env, cwd=tmp_path)

    assert result.returncode == 2
    assert "use pg_dump and pg_restore" in result.stderr
