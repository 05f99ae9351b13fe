"""The `interview-system` command: serve the API, migrate, back up or restore the database."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import socket
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from pydantic import ValidationError

from src.core.config import Settings, describe_settings_error
from src.core.errors import DatabaseFileError, SessionError
from src.core.logging import configure_logging
from src.persistence.backup import backup_database, restore_database
from src.persistence.repositories.factory import describe_database, migrate_database

_log = structlog.get_logger("interview_system")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interview-system", description="Interview session store."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", help="bind address (default: HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="bind port (default: PORT, else 8000)")
    commands.add_parser("migrate", help="apply pending database migrations and exit")
    backup = commands.add_parser(
        "backup", help="copy the SQLite database to FILE, while it stays in use"
    )
    backup.add_argument("file", type=Path, metavar="FILE")
    restore = commands.add_parser(
        "restore", help="replace the SQLite database with the copy in FILE (no server running)"
    )
    restore.add_argument("file", type=Path, metavar="FILE")
    return parser


def _settings(overrides: dict[str, Any]) -> Settings:
    # Flags given on the command line win over the environment and .env.
    return Settings(**{name: value for name, value in overrides.items() if value is not None})


def _serve(settings: Settings) -> None:
    # Imported here so that `migrate` does not pay for loading the web stack.
    from src.api.app import create_app
    from src.api.server import serve

    _log.info(
        "serving", host=settings.host, port=settings.port, database=describe_database(settings)
    )
    if settings.api_key is None and not ipaddress.ip_address(_resolve(settings.host)).is_loopback:
        _log.warning(
            "serving_without_api_key",
            host=settings.host,
            advice="anyone who can reach this address can read and change sessions; set API_KEY",
        )
    serve(create_app(settings), settings)


def _resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return "0.0.0.0"


def _backup(settings: Settings, target: Path) -> None:
    sessions = asyncio.run(backup_database(settings.database_path, target))
    _log.info(
        "backed_up", database=describe_database(settings), copy=str(target), sessions=sessions
    )


def _restore(settings: Settings, source: Path) -> None:
    sessions = asyncio.run(restore_database(settings.database_path, source))
    _log.info("restored", database=describe_database(settings), copy=str(source), sessions=sessions)


def _migrate(settings: Settings) -> None:
    version = asyncio.run(migrate_database(settings))
    _log.info("migrated", database=describe_database(settings), schema_version=version)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    configure_logging()
    try:
        overrides = {"host": args.host, "port": args.port} if args.command == "serve" else {}
        settings = _settings(overrides)
    except ValidationError as exc:
        print(f"interview-system: {describe_settings_error(exc)}", file=sys.stderr)
        return 2
    if args.command in ("backup", "restore") and settings.database_url is not None:
        print(
            f"interview-system: {args.command} works on the SQLite database; "
            "for PostgreSQL use pg_dump and pg_restore",
            file=sys.stderr,
        )
        return 2
    try:
        if args.command == "backup":
            _backup(settings, args.file)
        elif args.command == "restore":
            _restore(settings, args.file)
        else:
            # Open and migrate the database first, so that one that cannot be
            # used stops the program here, in one line, before serving.
            _migrate(settings)
            if args.command == "serve":
                _serve(settings)
    except DatabaseFileError as exc:
        print(
            f"interview-system: cannot use the database {exc.database}: {exc.cause}",
            file=sys.stderr,
        )
        return 1
    except SessionError as exc:
        print(f"interview-system: {exc.detail}", file=sys.stderr)
        return 1
    except (sqlite3.Error, asyncpg.PostgresError, OSError) as exc:
        cause = str(exc) or type(exc).__name__
        print(
            f"interview-system: cannot use the database {describe_database(settings)}: {cause}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
