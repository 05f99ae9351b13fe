"""Choose the backend the settings ask for."""

from __future__ import annotations

from src.core.config import Settings
from src.persistence.database import init_database
from src.persistence.postgres import describe_dsn, init_postgres
from src.persistence.repositories.postgres_session_repo import PostgresSessionRepository
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.repositories.session_repo import SessionRepository

__all__ = ["create_repository", "describe_database", "migrate_database"]


def create_repository(settings: Settings) -> SessionRepositoryProtocol:
    """PostgreSQL when DATABASE_URL is set, else SQLite at DATABASE_PATH; not yet connected."""
    if settings.database_url is not None:
        return PostgresSessionRepository(
            settings.database_url, pool_size=settings.database_pool_size
        )
    return SessionRepository(settings.database_path, synchronous=settings.database_synchronous)


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
