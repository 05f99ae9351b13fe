"""The `interview-system` command: serve, migrate, back up, restore, export, sweep and keys.

Each command is one function registered on the `cli` group; adding a command
is adding a function. Every error reaches the user as one line on standard
error: exit code 2 for a bad argument or setting, 1 for work that failed.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import sqlite3
import sys
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import asyncpg
import click
import structlog
from pydantic import ValidationError

from src.core.config import Settings, describe_settings_error
from src.core.errors import DatabaseFileError, KeyFileError, KeyNameError, SessionError
from src.core.keys import (
    API_KEY_NAME,
    KeyRing,
    Scope,
    add_key,
    read_key_file,
    remove_key,
    with_implied,
)
from src.core.logging import configure_logging
from src.domain.audit import command_erasure
from src.domain.export import ExportFormat
from src.domain.models.erasure import Erasure
from src.domain.models.session import SessionStatus
from src.domain.models.utterance import Speaker
from src.domain.redaction import Pseudonymizer
from src.exporting import (
    export_many,
    export_one,
    export_path_in,
    export_study_to,
    export_to_file,
    session_ids_with_status,
    write_atomically,
)
from src.persistence.backup import backup_database, is_database_file, restore_database
from src.persistence.presence import database_exists
from src.persistence.repositories.factory import (
    create_repository,
    describe_database,
    migrate_database,
)
from src.persistence.retention import sweep as sweep_once
from src.searching import write_search
from src.study_exporting import StudyExportFormat

__all__ = ["cli", "main"]

PROGRAM = "interview-system"
_T = TypeVar("_T")


class CommandError(click.ClickException):
    """The command could not do its work: one line, exit code 1."""

    exit_code = 1


class SettingError(click.ClickException):
    """A setting from the environment or `.env` holds a bad value: one line, exit code 2."""

    exit_code = 2


@dataclass
class _Invocation:
    """What one run of the program shares between the group and its command."""

    settings: Settings | None = None


def _log() -> Any:
    # Looked up on each use: structlog caches a logger's output stream on its
    # first use, and each run (in tests, several in one process) has its own.
    return structlog.get_logger(PROGRAM)


def _say(message: str) -> None:
    click.echo(f"{PROGRAM}: {message}", err=True)


class _CommandLine(click.Group):
    """A group whose every error, a usage error included, reaches the user as one line."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> int:
        code = self._run(args, prog_name or PROGRAM, complete_var, **extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(
        self, args: Sequence[str] | None, prog_name: str, complete_var: str | None, **extra: Any
    ) -> int:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.format_message(), err=True)  # the help, as asked for
            return exc.exit_code
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _say(exc.format_message() + hint)
            return exc.exit_code
        except click.ClickException as exc:
            _say(exc.format_message())
            return exc.exit_code
        except click.Abort:
            _say("interrupted")
            return 130
        except Exception as exc:
            _say(f"unexpected error ({type(exc).__name__}): {exc}")
            return 1
        return result if isinstance(result, int) else 0

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # Whatever read standard output stopped early (`export ... | head`):
            # not an error of the database. Python's own flush at exit would
            # fail on the closed pipe too, so point stdout elsewhere first.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise click.exceptions.Exit(1) from None
        except DatabaseFileError as exc:
            raise CommandError(f"cannot use the database {exc.database}: {exc.cause}") from exc
        except SessionError as exc:
            raise CommandError(exc.detail) from exc
        except (sqlite3.Error, asyncpg.PostgresError, OSError) as exc:
            cause = str(exc) or type(exc).__name__
            settings = ctx.find_object(_Invocation)
            if settings is None or settings.settings is None:
                raise CommandError(cause) from exc
            database = describe_database(settings.settings)
            raise CommandError(f"cannot use the database {database}: {cause}") from exc


def _settings(**overrides: Any) -> Settings:
    """The settings of this run; flags given on the command line win over the environment."""
    try:
        settings = Settings(
            **{name: value for name, value in overrides.items() if value is not None}
        )
    except ValidationError as exc:
        raise SettingError(describe_settings_error(exc)) from exc
    click.get_current_context().ensure_object(_Invocation).settings = settings
    configure_logging(settings.log_format, settings.log_level)
    return settings


