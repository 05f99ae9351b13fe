"""The database file deleted or replaced under a running server: no write is acknowledged.

An open SQLite connection keeps an unlinked file alive and goes on writing
to it, so without a check every write after `rm` or `mv backup live` would
be acknowledged into a file nobody will open again.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from src.core.errors import StorageUnavailableError
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session
from tests.servers import SERVER, launch_server, running_server

pytestmark = pytest.mark.sqlite

NEW_SESSION = {"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"}
MISSING = "The database file is missing."
REPLACED = "The database file was replaced"
WAL_GONE = "The database's -wal file was deleted or replaced; restart the server."


def back_up(db_path: Path, copy_path: Path) -> None:
    """A consistent copy, as `interview-system backup` or sqlite3's .backup makes one."""
    source, target = sqlite3.connect(db_path), sqlite3.connect(copy_path)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def stored_ids(db_path: Path) -> set[str]:
    connection = sqlite3.connect(db_path)
    try:
        return {row[0] for row in connection.execute("SELECT id FROM sessions")}
    finally:
        connection.close()


async def test_every_write_after_the_file_is_deleted_is_refused(
    sqlite_repo: SessionRepository, db_path: Path
) -> None:
    kept = await sqlite_repo.create(new_session())
    db_path.unlink()

    lone = await asyncio.gather(sqlite_repo.create(new_session()), return_exceptions=True)
    burst = await asyncio.gather(
        *(sqlite_repo.create(new_session()) for _ in range(30)), return_exceptions=True
    )
    update = await asyncio.gather(sqlite_repo.delete(kept.id), return_exceptions=True)

    for result in [*lone, *burst, *update]:
        assert isinstance(result, StorageUnavailableError), result
        assert result.detail == MISSING
    with pytest.raises(StorageUnavailableError, match=MISSING):
        await sqlite_repo.get(kept.id)


async def test_nothing_acknowledged_after_the_file_is_deleted_is_lost_on_reopening(
    db_path: Path,
) -> None:
    acknowledged: list[str] = []
    async with SessionRepository(db_path) as repository:
        acknowledged.append((await repository.create(new_session())).id)
        db_path.unlink()
        results = await asyncio.gather(
            *(repository.create(new_session()) for _ in range(20)), return_exceptions=True
        )
        acknowledged += [r.id for r in results if not isinstance(r, BaseException)]

    async with SessionRepository(db_path) as reopened:
        # The first session went with the deleted file, as `rm` asked.
        lost = [i for i in acknowledged[1:] if await reopened.get(i) is None]

    assert lost == []


async def test_every_write_after_a_backup_is_moved_over_the_file_is_refused(
    sqlite_repo: SessionRepository, db_path: Path, tmp_path: Path
) -> None:
    before = await sqlite_repo.create(new_session())
    back_up(db_path, tmp_path / "older.db")
    await sqlite_repo.create(new_session())
    os.replace(tmp_path / "older.db", db_path)

    results = await asyncio.gather(
        *(sqlite_repo.create(new_session()) for _ in range(20)),
        sqlite_repo.update_state(before.id, before.state),
        return_exceptions=True,
    )

    for result in results:
        assert isinstance(result, StorageUnavailableError), result
        assert result.detail.startswith(REPLACED)
    with pytest.raises(StorageUnavailableError, match=REPLACED):
        await sqlite_repo.ping()


@pytest.mark.parametrize("refused", ["write", "read"])
async def test_the_file_moved_in_is_left_as_it_was_moved_in(
    db_path: Path, tmp_path: Path, refused: str
) -> None:
    async with SessionRepository(db_path) as repository:
        in_backup = await repository.create(new_session())
        back_up(db_path, tmp_path / "older.db")
        for _ in range(20):
            await repository.create(new_session())
        os.replace(tmp_path / "older.db", db_path)
        with pytest.raises(StorageUnavailableError, match=REPLACED):
            if refused == "write":
                await repository.create(new_session())
            else:
                await repository.get(in_backup.id)

    # The server's own -wal file, still beside the path, is not read into it.
    assert stored_ids(db_path) == {in_backup.id}


async def test_a_file_moved_in_after_the_database_was_briefly_away_is_left_as_it_was(
    db_path: Path, tmp_path: Path
) -> None:
    async with SessionRepository(db_path) as repository:
        db_path.rename(tmp_path / "aside.db")
        with pytest.raises(StorageUnavailableError, match=MISSING):
            await repository.create(new_session())
        (tmp_path / "aside.db").rename(db_path)
        in_backup = await repository.create(new_session())
        back_up(db_path, tmp_path / "older.db")
        for _ in range(20):
            await repository.create(new_session())
        os.replace(tmp_path / "older.db", db_path)
        with pytest.raises(StorageUnavailableError, match=REPLACED):
            await repository.create(new_session())

    assert stored_ids(db_path) == {in_backup.id}


async def test_what_was_committed_before_the_wal_file_was_deleted_reaches_the_file(
    sqlite_repo: SessionRepository, db_path: Path
) -> None:
    acknowledged = [(await sqlite_repo.create(new_session())).id for _ in range(5)]
    Path(f"{db_path}-wal").unlink()
    with pytest.raises(StorageUnavailableError, match="-wal"):
        await sqlite_repo.create(new_session())

    # Read by another connection while the server still runs: a crash now loses nothing.
    assert stored_ids(db_path) == set(acknowledged)


async def test_every_write_after_the_wal_file_is_deleted_is_refused(
    sqlite_repo: SessionRepository, db_path: Path
) -> None:
    await sqlite_repo.create(new_session())
    Path(f"{db_path}-wal").unlink()

    results = await asyncio.gather(
        *(sqlite_repo.create(new_session()) for _ in range(20)), return_exceptions=True
    )

    for result in results:
        assert isinstance(result, StorageUnavailableError), result
        assert result.detail == WAL_GONE


