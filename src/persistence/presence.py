"""Whether the configured database already holds this program's schema, before migrating."""

from __future__ import annotations

import asyncio

import asyncpg

from src.core.config import Settings

__all__ = ["database_exists"]

_MIGRATIONS_TABLE_EXISTS = "SELECT to_regclass('schema_migrations') IS NOT NULL"


async def database_exists(settings: Settings) -> bool:
    """True when the SQLite file, or the PostgreSQL schema's migrations table, is there."""
    if settings.database_url is None:
        return await asyncio.to_thread(settings.database_path.is_file)
    connection = await asyncpg.connect(settings.database_url)
    try:
        return bool(await connection.fetchval(_MIGRATIONS_TABLE_EXISTS))
    finally:
        await connection.close()
