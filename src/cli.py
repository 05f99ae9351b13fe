"""The `interview-system` command: serve, migrate, back up, restore, export and sweep."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
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
from src.domain.export import ExportFormat
from src.domain.models.session import SessionStatus
from src.exporting import export_many, export_one
from src.persistence.backup import backup_database, restore_database
from src.persistence.presence import database_exists
from src.persistence.repositories.factory import (
    create_repository,
    describe_database,
    migrate_database,
)
from src.persistence.retention import sweep

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
    export = commands.add_parser(
        "export",
        help="write a session's record (SESSION_ID), or every session in a status (--status)",
    )
    export.add_argument("session_id", nargs="?", metavar="SESSION_ID")
    export.add_argument("--format", choices=[f.value for f in ExportFormat], default="json")
    export.add_argument("--status", choices=[s.value for s in SessionStatus])
    export.add_argument(
        "--out", type=Path, help="file (one session; default: standard output) or folder"
    )
    commands.add_parser(
        "sweep", help="apply IDLE_PAUSE_AFTER and ABANDON_PAUSED_AFTER once and exit (for cron)"
    )
    return parser


def _export_arguments_problem(args: argparse.Namespace) -> str | None:
    if (args.session_id is None) == (args.status is None):
        return "export takes either a SESSION_ID or --status, not both or neither"
    if args.status is not None and args.out is None:
        return "export --status needs --out FOLDER"
    return None


def _settings(overrides: dict[str, Any]) -> Settings:
    # Flags given on the command line win over the environment and .env.
    return Settings(**{name: value for name, value in overrides.items() if value is not None})


def _serve(settings: Settings) -> None:
    # Imported here so that `migrate` does not pay for loading the web stack.
    from src.api.app import create_app
    from src.api.server import serve

    _log.info(
        "serving",
        host=settings.host,
        port=settings.port,
        database=describe_database(settings),
        api_key="active" if settings.api_key is not None else "off",
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


async def _export(settings: Settings, args: argparse.Namespace) -> None:
    export_format = ExportFormat(args.format)
    async with create_repository(settings) as repository:
        if args.status is not None:
            files = await export_many(
                repository, SessionStatus(args.status), export_format, args.out
            )
            _log.info("exported", sessions=len(files), folder=str(args.out))
        elif args.out is None:
            await export_one(repository, args.session_id, export_format, sys.stdout)
        else:
            out_path: Path = args.out
            with await asyncio.to_thread(out_path.open, "w", encoding="utf-8", newline="") as out:
                await export_one(repository, args.session_id, export_format, out)


async def _sweep(settings: Settings) -> None:
    if not settings.retention_enabled:
        _log.info("retention_off", advice="set IDLE_PAUSE_AFTER and/or ABANDON_PAUSED_AFTER")
        return
    async with create_repository(settings) as repository:
        result = await sweep(
            repository,
            idle_pause_after=settings.idle_pause_after,
            abandon_paused_after=settings.abandon_paused_after,
        )
    _log.info("swept", paused=len(result.paused), abandoned=len(result.abandoned))


def _migrate(settings: Settings) -> None:
    existed = asyncio.run(database_exists(settings))
    version = asyncio.run(migrate_database(settings))
    _log.info(
        "database_opened" if existed else "database_created",
        database=describe_database(settings),
        schema_version=version,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        overrides = {"host": args.host, "port": args.port} if args.command == "serve" else {}
        settings = _settings(overrides)
    except ValidationError as exc:
        print(f"interview-system: {describe_settings_error(exc)}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    if args.command == "export" and (problem := _export_arguments_problem(args)):
        print(f"interview-system: {problem}", file=sys.stderr)
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
        elif args.command == "export":
            asyncio.run(_export(settings, args))
        elif args.command == "sweep":
            asyncio.run(_sweep(settings))
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
    except BrokenPipeError:
        # Whatever read standard output stopped early (`export ... | head`):
        # not an error of the database. Python's own flush at exit would
        # fail on the closed pipe too, so point stdout elsewhere first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
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
