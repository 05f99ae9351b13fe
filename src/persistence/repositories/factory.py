"""Choose the backend the settings ask for."""

from __future__ import annotations

from src.core.config import Settings
from src.persistence.database import init_database
from src.persistence.postgres import describe_dsn, init_postgres
from src.persistence.repositories.postgres_session_repo import PostgresSessionRepository
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.repositories.session_repo import SessionRepository

__all__ = ["ONE_PASS_CACHE_KIB", "create_repository", "describe_database", "migrate_database"]

ONE_PASS_CACHE_KIB = 256
"""The page cache of a reading connection in a process that reads each page once."""


def create_repository(settings: Settings, *, one_pass: bool = False) -> SessionRepositoryProtocol:
    """PostgreSQL when DATABASE_URL is set, else SQLite at DATABASE_PATH; not yet connected.

    one_pass: the process reads what it needs once through (an export from the command
    line), so SQLite's reading connections keep small page caches: larger ones would
    only fill, and the process's memory would grow with what it reads until they are full.
    """
    if settings.database_url is not None:
        return PostgresSessionRepository(
            settings.database_url, pool_size=settings.database_pool_size
        )
    return SessionRepository(
        settings.database_path,
        synchronous=settings.database_synchronous,
        read_cache_kib=ONE_PASS_CACHE_KIB if one_pass else None,
    )


async def migrate_database(settings: Settings) -> int:
    """Apply pending migrations to the configured database; returns the schema version."""
    if settings.database_url is not None:
        return await init_postgres(settings.database_url)
    return await init_database(settings.database_path)


def describe_database(settings: Settings) -> str:
    """The configured database, for logs: never with credentials."""
    if settings.database_url is not None:
        return describe_dsn(settings.database_url)
    return str(settings.database_path)
