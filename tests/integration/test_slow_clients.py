"""A real server drops clients that never finish a request, and refuses huge headers.

Each case talks to a real `interview-system serve` process over a raw socket;
the cases that wait for a timeout run side by side, so together they take
about one timeout.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from src.api.http_protocol import BODY_IDLE_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_HEADER_BYTES
from tests.servers import running_server

NEW_SESSION = b'{"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"}'
# How long past a timeout the server may take to act on it.
GRACE_S = 5.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    directory: Path = tmp_path_factory.mktemp("slow-clients")
    env = {"DATABASE_PATH": str(directory / "slow.db"), "DATABASE_URL": ""}
    with running_server(directory, env) as url:
        address = urlsplit(url)
        assert address.hostname is not None and address.port is not None
        yield address.hostname, address.port


def connect(server: tuple[str, int], timeout: float) -> socket.socket:
    connection = socket.create_connection(server, timeout=timeout)
    connection.settimeout(timeout)
    return connection


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes; raises TimeoutError if it never does."""
    received = b""
    while True:
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def dropped_after(server: tuple[str, int], sent: bytes, timeout: float) -> tuple[bytes, float]:
    """Send `sent`, then wait: what the server answered, and after how many seconds it closed."""
    started = time.monotonic()
    with connect(server, timeout + GRACE_S) as connection:
        if sent:
            connection.sendall(sent)
        answer = read_until_closed(connection)
    return answer, time.monotonic() - started


PARTIAL_HEADERS = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n"
PARTIAL_BODY = (
    b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n" % len(NEW_SESSION) + NEW_SESSION[:10]
)
PARTIAL_CHUNKED_BODY = (
    b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"met'
)

CASES: dict[str, tuple[bytes, float, bytes]] = {
    # name: (what the client sends before going quiet, the timeout, the status it may get)
    "nothing at all": (b"", HEADER_TIMEOUT_S, b"408"),
    "part of the headers": (PARTIAL_HEADERS, HEADER_TIMEOUT_S, b"408"),
    "part of a declared body": (PARTIAL_BODY, BODY_IDLE_TIMEOUT_S, b"408"),
    "part of a chunked body": (PARTIAL_CHUNKED_BODY, BODY_IDLE_TIMEOUT_S, b"408"),
}


def test_incomplete_requests_are_dropped_after_their_timeout(server: tuple[str, int]) -> None:
    def attempt(case: tuple[bytes, float, bytes]) -> tuple[bytes, float]:
        sent, timeout, _ = case
        return dropped_after(server, sent, timeout)

    with ThreadPoolExecutor(len(CASES)) as pool:
        results = dict(zip(CASES, pool.map(attempt, CASES.values()), strict=True))

    for name, (answer, elapsed) in results.items():
        _, timeout, status = CASES[name]
        assert timeout - 1 <= elapsed <= timeout + GRACE_S, (name, elapsed)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 " + status), (name, answer[:200])


def test_headers_sent_slowly_but_in_time_are_served(server: tuple[str, int]) -> None:
    with connect(server, 30) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\n")
        time.sleep(1)
        connection.sendall(b"Host: x\r\nConnection: close\r\n\r\n")
        answer = read_until_closed(connection)

    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def test_a_keep_alive_connection_serves_one_request_after_another(
    server: tuple[str, int],
) -> None:
    host, port = server
    with httpx.Client(base_url=f"http://{host}:{port}") as client:
        for _ in range(3):
            assert client.get("/health").status_code == 200
            time.sleep(0.5)


@pytest.mark.parametrize("size", [MAX_HEADER_BYTES + 1024, 4 * 1024 * 1024])
def test_headers_over_the_limit_are_refused(server: tuple[str, int], size: int) -> None:
    with connect(server, 30) as connection:
        try:
            connection.sendall(
                b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
            )
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading and closed: that is a refusal too
        answer = read_until_closed(connection)

    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"200 OK" not in answer


def test_headers_within_the_limit_are_read(server: tuple[str, int]) -> None:
    host, port = server
    response = httpx.get(
        f"http://{host}:{port}/health", headers={"X-Big": "a" * (MAX_HEADER_BYTES // 2)}
    )

    assert response.status_code == 200


def test_a_431_is_a_problem(server: tuple[str, int]) -> None:
    host, port = server

    response = httpx.get(
        f"http://{host}:{port}/health", headers={"X-Big": "a" * (MAX_HEADER_BYTES + 1)}
    )

    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 431


@pytest.mark.parametrize(
    "request_head",
    [
        b"POST /sessions/x/pause HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: 1IGP5]GTa?bL\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ],
)
def test_what_the_parser_refuses_is_a_problem_too(
    server: tuple[str, int], request_head: bytes
) -> None:
    with connect(server, 30) as connection:
        connection.sendall(request_head)
        answer = read_until_closed(connection)

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["status"] == 400
