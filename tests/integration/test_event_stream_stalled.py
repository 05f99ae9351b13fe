"""A client that fell behind and reads nothing has its connection closed, not kept forever."""

from __future__ import annotations

import asyncio
import errno
import socket
from pathlib import Path

import httpx
import pytest

from src.core.config import Settings
from tests.builders import NEW_SESSION_BODY
from tests.servers import serving_in_process

pytestmark = pytest.mark.sqlite

STALL = 0.5


def _stuck_subscriber(url: str) -> socket.socket:
    """A subscriber that asks for the stream and then reads nothing."""
    host, port = httpx.URL(url).host, httpx.URL(url).port
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect((host, port or 80))
    stuck.sendall(f"GET /events HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return stuck


async def test_the_closed_stream_s_connection_is_gone_while_its_client_still_reads_nothing(
    db_path: Path,
) -> None:
    # Some 14 MB of events: past the socket buffers, then past the 8 MiB that may wait for
    # one stream. The writes are not held up; the stream falls behind, its client reads
    # nothing for longer than STALL, and the server resets the connection (closed gently,
    # it would wait for the client to read what was queued for it, which it never does).
    settings = Settings(database_path=db_path, database_url=None)
    async with serving_in_process(settings, event_stall_seconds=STALL) as url:
        stuck = _stuck_subscriber(url)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                await asyncio.sleep(0.3)
                created = await client.post("/sessions", json=NEW_SESSION_BODY)
                session_id = created.json()["id"]
                for turn in range(1, 351):
                    said = {"turn_number": turn, "speaker": "respondent", "text": "x" * 20_000}
                    answer = await client.post(
                        f"/sessions/{session_id}/turns",
                        json={
                            "utterances": [said, {**said, "speaker": "interviewer"}],
                            "state_patch": {"turn_count": turn},
                        },
                    )
                    assert answer.status_code == 201, answer.text
                reset = 0
                for _ in range(50):
                    await asyncio.sleep(0.1)
                    reset = stuck.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if reset:
                        break
        finally:
            stuck.close()

    assert reset == errno.ECONNRESET
