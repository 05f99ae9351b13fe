"""Real `interview-system serve` processes on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

SERVER = Path(sys.executable).with_name("interview-system")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def running_server(cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """Start a server, wait until /health answers, yield its URL, stop it with SIGTERM."""
    port = free_port()
    log_path = cwd / f"server-{port}.log"
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            [str(SERVER), "serve", "--port", str(port)],
            cwd=cwd,
            env={**os.environ, **env},
            stderr=log,
        ) as process,
    ):
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    if httpx.get(f"{base_url}/health", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not start within 30 s"
                time.sleep(0.05)
            yield base_url
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM to exit with it.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log_path.read_text()
