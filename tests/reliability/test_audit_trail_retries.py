"""The audit trail outlasts a database that cannot be written for a while: nothing is lost."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from src.api.audit import AuditTrail
from src.domain.audit import AuditAction, AuditEntry
from src.persistence.database import BUSY_TIMEOUT_SECONDS
from src.persistence.repositories.session_repo import SessionRepository
from tests.reliability.test_locked_database import write_lock_held_by_another_process

pytestmark = pytest.mark.sqlite

ENTRY = AuditEntry(
    at=datetime(2026, 11, 30, 6, 0, tzinfo=UTC),
    key_name="ingest",
    action=AuditAction.WRITE,
    method="POST",
    path="/sessions",
)


async def test_a_batch_refused_by_a_locked_database_is_written_once_the_lock_goes(
    db_path: Path,
) -> None:
    async with SessionRepository(db_path) as repository:
        trail = AuditTrail(repository)
        with capture_logs() as logs:
            with write_lock_held_by_another_process(db_path):
                trail.record(ENTRY)
                deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS * 3
                while not any(log["event"] == "audit_write_failed" for log in logs):
                    assert time.monotonic() < deadline, logs
                    await asyncio.sleep(0.1)
            deadline = time.monotonic() + 10
            while not (written := (await repository.list_audit()).items):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            await trail.close()

    assert written == [ENTRY]
    assert not [log for log in logs if log["event"] == "audit_entry_lost"]
