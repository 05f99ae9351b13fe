"""The database's file system runs out of space: writes get 507, nothing stored is harmed."""

from __future__ import annotations

import errno
import sqlite3
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from src.api.errors import PROBLEM_MEDIA_TYPE
from tests.backends import postgres_admin, postgres_schema
from tests.reliability.conftest import Tmpfs, cannot_run, mounted_tmpfs
from tests.servers import running_server

MAX_WRITES = 5_000
NEW_SESSION = {"methodology": "mec", "concept_id": "c", "concept_name": "Coffee " * 28}


def fill(directory: Path) -> Path:
    """Write a file until the file system has no space left; return it."""
    filler = directory / "filler"
    chunk = b"\xff" * 65536
    with filler.open("wb", buffering=0) as file:
        while True:
            try:
                file.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                chunk = chunk[: len(chunk) // 2]
                if not chunk:
                    return filler


def assert_full(response: httpx.Response) -> None:
    assert response.status_code == 507, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["retry-after"] == "1"
    problem = response.json()
    assert problem["code"] == "storage_full"
    assert problem["detail"] == "The disk holding the database is full; no change was stored."


async def fill_then_free(url: str, disk: Tmpfs) -> list[dict[str, Any]]:
    """Write until the disk is full, check what is stored, free space, write again.

    Returns every session the server acknowledged, as it last answered.
    """
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        stored = [(await client.post("/sessions", json=NEW_SESSION)).json() for _ in range(20)]
        filler = fill(disk.path)

        # Writes may still land in space the database already holds; keep
        # writing until the file system refuses one.
        for _ in range(MAX_WRITES):
            response = await client.post("/sessions", json=NEW_SESSION)
            if response.status_code != 201:
                break
            stored.append(response.json())
        assert_full(response)
        target = stored[0]
        state = {**target["state"], "turn_count": 1}
        update = await client.put(f"/sessions/{target['id']}/state", json=state)
        if update.status_code == 200:
            target = stored[0] = update.json()
        else:
            assert_full(update)

        for session in stored:
            assert (await client.get(f"/sessions/{session['id']}")).json() == session

        filler.unlink()
        created = await client.post("/sessions", json=NEW_SESSION)
        assert created.status_code == 201, created.text
        stored.append(created.json())
        state = {**target["state"], "turn_count": 2}
        updated = await client.put(f"/sessions/{target['id']}/state", json=state)
        assert updated.status_code == 200, updated.text
        stored[0] = updated.json()
    return stored


@pytest.mark.sqlite
async def test_writes_get_507_when_the_disk_is_full_and_work_again_with_space(
    tmpfs: Tmpfs,
) -> None:
    db_path = tmpfs.path / "full.db"
    env = {"DATABASE_PATH": str(db_path), "DATABASE_URL": ""}
    with running_server(tmpfs.path.parent, env) as url:
        stored = await fill_then_free(url, tmpfs)

    connection = sqlite3.connect(db_path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        versions = dict(connection.execute("SELECT id, version FROM sessions").fetchall())
    finally:
        connection.close()
    assert versions == {session["id"]: session["version"] for session in stored}


@asynccontextmanager
async def small_tablespace() -> AsyncIterator[tuple[str, Tmpfs]]:
    """A PostgreSQL tablespace on an 8 MiB tmpfs; yields its name and the tmpfs."""
    async with postgres_admin() as admin:
        try:
            data_directory = Path(await admin.fetchval("SHOW data_directory"))
        except asyncpg.InsufficientPrivilegeError:
            cannot_run("the test's PostgreSQL role may not read the server's settings")
        if not data_directory.is_dir():
            cannot_run(
                f"PostgreSQL's data directory {data_directory} is not visible here "
                "(is the server on another machine?), so the test cannot fill its disk"
            )
        # The server's own user must reach the folder and own the tablespace.
        mount_point = Path(tempfile.mkdtemp(prefix="interview-tablespace-"))
        mount_point.chmod(0o755)
        try:
            with mounted_tmpfs(mount_point, owner=data_directory.stat().st_uid) as disk:
                name = f"small_{uuid.uuid4().hex}"
                try:
                    await admin.execute(f"CREATE TABLESPACE {name} LOCATION '{mount_point}'")
                except asyncpg.InsufficientPrivilegeError:
                    cannot_run("the test's PostgreSQL role may not create a tablespace")
                try:
                    yield name, disk
                finally:
                    await admin.execute(f"DROP TABLESPACE {name}")
        finally:
            mount_point.rmdir()


@pytest.mark.postgres
async def test_postgres_writes_get_507_when_its_disk_is_full_and_work_again_with_space(
    tmp_path: Path,
) -> None:
    async with small_tablespace() as (tablespace, disk):
        async with postgres_schema(default_tablespace=tablespace) as dsn:
            env = {"DATABASE_URL": dsn, "DATABASE_POOL_SIZE": "2"}
            with running_server(tmp_path, env) as url:
                stored = await fill_then_free(url, disk)

            connection = await asyncpg.connect(dsn)
            try:
                placed = await connection.fetchval(
                    "SELECT spcname FROM pg_tables JOIN pg_tablespace ON spcname = tablespace"
                    " WHERE tablename = 'sessions' AND schemaname = current_schema()"
                )
                rows = await connection.fetch("SELECT id, version FROM sessions")
            finally:
                await connection.close()
    assert placed == tablespace
    versions = {row["id"]: row["version"] for row in rows}
    assert versions == {session["id"]: session["version"] for session in stored}
