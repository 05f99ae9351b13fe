"""The databases the contract suite runs on, each opened on a store of its own."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import pytest

from src.core.config import Settings
from src.persistence.pagination import sign
from src.persistence.postgres import describe_dsn
from src.persistence.repositories.postgres_session_repo import PostgresSessionRepository
from src.persistence.repositories.session_repo import SessionRepository

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
# CI sets this: there, a PostgreSQL test that cannot run is a failure, not a skip.
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"


@dataclass
class SqliteBackend:
    """A SQLite file in a temporary folder."""

    path: Path

    def open(self) -> SessionRepository:
        return SessionRepository(str(self.path))

    def settings(self) -> Settings:
        return Settings(database_path=self.path, database_url=None)

    async def execute(self, sql: str) -> None:
        connection = sqlite3.connect(self.path)
        try:
            with connection:
                connection.execute(sql)
        finally:
            connection.close()

    async def fetch_one(self, sql: str) -> dict[str, Any] | None:
        connection = sqlite3.connect(self.path)
        try:
            connection.row_factory = sqlite3.Row
            row = connection.execute(sql).fetchone()
        finally:
            connection.close()
        return None if row is None else dict(row)


@dataclass
class PostgresBackend:
    """A schema of its own on the test PostgreSQL server, dropped afterwards."""

    dsn: str

    def open(self) -> PostgresSessionRepository:
        return PostgresSessionRepository(self.dsn, pool_size=4)

    def settings(self) -> Settings:
        return Settings(database_url=self.dsn, database_pool_size=4)

    async def execute(self, sql: str) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def fetch_one(self, sql: str) -> dict[str, Any] | None:
        connection = await asyncpg.connect(self.dsn)
        try:
            row = await connection.fetchrow(sql)
        finally:
            await connection.close()
        return None if row is None else dict(row)


@asynccontextmanager
async def postgres_admin() -> AsyncIterator[asyncpg.Connection]:
    """A connection to the test server itself; skips when no server answers."""
    try:
        admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        message = (
            f"PostgreSQL is not reachable at {describe_dsn(POSTGRES_URL)} ({exc}); "
            "start it, or point TEST_DATABASE_URL at a server, to run the postgres tests"
        )
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield admin
    finally:
        await admin.close()


async def ensure_unaccent(admin: asyncpg.Connection) -> None:
    """Install unaccent in `public` once, as `.ci/run` would, so that no test's schema owns it.

    Left to the migration, the first test would create it in its own schema
    and take it away again (from every other schema too) when that is dropped.
    """
    with contextlib.suppress(asyncpg.UniqueViolationError, asyncpg.DuplicateObjectError):
        await admin.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")


@asynccontextmanager
async def postgres_schema(**server_settings: str) -> AsyncIterator[str]:
    """A DSN whose search_path is a new, empty schema; skips when no server answers.

    server_settings are added to the DSN, so every connection made from it
    starts with them (asyncpg reads unknown query parameters as settings).
    """
    async with postgres_admin() as admin:
        await ensure_unaccent(admin)
        schema = f"test_{uuid.uuid4().hex}"
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        query = urlencode({"search_path": schema, **server_settings})
        separator = "&" if "?" in POSTGRES_URL else "?"
        try:
            yield f"{POSTGRES_URL}{separator}{query}"
        finally:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def forge_cursor(backend: SqliteBackend | PostgresBackend, sort_key: Any) -> str:
    """A cursor for any sort key, signed with the store's key as a listing would sign it."""
    row = await backend.fetch_one("SELECT value FROM store_secrets WHERE name = 'cursor_key'")
    assert row is not None
    return sign(bytes(row["value"]), json.dumps(sort_key).encode())


def stored_ids(db_path: Path) -> set[str]:
    """The ids of the sessions in a SQLite file, read as another process would; the file must
    pass its integrity check."""
    connection = sqlite3.connect(db_path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {row[0] for row in connection.execute("SELECT id FROM sessions")}
    finally:
        connection.close()


# A session's tables (events aside), children before their parent, so that each DROP
# finds nothing referring to it.
SESSION_TABLES = (
    "utterances",
    "state_data",
    "turn_records",
    "session_versions",
    "graph_nodes",
    "graph_edges",
    "sessions",
)


async def drop_session_tables(backend: SqliteBackend | PostgresBackend) -> None:
    """Drop the sessions table and every table that refers to it, under a running store."""
    for table in SESSION_TABLES:
        await backend.execute(f"DROP TABLE {table}")
