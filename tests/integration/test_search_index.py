"""The search index is written with the utterances it holds: in one transaction, from the
utterances already stored when the migration runs, and on PostgreSQL with or without unaccent."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from src.core.errors import UtteranceExistsError
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.database import MIGRATIONS_DIRECTORY, load_migrations
from src.persistence.postgres import MIGRATIONS_DIRECTORY as POSTGRES_MIGRATIONS
from src.persistence.postgres import migrate_postgres
from src.persistence.repositories.postgres_session_repo import PostgresSessionRepository
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.repositories.session_repo import SessionRepository
from tests.backends import POSTGRES_URL, postgres_admin, postgres_schema
from tests.builders import new_session, state_of

# The schema as it stood before search: an older store being upgraded.
BEFORE_SEARCH = 3
_OLD_ROWS = [
    "INSERT INTO sessions (id, methodology, concept_id, concept_name, status, turn_count,"
    " coverage_score, last_strategy, version, created_at, updated_at, ended_at) VALUES"
    " ('old', 'mec', 'c', 'Coffee', 'active', 0, 0.0, NULL, 1,"
    " '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z', NULL)",
    "INSERT INTO utterances (session_id, turn_number, speaker, text, metadata, created_at)"
    " VALUES ('old', 1, 'respondent', 'An old Café story', NULL, '2026-01-01T00:00:00.000000Z')",
]


async def test_a_turn_refused_halfway_leaves_nothing_in_the_index(
    repo: SessionRepositoryProtocol,
) -> None:
    session = await repo.create(new_session())
    await repo.append_utterance(
        session.id, NewUtterance(turn_number=1, speaker=Speaker.INTERVIEWER, text="Why tea?")
    )
    refused = [
        NewUtterance(turn_number=1, speaker=Speaker.RESPONDENT, text="zanzibar spice"),
        NewUtterance(turn_number=1, speaker=Speaker.INTERVIEWER, text="already said"),
    ]

    with pytest.raises(UtteranceExistsError):
        await repo.record_turn(session.id, refused, state_of(session, turn_count=1))

    assert (await repo.search("zanzibar")).items == []
    assert [hit.turn_number for hit in (await repo.search("tea")).items] == [1]


async def test_sqlite_utterances_stored_before_search_are_found_after_the_upgrade(
    db_path: Path,
) -> None:
    db_path.parent.mkdir(parents=True)
    connection = sqlite3.connect(db_path)
    with connection:
        for migration in load_migrations(MIGRATIONS_DIRECTORY)[:BEFORE_SEARCH]:
            for statement in migration.statements:
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {BEFORE_SEARCH}")
        for statement in _OLD_ROWS:
            connection.execute(statement)
    connection.close()

    async with SessionRepository(db_path) as repo:
        (hit,) = (await repo.search("cafe")).items

    assert (hit.session_id, hit.snippet) == ("old", "An old <mark>Café</mark> story")


@asynccontextmanager
async def postgres_store_before(
    tmp_path: Path, migrations: int, said: str = "Café"
) -> AsyncIterator[str]:
    """A schema migrated to its first `migrations` only, holding _OLD_ROWS (the old
    utterance saying `said` for "Café"), as an older version left it; its DSN."""
    older = tmp_path / "migrations"
    older.mkdir()
    for path in sorted(POSTGRES_MIGRATIONS.glob("*.sql"))[:migrations]:
        shutil.copy(path, older)
    async with postgres_schema() as dsn:
        connection = await asyncpg.connect(dsn)
        try:
            await migrate_postgres(connection, "test", older)
            for statement in _OLD_ROWS:
                statement = statement.replace("'2026-01-01T", "'2026-01-01 ")
                await connection.execute(statement.replace("Café", said))
        finally:
            await connection.close()
        yield dsn


@pytest.mark.postgres
async def test_postgres_utterances_stored_before_search_are_found_after_the_upgrade(
    tmp_path: Path,
) -> None:
    async with (
        postgres_store_before(tmp_path, BEFORE_SEARCH) as dsn,
        PostgresSessionRepository(dsn) as repo,
    ):
        (hit,) = (await repo.search("cafe")).items

    assert (hit.session_id, hit.snippet) == ("old", "An old <mark>Café</mark> story")


@pytest.mark.postgres
async def test_postgres_words_with_digits_stored_before_they_lost_accents_are_found(
    tmp_path: Path,
) -> None:
    names = [path.name for path in sorted(POSTGRES_MIGRATIONS.glob("*.sql"))]
    before = next(i for i, name in enumerate(names) if "numbered_words" in name)
    async with (
        postgres_store_before(tmp_path, before, said="Café2") as dsn,
        PostgresSessionRepository(dsn) as repo,
    ):
        (hit,) = (await repo.search("cafe2")).items

    assert (hit.session_id, hit.snippet) == ("old", "An old <mark>Café2</mark> story")


@asynccontextmanager
async def database_without_unaccent() -> AsyncIterator[str]:
    """A new database, and a role that may not create extensions in it, for its own schema."""
    name = f"search_{uuid.uuid4().hex[:12]}"
    async with postgres_admin() as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.execute(f'CREATE ROLE "{name}" LOGIN')
        try:
            owner = await asyncpg.connect(POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}")
            try:
                await owner.execute(f'CREATE SCHEMA store AUTHORIZATION "{name}"')
            finally:
                await owner.close()
            base = POSTGRES_URL.rsplit("/", 1)[0].replace("://postgres@", f"://{name}@")
            yield f"{base}/{name}?search_path=store"
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await admin.execute(f'DROP ROLE "{name}"')


@pytest.mark.postgres
async def test_postgres_without_unaccent_search_works_and_counts_accents() -> None:
    async with database_without_unaccent() as dsn:
        async with PostgresSessionRepository(dsn, pool_size=2) as repo:
            session = await repo.create(new_session())
            for number, text in enumerate(["the CAFE", "a café"], start=1):
                await repo.append_utterance(
                    session.id,
                    NewUtterance(turn_number=number, speaker=Speaker.RESPONDENT, text=text),
                )

            plain = [hit.turn_number for hit in (await repo.search("Cafe")).items]
            accented = [hit.turn_number for hit in (await repo.search("CAFÉ")).items]
            installed = await asyncpg.connect(dsn)
            try:
                extensions = await installed.fetchval(
                    "SELECT count(*) FROM pg_extension WHERE extname = 'unaccent'"
                )
            finally:
                await installed.close()

    assert extensions == 0
    assert (plain, accented) == ([1], [2])


@pytest.mark.sqlite
async def test_sqlite_text_changed_in_place_is_indexed_anew(
    sqlite_repo: SessionRepository, db_path: Path
) -> None:
    session = await sqlite_repo.create(new_session())
    await sqlite_repo.append_utterance(
        session.id, NewUtterance(turn_number=1, speaker=Speaker.RESPONDENT, text="old words")
    )
    connection = sqlite3.connect(db_path)
    with connection:
        connection.execute("UPDATE utterances SET text = 'new zanzibar words'")
        connection.execute(
            "INSERT INTO utterance_search (utterance_search, rank) VALUES ('integrity-check', 1)"
        )
    connection.close()

    assert [hit.turn_number for hit in (await sqlite_repo.search("zanzibar")).items] == [1]
    assert (await sqlite_repo.search("old")).items == []
