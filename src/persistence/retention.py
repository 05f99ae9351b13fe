"""Retention: idle active sessions become paused, long-paused ones abandoned.

Each page of sessions is found idle and moved in one statement, so a
session written in the meantime (an utterance appended, say) is left alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from src.core.config import Settings
from src.core.errors import StorageError
from src.domain.models.session import SessionStatus, utc_now
from src.persistence.repositories.protocol import SessionRepositoryProtocol

__all__ = ["SweepResult", "keep_sweeping", "keep_trimming_events", "sweep", "trim_events"]

_PAGE = 100
_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SweepResult:
    """The ids of the sessions one sweep paused and abandoned."""

    paused: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)


async def _move_idle(
    repository: SessionRepositoryProtocol,
    source: SessionStatus,
    target: SessionStatus,
    idle_since: datetime,
) -> list[str]:
    moved: list[str] = []
    while True:
        page = await repository.move_idle(source, target, idle_since=idle_since, limit=_PAGE)
        for session in page:
            moved.append(session.id)
            _log.info(
                "retention_abandoned" if target is SessionStatus.ABANDONED else "retention_paused",
                session_id=session.id,
                from_status=source.value,
                to_status=target.value,
                idle_since=idle_since.isoformat(),
            )
        if len(page) < _PAGE:
            return moved


async def sweep(
    repository: SessionRepositoryProtocol,
    *,
    idle_pause_after: timedelta | None,
    abandon_paused_after: timedelta | None,
    now: datetime | None = None,
) -> SweepResult:
    """Apply both retention rules once, as of `now`; a rule that is None is off."""
    moment = now or utc_now()
    result = SweepResult()
    # Abandon first, so that a session paused by this sweep is not judged on
    # the write that paused it.
    if abandon_paused_after is not None:
        result.abandoned.extend(
            await _move_idle(
                repository,
                SessionStatus.PAUSED,
                SessionStatus.ABANDONED,
                moment - abandon_paused_after,
            )
        )
    if idle_pause_after is not None:
        result.paused.extend(
            await _move_idle(
                repository, SessionStatus.ACTIVE, SessionStatus.PAUSED, moment - idle_pause_after
            )
        )
    return result


async def keep_sweeping(
    repository: SessionRepositoryProtocol,
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Sweep every `retention_sweep_interval` until cancelled.

    A failed sweep is logged and the next one runs at the next interval,
    whatever the error: a driver's own error after its connections were cut
    is as passing as the store's, and a task that ended would stop retention
    until a restart without a word.
    """
    while True:
        try:
            await sweep(
                repository,
                idle_pause_after=settings.idle_pause_after,
                abandon_paused_after=settings.abandon_paused_after,
                now=clock(),
            )
        except StorageError as exc:
            _log.warning("retention_sweep_failed", error=exc.detail)
        except Exception as exc:
            _log.error("retention_sweep_failed", error=str(exc) or repr(exc), exc_info=exc)
        await asyncio.sleep(settings.retention_sweep_interval.total_seconds())


async def trim_events(
    repository: SessionRepositoryProtocol, keep: timedelta, *, now: datetime | None = None
) -> int:
    """Drop the events written more than `keep` before `now`, a page at a time; return the
    newest id trimmed (0 if none ever was)."""
    before = (now or utc_now()) - keep
    trimmed = -1
    while True:
        through = await repository.trim_events(before, limit=_TRIM_PAGE)
        if through == trimmed:
            return through
        trimmed = through


_TRIM_PAGE = 1000


async def keep_trimming_events(
    repository: SessionRepositoryProtocol,
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Trim the event log to EVENT_RETENTION every `retention_sweep_interval` until
    cancelled; a failure is logged and tried again at the next interval, as sweeps are."""
    while True:
        try:
            await trim_events(repository, settings.event_retention, now=clock())
        except StorageError as exc:
            _log.warning("event_trim_failed", error=exc.detail)
        except Exception as exc:
            _log.error("event_trim_failed", error=str(exc) or repr(exc), exc_info=exc)
        await asyncio.sleep(settings.retention_sweep_interval.total_seconds())
