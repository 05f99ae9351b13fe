"""`serve` on a port another process holds: one line, exit 1, nothing served or logged first."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import SERVER, free_port

pytestmark = pytest.mark.sqlite


@pytest.fixture
def busy_port() -> Iterator[int]:
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        yield port


def serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SERVER), "serve", *args],
        env={
            "PATH": "/usr/bin:/bin",
            "DATABASE_PATH": str(tmp_path / "interview.db"),
            "DATABASE_URL": "",
            **env,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_busy_port_given_with_the_flag_stops_serve_in_one_line(
    tmp_path: Path, busy_port: int
) -> None:
    result = serve(tmp_path, "--port", str(busy_port))

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"interview-system: port {busy_port} is in use; set PORT or use --port"
    ]


def test_a_busy_port_from_the_environment_stops_serve_in_one_line(
    tmp_path: Path, busy_port: int
) -> None:
    result = serve(tmp_path, PORT=str(busy_port))

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"interview-system: port {busy_port} is in use; set PORT or use --port"
    ]
    assert not (tmp_path / "interview.db").exists()
