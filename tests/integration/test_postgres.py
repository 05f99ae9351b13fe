"""What only the PostgreSQL backend has: its migrations, its pool and its event loop."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError

from src.core.config import Settings
from src.core.errors import SchemaVersionError, StorageUnavailableError
from src.main import create_app
from src.persistence.database import load_migrations
from src.persistence.postgres import MIGRATIONS_DIRECTORY, init_postgres, migrate_postgres
from src.persistence.repositories.postgres_session_repo import PostgresSessionRepository
from src.persistence.repositories.statements import Statement, Unit, query
from tests.backends import PostgresBackend
from tests.builders import NEW_SESSION_BODY, new_session, state_of
from tests.http import serve_in_process

pytestmark = pytest.mark.postgres

LATEST = len(load_migrations(MIGRATIONS_DIRECTORY))


async def applied_versions(backend: PostgresBackend) -> list[int]:
    connection = await asyncpg.connect(backend.dsn)
    try:
        rows = await connection.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await connection.close()
    return [row["version"] for row in rows]


class TestMigrations:
    async def test_init_is_idempotent(self, postgres_backend: PostgresBackend) -> None:
        assert await init_postgres(postgres_backend.dsn) == LATEST
        assert await init_postgres(postgres_backend.dsn) == LATEST

        assert await applied_versions(postgres_backend) == list(range(1, LATEST + 1))

    async def test_concurrent_starts_apply_each_step_once(
        self, postgres_backend: PostgresBackend
    ) -> None:
        versions = await asyncio.gather(*(init_postgres(postgres_backend.dsn) for _ in range(6)))

        assert versions == [LATEST] * 6
        assert await applied_versions(postgres_backend) == list(range(1, LATEST + 1))

    async def test_a_newer_database_is_refused_without_credentials_in_the_message(
        self, postgres_backend: PostgresBackend
    ) -> None:
        await init_postgres(postgres_backend.dsn)
        await postgres_backend.execute(
            f"INSERT INTO schema_migrations (version, name) VALUES ({LATEST + 1}, 'future')"
        )

        with pytest.raises(SchemaVersionError) as raised:
            await init_postgres(postgres_backend.dsn)

        assert raised.value.found == LATEST + 1
        assert "search_path" not in raised.value.detail

    async def test_the_cli_migrates_postgres(
        self, postgres_backend: PostgresBackend, tmp_path: Path
    ) -> None:
        root = Path(__file__).resolve().parents[2]
        result = subprocess.run(
            [sys.executable, "-m", "src.cli", "migrate"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(root), "DATABASE_URL": postgres_backend.dsn},
            capture_output=True,
            text=True,
            timeout=60,
        )

        assert result.returncode == 0, result.stderr
        assert not (tmp_path / "data").exists()
        assert await applied_versions(postgres_backend) == list(range(1, LATEST + 1))

    async def test_a_migration_file_runs_whole(
        self, postgres_backend: PostgresBackend, tmp_path: Path
    ) -> None:
        # A function body between $$ and a string both hold semicolons that
        # end no statement; a file cut at each ';' would fail here.
        (tmp_path / "001_notes.sql").write_text(
            "CREATE TABLE notes (body text NOT NULL);\n"
            "INSERT INTO notes VALUES ('one; two');\n"
            "CREATE FUNCTION note_count() RETURNS bigint LANGUAGE plpgsql AS $$\n"
            "DECLARE counted bigint;\n"
            "BEGIN\n"
            "    SELECT count(*) INTO counted FROM notes;\n"
            "    RETURN counted;\n"
            "END;\n"
            "$$;\n"
        )
        connection = await asyncpg.connect(postgres_backend.dsn)
        try:
            version = await migrate_postgres(connection, "test", tmp_path)
            body = await connection.fetchval("SELECT body FROM notes")
            count = await connection.fetchval("SELECT note_count()")
        finally:
            await connection.close()

        assert (version, body, count) == (1, "one; two", 1)
        assert await applied_versions(postgres_backend) == [1]


class TestPoolAndLoop:
    def test_a_repository_is_built_outside_any_event_loop(self) -> None:
        # Building one opens nothing: the pool is made in the loop of first use.
        repository = PostgresSessionRepository("postgresql://postgres@127.0.0.1:1/test")

        assert repository.pool_size == 10

    async def test_many_concurrent_calls_share_the_pool_without_clashing(
        self, postgres_backend: PostgresBackend
    ) -> None:
        async with PostgresSessionRepository(postgres_backend.dsn, pool_size=3) as repo:
            created = await asyncio.gather(*(repo.create(new_session()) for _ in range(60)))
            updated, read, pages = await asyncio.gather(
                asyncio.gather(
                    *(
                        repo.update_state(s.id, state_of(s, turn_count=n))
                        for n, s in enumerate(created)
                    )
                ),
                asyncio.gather(*(repo.get(s.id) for s in created)),
                asyncio.gather(*(repo.list_sessions(limit=10) for _ in range(20))),
            )

        # Each call got its own answer: none saw another's rows.
        assert [(s.id, s.version, s.state.turn_count) for s in updated] == [
            (s.id, 2, n) for n, s in enumerate(created)
        ]
        assert [s.id for s in read if s is not None] == [s.id for s in created]
        ids = {s.id for s in created}
        assert all(len(page.items) == 10 and {s.id for s in page.items} <= ids for page in pages)

    def test_one_app_runs_in_one_event_loop_after_another(
        self, postgres_backend: PostgresBackend
    ) -> None:
        # The pool belongs to the lifespan, never to the app or the module:
        # a second loop gets a second pool, not "attached to a different loop".
        app = create_app(postgres_backend.settings())

        async def create_one() -> int:
            async with (
                LifespanManager(app) as manager,
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=manager.app), base_url="http://t"
                ) as client,
            ):
                return (await client.post("/sessions", json=NEW_SESSION_BODY)).status_code

        assert asyncio.run(create_one()) == 201
        assert asyncio.run(create_one()) == 201

    async def test_concurrent_requests_never_share_a_connection(
        self, postgres_backend: PostgresBackend
    ) -> None:
        settings = Settings(database_url=postgres_backend.dsn, database_pool_size=2)
        async with serve_in_process(settings) as client:
            created = (await client.post("/sessions", json=NEW_SESSION_BODY)).json()
            reads, creates, pages = await asyncio.gather(
                asyncio.gather(*(client.get(f"/sessions/{created['id']}") for _ in range(50))),
                asyncio.gather(
                    *(client.post("/sessions", json=NEW_SESSION_BODY) for _ in range(50))
                ),
                asyncio.gather(*(client.get("/sessions?limit=5") for _ in range(50))),
            )
            listed = (await client.get("/sessions?limit=100")).json()

        # Two requests on one connection at once fail in asyncpg ("another
        # operation is in progress"); each of these got its own full answer.
        assert all(r.status_code == 200 and r.json() == created for r in reads)
        assert all(r.status_code == 201 for r in creates)
        new_ids = {r.json()["id"] for r in creates}
        assert len(new_ids) == 50
        assert {s["id"] for s in listed} == new_ids | {created["id"]}
        assert all(r.status_code == 200 and len(r.json()) == 5 for r in pages)

    async def test_an_unreachable_server_is_unavailable_not_a_crash(self) -> None:
        repository = PostgresSessionRepository("postgresql://postgres@127.0.0.1:1/test")

        with pytest.raises(StorageUnavailableError):
            await repository.get("anything")
        await repository.close()


class TestSettings:
    @pytest.mark.parametrize("url", ["mysql://x/y", "sqlite:///x.db", "127.0.0.1:5432"])
    def test_database_url_must_be_postgresql(self, url: str) -> None:
        with pytest.raises(ValidationError, match="postgresql://"):
            Settings(database_url=url)

    def test_an_empty_database_url_means_sqlite(self) -> None:
        assert Settings(database_url="").database_url is None


async def test_a_read_of_many_statements_sees_one_snapshot(
    postgres_backend: PostgresBackend,
) -> None:
    """A whole graph, a search or a count is read as of one moment, as on SQLite: a write
    committed between two of its statements is seen by neither."""
    isolation = Statement(query("SELECT current_setting('transaction_isolation')"), {})

    def unit() -> Unit[tuple[str, str]]:
        ((first,),) = yield isolation
        ((second,),) = yield isolation
        return str(first), str(second)

    async with PostgresSessionRepository(postgres_backend.dsn) as repository:
        seen = await repository._read(unit, scan=True)

    assert seen == ("repeatable read", "repeatable read")