async def test_a_graceful_stop_after_the_wal_file_is_deleted_keeps_what_was_acknowledged(
    db_path: Path,
) -> None:
    async with SessionRepository(db_path) as repository:
        kept = await repository.create(new_session())
        Path(f"{db_path}-wal").unlink()
        with pytest.raises(StorageUnavailableError):
            await repository.create(new_session())

    # Closing checkpoints the log the connection still holds into the file.
    assert stored_ids(db_path) == {kept.id}


async def test_writes_go_on_once_the_same_file_is_moved_back(
    sqlite_repo: SessionRepository, db_path: Path, tmp_path: Path
) -> None:
    await sqlite_repo.create(new_session())
    db_path.rename(tmp_path / "aside.db")
    with pytest.raises(StorageUnavailableError):
        await sqlite_repo.create(new_session())

    (tmp_path / "aside.db").rename(db_path)
    created = await sqlite_repo.create(new_session())

    assert created.id in stored_ids(db_path)


async def test_the_server_refuses_writes_once_its_file_is_deleted_and_loses_none_it_acknowledged(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "live.db"
    env = {"DATABASE_PATH": str(db_path), "DATABASE_URL": ""}
    with running_server(tmp_path, env) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            await client.post("/sessions", json=NEW_SESSION)
            db_path.unlink()
            responses = await asyncio.gather(
                *(client.post("/sessions", json=NEW_SESSION) for _ in range(20))
            )
            health = await client.get("/health")
    acknowledged = [r.json()["id"] for r in responses if r.status_code == 201]

    with running_server(tmp_path, env) as url, httpx.Client(base_url=url) as client:
        lost = [i for i in acknowledged if client.get(f"/sessions/{i}").status_code != 200]

    assert lost == []
    assert [r.status_code for r in responses] == [503] * 20
    assert {r.json()["detail"] for r in responses} == {MISSING}
    assert health.status_code == 503


async def test_the_server_refuses_writes_once_an_older_backup_is_moved_over_its_file(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "live.db"
    env = {"DATABASE_PATH": str(db_path), "DATABASE_URL": ""}
    with running_server(tmp_path, env) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            before_swap = [(await client.post("/sessions", json=NEW_SESSION)).json()["id"]]
            back_up(db_path, tmp_path / "older.db")
            before_swap.append((await client.post("/sessions", json=NEW_SESSION)).json()["id"])
            os.replace(tmp_path / "older.db", db_path)
            responses = await asyncio.gather(
                *(client.post("/sessions", json=NEW_SESSION) for _ in range(20))
            )
            health = await client.get("/health")

    assert [r.status_code for r in responses] == [503] * 20
    assert all(r.json()["detail"].startswith(REPLACED) for r in responses)
    assert health.status_code == 503
    assert health.json()["detail"].startswith(REPLACED)
    # None of the refused creates was stored anywhere a restarted server reads.
    with running_server(tmp_path, env) as url, httpx.Client(base_url=url) as client:
        listed = {session["id"] for session in client.get("/sessions").json()}
    assert before_swap[0] in listed
    assert listed <= set(before_swap)


def damage(db_path: Path) -> None:
    """Break one b-tree page of a database that still opens and names its schema version."""
    connection = sqlite3.connect(db_path)
    try:
        with connection:
            connection.executemany(
                "INSERT INTO sessions (id, methodology, concept_id, concept_name, status,"
                " created_at, updated_at) VALUES (?, 'mec', 'c', ?, 'active', 't', 't')",
                [(f"s{n}", "x" * 200) for n in range(300)],
            )
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (page_size,) = connection.execute("PRAGMA page_size").fetchone()
        (page_count,) = connection.execute("PRAGMA page_count").fetchone()
    finally:
        connection.close()
    with db_path.open("r+b") as file:
        # A page type that does not exist, in a page past the schema's first.
        file.seek((page_count // 2) * page_size)
        file.write(b"\x0d\x00\x00\xff\xff\xff\xff\xff")


def test_serve_refuses_a_database_that_fails_quick_check(tmp_path: Path) -> None:
    db_path = tmp_path / "damaged.db"
    env = {"DATABASE_PATH": str(db_path), "DATABASE_URL": ""}
    with running_server(tmp_path, env):
        pass
    damage(db_path)

    server = launch_server(tmp_path, env)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        pytest.fail("the server started on a damaged database")
    stderr = server.log_path.read_text()

    assert server.process.returncode == 1, stderr
    assert "Traceback" not in stderr
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith(
        f"interview-system: cannot use the database {db_path}: the file is damaged (quick_check: "
    ), last_line


def test_migrate_refuses_a_database_that_fails_quick_check(tmp_path: Path) -> None:
    db_path = tmp_path / "damaged.db"
    env = {"DATABASE_PATH": str(db_path), "DATABASE_URL": "", "PATH": "/usr/bin:/bin"}
    assert subprocess.run([str(SERVER), "migrate"], env=env, check=False).returncode == 0
    damage(db_path)

    result = subprocess.run(
        [str(SERVER), "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"interview-system: cannot use the database {db_path}: the file is damaged"
        f" (quick_check: {quick_check_finding(db_path)})"
    ]


def quick_check_finding(db_path: Path) -> str:
    connection = sqlite3.connect(db_path)
    try:
        (finding,) = connection.execute("PRAGMA quick_check(1)").fetchone()
    finally:
        connection.close()
    return " ".join(str(finding).split())
