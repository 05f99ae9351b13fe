"""A body trickled in a byte at a time, never pausing long enough to time out, is cut off.

Pausing under the body's idle timeout between bytes, one client could hold
a connection (and a request) open for days, and many such clients every
connection the server can take: the slow-POST attack.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from src.api.http_protocol import BODY_GRACE_S, BODY_IDLE_TIMEOUT_S, BODY_MIN_BYTES_PER_S
from tests.servers import running_server

# How long past its deadline the server may take to act on it.
SLACK_S = 5.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    directory: Path = tmp_path_factory.mktemp("slow-body")
    env = {"DATABASE_PATH": str(directory / "slow.db"), "DATABASE_URL": ""}
    with running_server(directory, env) as url:
        address = urlsplit(url)
        assert address.hostname is not None and address.port is not None
        yield address.hostname, address.port


def trickle(server: tuple[str, int], gap_s: float, give_up_after_s: float) -> tuple[bytes, float]:
    """Declare a large body, send it a byte every `gap_s`; what came back and when it closed."""
    started = time.monotonic()
    with socket.create_connection(server, timeout=gap_s) as connection:
        connection.sendall(
            b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{"
        )
        answer = b""
        while time.monotonic() - started < give_up_after_s:
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                try:
                    connection.sendall(b" ")
                except (BrokenPipeError, ConnectionResetError):
                    return answer, time.monotonic() - started
                continue
            except ConnectionResetError:
                return answer, time.monotonic() - started
            if not chunk:
                return answer, time.monotonic() - started
            answer += chunk
    return answer, time.monotonic() - started


def test_a_body_trickled_under_the_idle_timeout_is_cut_off(server: tuple[str, int]) -> None:
    gap_s = BODY_IDLE_TIMEOUT_S / 4
    deadline_s = BODY_GRACE_S + 100 / BODY_MIN_BYTES_PER_S + SLACK_S

    answer, closed_after = trickle(server, gap_s, give_up_after_s=deadline_s + BODY_IDLE_TIMEOUT_S)

    assert closed_after < deadline_s, f"still open after {closed_after:.1f} s"
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"too slowly" in answer