def _run(work: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(work)


def _sqlite_only(settings: Settings, command: str) -> None:
    if settings.database_url is not None:
        raise click.UsageError(
            f"{command} works on the SQLite database; for PostgreSQL use pg_dump and pg_restore"
        )


def _existing_database(settings: Settings) -> None:
    """Refuse to go on, and to create an empty database, when DATABASE_PATH names nothing."""
    if settings.database_url is None and not settings.database_path.exists():
        raise DatabaseFileError(
            str(settings.database_path),
            f"there is no such file ({PROGRAM} migrate creates it)",
        )


def _bad_out(message: str) -> NoReturn:
    raise click.BadParameter(message, param_hint="'--out'")


def _refuse_the_database(settings: Settings, out: Path) -> None:
    if settings.database_url is None and is_database_file(out, settings.database_path):
        _bad_out(f"{out} is the database (or a file SQLite keeps beside it); choose another file")


@click.group(
    name=PROGRAM,
    cls=_CommandLine,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)
@click.version_option(package_name="interview-system", prog_name=PROGRAM)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Interview session store: the HTTP API and the tools to run it.

    Settings come from the environment and from .env (see the README):
    DATABASE_PATH or DATABASE_URL, HOST, PORT, API_KEY, API_KEYS and the retention rules.
    """
    ctx.ensure_object(_Invocation)
    configure_logging()


@cli.command()
# These defaults come from the settings, so they are spelt out rather than shown.
@click.option("--host", metavar="ADDRESS", help="Address to bind.  [default: HOST, else 127.0.0.1]")
@click.option("--port", type=int, metavar="PORT", help="Port to bind.  [default: PORT, else 8000]")
def serve(host: str | None, port: int | None) -> None:
    """Serve the HTTP API until stopped (Ctrl-C or SIGTERM).

    Applies pending migrations first; a database or port that cannot be used
    stops it before it serves.
    """
    settings = _settings(host=host, port=port)
    # Imported here so that the other commands do not pay for the web stack.
    from src.api.app import create_app
    from src.api.server import check_can_listen
    from src.api.server import serve as serve_app

    try:
        check_can_listen(settings.host, settings.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(f"port {settings.port} is in use; set PORT or use --port") from exc
        reason = exc.strerror or str(exc)
        raise CommandError(f"cannot listen on {settings.host}:{settings.port}: {reason}") from exc
    _check_key_file(settings)
    _migrate(settings)
    _log().info(
        "serving",
        host=settings.host,
        port=settings.port,
        database=describe_database(settings),
        api_key="active" if settings.api_key is not None else "off",
        api_keys=str(settings.api_keys) if settings.api_keys is not None else "off",
    )
    if (
        settings.api_key is None
        and settings.api_keys is None
        and not ipaddress.ip_address(_resolve(settings.host)).is_loopback
    ):
        _log().warning(
            "serving_without_api_key",
            host=settings.host,
            advice="anyone who can reach this address can read and change sessions; "
            "set API_KEYS or API_KEY",
        )
    serve_app(create_app(settings), settings)


def _check_key_file(settings: Settings) -> None:
    """Stop before serving when the key file that API_KEYS names cannot be used."""
    if settings.api_keys is None:
        return
    try:
        KeyRing(None, settings.api_keys).load()
    except KeyFileError as exc:
        raise CommandError(str(exc)) from exc


def _resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return "0.0.0.0"


@cli.command()
def migrate() -> None:
    """Apply pending database migrations and exit.

    Creates the SQLite file, and its folder, if missing.
    """
    _migrate(_settings())


def _migrate(settings: Settings) -> None:
    existed = _run(database_exists(settings))
    version = _run(migrate_database(settings))
    _log().info(
        "database_opened" if existed else "database_created",
        database=describe_database(settings),
        schema_version=version,
    )


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
def backup(file: Path) -> None:
    """Copy the SQLite database to FILE while servers keep using it.

    The copy is one consistent snapshot, checked and written to a temporary
    file first, so FILE is never half-written.
    """
    settings = _settings()
    _sqlite_only(settings, "backup")
    _existing_database(settings)
    sessions = _run(backup_database(settings.database_path, file))
    _log().info(
        "backed_up", database=describe_database(settings), copy=str(file), sessions=sessions
    )


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
def restore(file: Path) -> None:
    """Replace the SQLite database with the checked copy in FILE.

    Refused while any other process has the database open.
    FILE is checked completely first; the database it replaces is kept beside
    it as <name>.before-restore-<time>.
    """
    settings = _settings()
    _sqlite_only(settings, "restore")
    result = _run(restore_database(settings.database_path, file))
    kept = {} if result.safety_copy is None else {"safety_copy": str(result.safety_copy)}
    _log().info(
        "restored",
        database=describe_database(settings),
        copy=str(file),
        sessions=result.sessions,
        **kept,
    )


@cli.command()
@click.argument("session_id", required=False, metavar="[SESSION_ID]")
@click.option(
    "--format",
    "export_format",
    type=click.Choice([*(f.value for f in ExportFormat), StudyExportFormat.JSONL.value]),
    default=ExportFormat.JSON.value,
    show_default=True,
    help="What to write: json, markdown, csv, graphml or qdpx for a session; "
    "qdpx (then the default), csv or jsonl for a study.",
)
@click.option(
    "--study",
    "study_id",
    help="Export every session of this study into one file (qdpx, csv or jsonl).",
)
@click.option(
    "--status",
    type=click.Choice([s.value for s in SessionStatus]),
    help="Export every session in this status, each to a file of its own in the --out folder.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="File to write, or an existing folder to write into; with --status, the folder "
    "(created if missing).  [default: standard output]",
)
@click.option(
    "--pseudonymize",
    is_flag=True,
    help="Replace participant ids with keyed pseudonyms (PSEUDONYM_KEY) and e-mail addresses, "
    "phone numbers and URLs in what was said with [email], [phone], [url].",
)
def export(
    session_id: str | None,
    export_format: str,
    study_id: str | None,
    status: str | None,
    out: Path | None,
    pseudonymize: bool,
) -> None:
    """Write session records to standard output or to files.

    Either one session's whole record (SESSION_ID), every session in a
    status (--status), each to a file of its own, or every session of a study
    (--study) in one file.
    Files are written under a temporary name and renamed into place when
    complete, so a failed export leaves no partial file.
    """
    if [session_id, status, study_id].count(None) != 2:
        raise click.UsageError(
            "export takes one of a SESSION_ID, --status or --study, not several or none"
        )
    if status is not None and out is None:
        raise click.UsageError("export --status needs --out FOLDER")
    settings = _settings()
    if study_id is not None:
        given = click.get_current_context().get_parameter_source("export_format")
        if given is click.core.ParameterSource.DEFAULT:
            export_format = StudyExportFormat.QDPX.value
        if export_format not in {*StudyExportFormat}:
            raise click.UsageError("export --study writes qdpx, csv or jsonl")
        study_format = StudyExportFormat(export_format)
        if out is not None and out.is_dir():
            out = out / f"study.{study_format.extension}"
        target = None if out is None else _export_target(settings, "", None, out)
        pseudonymizer = _pseudonymizer(settings) if pseudonymize else None
        _existing_database(settings)
        _run(_export_study(settings, study_id, study_format, target, pseudonymizer))
        return
    if export_format not in {*ExportFormat}:
        raise click.UsageError(f"{export_format} is for --study exports only")
    chosen = ExportFormat(export_format)
    pseudonymizer = _pseudonymizer(settings) if pseudonymize else None
    if session_id is None:
        assert status is not None and out is not None
        if out.exists() and not out.is_dir():
            _bad_out(f"{out} is a file, not a folder")
        _existing_database(settings)
        _run(_export_status(settings, SessionStatus(status), chosen, out, pseudonymizer))
        return
    target = _export_target(settings, session_id, chosen, out)
    _existing_database(settings)
    _run(_export_session(settings, session_id, chosen, target, pseudonymizer))


def _pseudonymizer(settings: Settings) -> Pseudonymizer:
    if settings.pseudonym_key is None:
        raise CommandError("--pseudonymize needs PSEUDONYM_KEY: the key of the pseudonyms")
    return Pseudonymizer(settings.pseudonym_key.get_secret_value().encode())


def _export_target(
    settings: Settings, session_id: str, export_format: ExportFormat | None, out: Path | None
) -> Path | None:
    if out is None:
        return None
    if out.is_dir():
        return out  # the file in it is named after the session, once it is read
    target = out
    if target.parent.exists() and not target.parent.is_dir():
        _bad_out(f"{target.parent} is a file, not a folder")
    if not target.parent.is_dir():
        _bad_out(f"the folder {target.parent} does not exist")
    _refuse_the_database(settings, target)
    return target


async def _export_session(
    settings: Settings,
    session_id: str,
    export_format: ExportFormat,
    target: Path | None,
    pseudonymizer: Pseudonymizer | None,
) -> None:
    async with create_repository(settings, one_pass=True) as repository:
        if target is not None and await asyncio.to_thread(target.is_dir):
            target = await export_path_in(repository, session_id, export_format, target)
            _refuse_the_database(settings, target)
        if target is None:
            await export_one(
                repository, session_id, export_format, sys.stdout, pseudonymizer=pseudonymizer
            )
        else:
            with _blaming_the_export():
                await export_to_file(
                    repository, session_id, export_format, target, pseudonymizer=pseudonymizer
                )


async def _export_study(
    settings: Settings,
    study_id: str,
    export_format: StudyExportFormat,
    target: Path | None,
    pseudonymizer: Pseudonymizer | None,
) -> None:
    async with create_repository(settings, one_pass=True) as repository:
        if target is None:
            await export_study_to(
                repository, study_id, export_format, sys.stdout, pseudonymizer=pseudonymizer
            )
            return
        with _blaming_the_export():
            await write_atomically(
                target,
                lambda out: export_study_to(
                    repository, study_id, export_format, out, pseudonymizer=pseudonymizer
                ),
            )


async def _export_status(
    settings: Settings,
    status: SessionStatus,
    export_format: ExportFormat,
    folder: Path,
    pseudonymizer: Pseudonymizer | None,
) -> None:
    with _blaming_the_export():
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    async with create_repository(settings, one_pass=True) as repository:
        ids = await session_ids_with_status(repository, status)
        with (
            click.progressbar(
                length=len(ids), label="exporting", file=sys.stderr, show_pos=True
            ) as bar,
            _blaming_the_export(),
        ):
            files = await export_many(
                repository,
                ids,
                export_format,
                folder,
                on_each=lambda: bar.update(1),
                pseudonymizer=pseudonymizer,
            )
    _log().info("exported", sessions=len(files), folder=str(folder))


@contextmanager
def _blaming_the_export() -> Iterator[None]:
    """Name the export's file, not the database, when writing it fails (a full disk, say)."""
    try:
        yield
    except OSError as exc:
        raise CommandError(
            f"cannot write the export to {exc.filename}: {exc.strerror or exc}"
        ) from exc


@cli.command()
@click.argument("query")
@click.option("--study", "study_id", help="Only sessions of this study.")
@click.option("--participant", "participant_id", help="Only sessions of this participant.")
@click.option(
    "--speaker", type=click.Choice([s.value for s in Speaker]), help="Only what this speaker said."
)
@click.option("--methodology", help="Only sessions of this methodology.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Most hits to show."
)
def search(
    query: str,
    study_id: str | None,
    participant_id: str | None,
    speaker: str | None,
    methodology: str | None,
    limit: int,
) -> None:
    """Find utterances by what was said: one line per hit, best first.

    Each line is the session id, the turn, the speaker and the snippet, with
    the matches in <mark>...</mark>, separated by tabs. Words must all match;
    "quoted phrases" match as phrases; coff* is a prefix.
    """
    settings = _settings()
    _existing_database(settings)
    filters = {
        "study_id": study_id,
        "participant_id": participant_id,
        "speaker": speaker,
        "methodology": methodology,
    }
    _run(_search(settings, query, filters, limit))


async def _search(
    settings: Settings, query: str, filters: dict[str, str | None], limit: int
) -> None:
    async with create_repository(settings) as repository:
        await write_search(repository, query, sys.stdout, **filters, limit=limit)


@cli.command()
def sweep() -> None:
    """Apply the retention rules once and exit (for cron).

    The rules are IDLE_PAUSE_AFTER and ABANDON_PAUSED_AFTER; with neither set,
    nothing changes.
    """
    settings = _settings()
    _existing_database(settings)
    if not settings.retention_enabled:
        _log().info("retention_off", advice="set IDLE_PAUSE_AFTER and/or ABANDON_PAUSED_AFTER")
        return
    _run(_sweep(settings))


async def _sweep(settings: Settings) -> None:
    async with create_repository(settings) as repository:
        result = await sweep_once(
            repository,
            idle_pause_after=settings.idle_pause_after,
            abandon_paused_after=settings.abandon_paused_after,
        )
    _log().info("swept", paused=len(result.paused), abandoned=len(result.abandoned))


@cli.group()
def keys() -> None:
    """Add, list and remove the named API keys in the file API_KEYS names.

    Scopes: read; write (implies read); admin (implies write and read). The
    file keeps only each key's digest. A running server sees every change at
    once, with no restart.
    """


def _key_file() -> Path:
    settings = _settings()
    if settings.api_keys is None:
        raise SettingError("API_KEYS is not set: set it to the path of the key file")
    return settings.api_keys


@keys.command("add")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    type=click.Choice([scope.value for scope in Scope]),
    multiple=True,
    help="What the key may do (admin implies write, write implies read).  [required]",
)
def keys_add(name: str, scopes: tuple[str, ...]) -> None:
    """Add a key named NAME and print it, once, as the last word.

    The file (created if missing) keeps only the key's digest: store the key
    now, it cannot be shown again. A name already in the file is refused.
    """
    if not scopes:
        # click's own message for this lists the choices on lines of their own.
        raise click.UsageError("keys add needs --scope read, write or admin")
    path = _key_file()
    granted = with_implied(Scope(scope) for scope in scopes)
    try:
        key = add_key(path, name, granted)
    except (KeyFileError, KeyNameError) as exc:
        raise CommandError(str(exc)) from exc
    _log().info("key_added", name=name, file=str(path))
    click.echo(f"The key {name!r} ({_scope_list(granted)}), shown only this once:")
    click.echo(key)


