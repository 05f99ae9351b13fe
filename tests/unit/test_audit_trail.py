"""The audit trail writes entries in batches after their answers, and never loses one silently."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from structlog.testing import capture_logs

from src.api.audit import GATHER_SECONDS, AuditTrail
from src.domain.audit import AuditAction, AuditEntry
from src.persistence.repositories.session_repo import SessionRepository


def entry(number: int) -> AuditEntry:
    return AuditEntry(
        at=datetime(2026, 11, 30, 6, 0, number, tzinfo=UTC),
        key_name="ingest",
        action=AuditAction.WRITE,
        method="POST",
        path=f"/sessions/s{number}/turns",
        session_id=f"s{number}",
    )


async def test_entries_are_written_together_shortly_after_they_are_recorded(
    db_path: Path,
) -> None:
    async with SessionRepository(db_path) as repository:
        trail = AuditTrail(repository)
        for number in range(3):
            trail.record(entry(number))

        assert (await repository.list_audit()).items == []  # not on the request's path
        await asyncio.sleep(GATHER_SECONDS * 3)
        written = (await repository.list_audit()).items
        await trail.close()

    assert [item.session_id for item in written] == ["s2", "s1", "s0"]


async def test_close_writes_what_is_still_waiting(db_path: Path) -> None:
    async with SessionRepository(db_path) as repository:
        trail = AuditTrail(repository)
        trail.record(entry(1))
        await trail.close()

        assert [item.session_id for item in (await repository.list_audit()).items] == ["s1"]


async def test_entries_that_cannot_be_written_are_logged_one_by_one(db_path: Path) -> None:
    repository = SessionRepository(db_path)
    await repository.close()  # every write now fails
    trail = AuditTrail(repository)

    with capture_logs() as logs:
        trail.record(entry(1))
        trail.record(entry(2))
        await trail.close()

    failures = [log for log in logs if log["event"] == "audit_write_failed"]
    lost = [log for log in logs if log["event"] == "audit_entry_lost"]
    assert failures and all(log["log_level"] == "error" for log in failures + lost)
    assert [(log["path"], log["key_name"], log["action"]) for log in lost] == [
        ("/sessions/s1/turns", "ingest", "write"),
        ("/sessions/s2/turns", "ingest", "write"),
    ]
