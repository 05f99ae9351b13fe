"""PostgreSQL: a table another connection holds locked gets 503 within the lock timeout.

SQLite gives up waiting for a lock after its 5 s busy timeout; on
PostgreSQL a request waited for as long as the lock was held (an operator's
`LOCK TABLE`, a long `ALTER TABLE` or `VACUUM FULL`), and every request
behind it too, each holding a pooled connection.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from tests.backends import PostgresBackend
from tests.http import serve_in_process

pytestmark = pytest.mark.postgres

NEW_SESSION = {"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"}
# The lock timeout (5 s), and time to spare on a busy machine.
ANSWER_WITHIN_S = 15.0


async def test_a_locked_table_gets_503_then_serves_once_released(
    postgres_backend: PostgresBackend,
) -> None:
    async with serve_in_process(postgres_backend.settings()) as client:
        session = (await client.post("/sessions", json=NEW_SESSION)).json()
        locker = await asyncpg.connect(postgres_backend.dsn)
        try:
            locking = locker.transaction()
            await locking.start()
            await locker.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")

            started = time.monotonic()
            read, write = await asyncio.wait_for(
                asyncio.gather(
                    client.get(f"/sessions/{session['id']}"),
                    client.post(f"/sessions/{session['id']}/pause"),
                ),
                ANSWER_WITHIN_S,
            )
            waited = time.monotonic() - started

            await locking.rollback()
        finally:
            await locker.close()

        for answer in (read, write):
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"]
            assert answer.headers["content-type"] == "application/problem+json"
        assert waited < ANSWER_WITHIN_S
        after = await client.post(f"/sessions/{session['id']}/pause")
        assert after.status_code == 200, after.text
        assert after.json()["version"] == 2
