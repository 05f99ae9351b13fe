"""The real `interview-system serve` process, over HTTP on a free port."""

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
def running_server(db_path: Path, cwd: Path) -> Iterator[httpx.Client]:
    """Start the server, wait until /health answers, and stop it with SIGTERM."""
    port = free_port()
    env = {**os.environ, "DATABASE_PATH": str(db_path)}
    log_path = cwd / f"server-{port}.log"
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            [str(SERVER), "serve", "--port", str(port)], cwd=cwd, env=env, stderr=log
        ) as process,
    ):
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                deadline = time.monotonic() + 30
                while True:
                    assert process.poll() is None, log_path.read_text()
                    try:
                        if client.get("/health").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, "server did not start within 30 s"
                    time.sleep(0.05)
                yield client
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM to exit with it.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log_path.read_text()


def test_sessions_survive_a_restart_of_the_real_server(tmp_path: Path) -> None:
    db_path = tmp_path / "served.db"
    new = {"methodology": "zmet", "concept_id": "concept-7", "concept_name": "Public transport"}

    with running_server(db_path, tmp_path) as client:
        created = [client.post("/sessions", json=new).json() for _ in range(3)]
        paused = client.post(f"/sessions/{created[0]['id']}/pause")
        assert paused.status_code == 200

    with running_server(db_path, tmp_path) as client:
        for session in created[1:]:
            assert client.get(f"/sessions/{session['id']}").json() == session
        assert client.get(f"/sessions/{created[0]['id']}").json() == paused.json()

        resumed = client.post(f"/sessions/{created[0]['id']}/resume", headers={"If-Match": '"2"'})
        completed = client.post(f"/sessions/{created[0]['id']}/complete")
        deleted = client.delete(f"/sessions/{created[1]['id']}")
        listed = client.get("/sessions/", params={"status": "active"})

        assert (resumed.status_code, completed.status_code) == (200, 200)
        assert completed.json()["status"] == "completed"
        assert deleted.status_code == 204
        assert [s["id"] for s in listed.json()] == [created[2]["id"]]
        oversize = client.post("/sessions", content=b"x" * 70_000)
        assert oversize.status_code == 413
        assert oversize.headers["content-type"] == "application/problem+json"