@keys.command("list")
def keys_list() -> None:
    """List the keys' names, scopes and dates; never the keys."""
    path = _key_file()
    try:
        stored = read_key_file(path)
    except KeyFileError as exc:
        raise CommandError(str(exc)) from exc
    rows = [
        (
            key.name,
            _scope_list(with_implied(key.scopes)),
            f"{key.created.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
        )
        for key in stored
    ]
    if _settings().api_key is not None:
        rows.append((API_KEY_NAME, _scope_list(frozenset(Scope)), "(the key in API_KEY)"))
    if not rows:
        _say(f"there are no keys in {path} (add one with: {PROGRAM} keys add NAME --scope S)")
        return
    widths = [max(len(row[column]) for row in [("NAME", "SCOPES", ""), *rows]) for column in (0, 1)]
    for name, granted, created in [("NAME", "SCOPES", "CREATED"), *rows]:
        click.echo(f"{name:<{widths[0]}}  {granted:<{widths[1]}}  {created}")


@keys.command("remove")
@click.argument("name")
def keys_remove(name: str) -> None:
    """Remove the key named NAME; servers refuse it from then on."""
    path = _key_file()
    try:
        remove_key(path, name)
    except (KeyFileError, KeyNameError) as exc:
        raise CommandError(str(exc)) from exc
    _log().info("key_removed", name=name, file=str(path))


def _scope_list(scopes: frozenset[Scope]) -> str:
    return ", ".join(scope for scope in Scope if scope in scopes)


@cli.command()
@click.option("--participant", "participant_id", required=True, help="The participant id to erase.")
def erase(participant_id: str) -> None:
    """Erase a participant: every session naming them and every fork of one, for good.

    Prints what was erased as JSON ({"sessions": N, "utterances": N, "events": N})
    and records it, counts only, in the audit log. Exit code 1 when no session
    names the participant.
    """
    settings = _settings()
    _existing_database(settings)
    erased = _run(_erase(settings, participant_id))
    click.echo(erased.model_dump_json())


async def _erase(settings: Settings, participant_id: str) -> Erasure:
    async with create_repository(settings) as repository:
        erased = await repository.erase_participant(participant_id)
        await repository.append_audit([command_erasure(erased.model_dump())])
    _log().info("erased", **erased.model_dump())
    return erased


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    return cli.main(args=argv, prog_name=PROGRAM, standalone_mode=False)


if __name__ == "__main__":
    sys.exit(main())
