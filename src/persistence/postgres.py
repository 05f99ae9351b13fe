"""The PostgreSQL database: connection pools and schema migrations."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from src.core.errors import SchemaVersionError
from src.persistence.database import load_migrations

__all__ = ["create_pool", "describe_dsn", "init_postgres", "migrate_postgres"]

MIGRATIONS_DIRECTORY = Path(__file__).parent / "migrations" / "postgres"

_CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def describe_dsn(dsn: str) -> str:
    """The server and database a DSN names, without its credentials."""
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"postgresql://{host}{port}{parts.path}"


LOCK_TIMEOUT_MS = 5000
"""How long a statement waits for a lock, as SQLite's busy timeout; then it fails (503)."""


async def create_pool(dsn: str, size: int) -> asyncpg.Pool:
    """A pool of up to `size` connections, bound to the running event loop.

    A statement waits at most LOCK_TIMEOUT_MS for a lock (a `LOCK TABLE` or
    an `ALTER TABLE` elsewhere), unless the DSN sets `lock_timeout` itself:
    without it, every request behind such a lock would wait as long as it is held.
    """
    settings = (
        {}
        if "lock_timeout" in parse_qs(urlsplit(dsn).query)
        else {"lock_timeout": str(LOCK_TIMEOUT_MS)}
    )
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=size, server_settings=settings
    )
    return pool


async def migrate_postgres(
    connection: asyncpg.Connection | PoolConnectionProxy,
    database: str,
    directory: Path = MIGRATIONS_DIRECTORY,
) -> int:
    """Apply pending migrations, each file whole in its own transaction; return the schema version.

    Raises:
        SchemaVersionError: the database is newer than every migration known here.
    """
    migrations = load_migrations(directory, split=False)
    latest = len(migrations)
    while True:
        async with connection.transaction():
            # One lock per schema: processes starting together take turns, and
            # each step is recorded in the transaction that applies it.
            # Processes starting together wait for each other's migrations, however long.
            await connection.execute("SET LOCAL lock_timeout = 0")
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext('interview-system:' || current_schema()))"
            )
            await connection.execute(_CREATE_MIGRATIONS_TABLE)
            current: int = await connection.fetchval(
                "SELECT coalesce(max(version), 0) FROM schema_migrations"
            )
            if current > latest:
                raise SchemaVersionError(database, current, latest)
            if current == latest:
                return latest
            migration = migrations[current]
            for statement in migration.statements:
                await connection.execute(statement)
            await connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )


async def init_postgres(dsn: str) -> int:
    """Apply pending migrations to the database at `dsn`; safe to run any number of times."""
    connection = await asyncpg.connect(dsn)
    try:
        return await migrate_postgres(connection, describe_dsn(dsn))
    finally:
        await connection.close()
