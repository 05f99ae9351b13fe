"""Schema migrations: fresh, repeated, concurrent, and refusal of newer databases."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from src.core.errors import SchemaVersionError
from src.persistence.database import init_database, load_migrations
from src.persistence.repositories.session_repo import SessionRepository
from src.persistence.repositories.statements import ERASURE_SESSIONS, list_query
from tests.builders import new_session

pytestmark = pytest.mark.sqlite

LATEST = len(load_migrations())


def user_version(db_path: Path) -> int:
    connection = sqlite3.connect(db_path)
    try:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])
    finally:
        connection.close()


def query_plan(db_path: Path, sql: str, parameters: dict[str, object]) -> str:
    connection = sqlite3.connect(db_path)
    try:
        rows = connection.execute(f"EXPLAIN QUERY PLAN {sql}", parameters).fetchall()
    finally:
        connection.close()
    return " | ".join(row[-1] for row in rows)


async def test_init_creates_the_folder_file_and_schema(db_path: Path) -> None:
    assert not db_path.parent.exists()

    version = await init_database(db_path)

    assert version == LATEST
    assert user_version(db_path) == LATEST
    connection = sqlite3.connect(db_path)
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_schema")}
    connection.close()
    assert "sessions" in tables


async def test_init_accepts_a_string_path(db_path: Path) -> None:
    assert await init_database(str(db_path)) == LATEST


async def test_init_is_idempotent_and_keeps_data(db_path: Path) -> None:
    await init_database(db_path)
    async with SessionRepository(str(db_path)) as repo:
        created = await repo.create(new_session())

    await init_database(db_path)
    await init_database(db_path)

    assert user_version(db_path) == LATEST
    async with SessionRepository(str(db_path)) as repo:
        assert await repo.get(created.id) == created


async def test_concurrent_inits_apply_each_step_once(db_path: Path) -> None:
    versions = await asyncio.gather(*(init_database(db_path) for _ in range(8)))

    assert versions == [LATEST] * 8
    assert user_version(db_path) == LATEST


async def test_a_database_from_a_newer_version_is_refused(db_path: Path) -> None:
    await init_database(db_path)
    connection = sqlite3.connect(db_path)
    connection.execute(f"PRAGMA user_version = {LATEST + 1}")
    connection.close()

    with pytest.raises(SchemaVersionError) as raised:
        await init_database(db_path)

    assert (raised.value.found, raised.value.known) == (LATEST + 1, LATEST)
    assert "newer" in raised.value.detail


async def test_the_repository_refuses_a_newer_database_too(db_path: Path) -> None:
    await init_database(db_path)
    connection = sqlite3.connect(db_path)
    connection.execute(f"PRAGMA user_version = {LATEST + 5}")
    connection.close()
    repository = SessionRepository(str(db_path))

    with pytest.raises(SchemaVersionError):
        await repository.get("anything")
    await repository.close()


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    migrations = load_migrations()

    assert [m.version for m in migrations] == list(range(1, LATEST + 1))
    assert all(m.statements for m in migrations)


async def test_the_schema_refuses_rows_the_model_would_refuse(db_path: Path) -> None:
    await init_database(db_path)
    connection = sqlite3.connect(db_path)
    insert = (
        "INSERT INTO sessions (id, methodology, concept_id, concept_name, status, turn_count,"
        " coverage_score, created_at, updated_at) VALUES (?, 'mec', 'c', 'n', ?, ?, ?, 't', 't')"
    )
    bad_rows = [("a", "archived", 0, 0.0), ("b", "active", -1, 0.0), ("c", "active", 0, 1.5)]
    try:
        for row in bad_rows:
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                connection.execute(insert, row)
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("filtered", "index"),
    [
        (("status",), "sessions_by_status_created"),
        ((), "sessions_by_created"),
    ],
)
@pytest.mark.parametrize("after_key", [False, True])
async def test_listing_newest_first_uses_an_index_and_no_sort(
    db_path: Path, filtered: tuple[str, ...], index: str, after_key: bool
) -> None:
    await init_database(db_path)
    parameters = {
        "status": "active",
        "limit": 51,
        "after_created_at": "2026-01-01T00:00:00.000000Z",
        "after_id": "x",
    }

    plan = query_plan(db_path, list_query(filtered, after_key).sqlite, parameters)

    assert index in plan
    assert "TEMP B-TREE" not in plan


async def test_erasure_follows_forks_through_an_index_and_reads_no_whole_table(
    db_path: Path,
) -> None:
    await init_database(db_path)

    plan = query_plan(db_path, ERASURE_SESSIONS.sqlite, {"participant_id": "p"})

    assert "sessions_by_forked_from (forked_from_id=?)" in plan
    assert "SCAN sessions" not in plan
