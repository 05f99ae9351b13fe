"""A client that fell behind and reads nothing has its connection closed, not kept forever."""

from __future__ import annotations

import asyncio
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


def _read_to_the_end(connection: socket.socket, seconds: float) -> bytes:
    """Everything until the server closes the connection (raises TimeoutError if it does not)."""
    connection.settimeout(seconds)
    received = bytearray()
    while chunk := connection.recv(1 << 20):
        received += chunk
    return bytes(received)


async def test_a_stream_that_fell_behind_is_closed_once_its_client_reads_nothing(
    db_path: Path,
) -> None:
    settings = Settings(database_path=db_path, database_url=None)
    async with serving_in_process(settings, event_stall_seconds=STALL) as url:
        stuck = _stuck_subscriber(url)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                await asyncio.sleep(0.3)
                created = await client.post("/sessions", json=NEW_SESSION_BODY)
                session_id = created.json()["id"]
                # Some 14 MB of events: past the socket buffers, then past the 8 MiB that
                # may wait for one stream.
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
                # The writes were not held up. The stream fell behind and its client has
                # read nothing for longer than STALL: the server has closed it, so what the
                # client finally reads ends there, without the resume it could not be sent.
                await asyncio.sleep(4 * STALL)
                received = await asyncio.to_thread(_read_to_the_end, stuck, 10)
        finally:
            stuck.close()

    assert received.startswith(b"HTTP/1.1 200")
    assert b"stream.resume" not in received  # it could not even be sent
