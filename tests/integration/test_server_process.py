"""The real `interview-system serve` process, over HTTP on a free port."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.builders import NEW_SESSION_BODY
from tests.servers import launch_server, running_server

pytestmark = pytest.mark.sqlite


def test_sessions_survive_a_restart_of_the_real_server(tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(tmp_path / "served.db"), "DATABASE_URL": ""}
    new = {"methodology": "zmet", "concept_id": "concept-7", "concept_name": "Public transport"}

    with running_server(tmp_path, env) as url, httpx.Client(base_url=url) as client:
        created = [client.post("/sessions", json=new).json() for _ in range(3)]
        paused = client.post(f"/sessions/{created[0]['id']}/pause")
        assert paused.status_code == 200

    with running_server(tmp_path, env) as url, httpx.Client(base_url=url) as client:
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
        oversize = client.post("/sessions", content=b"x" * (1024 * 1024 + 1))
        assert oversize.status_code == 413
        assert oversize.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("api_key", "warned"), [("", True), ("k" * 20, False)])
def test_serving_beyond_loopback_without_a_key_is_warned_about(
    tmp_path: Path, api_key: str, warned: bool
) -> None:
    env = {
        "DATABASE_PATH": str(tmp_path / "open.db"),
        "DATABASE_URL": "",
        "HOST": "0.0.0.0",
        "API_KEY": api_key,
    }

    with running_server(tmp_path, env):
        pass

    log = "".join(path.read_text() for path in tmp_path.glob("server-*.log"))
    assert ("serving_without_api_key" in log) is warned


def test_a_client_that_stops_reading_its_event_stream_does_not_hold_up_shutdown(
    tmp_path: Path,
) -> None:
    env = {"DATABASE_PATH": str(tmp_path / "stalled.db"), "DATABASE_URL": ""}
    server = launch_server(tmp_path, env)
    stalled = socket.socket()
    try:
        server.wait_until_healthy()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
        stalled.sendall(b"GET /events HTTP/1.1\r\nHost: stalled\r\n\r\n")
        with httpx.Client(base_url=server.url) as client:
            session_id = client.post("/sessions", json=NEW_SESSION_BODY).json()["id"]
            for turn in range(1, 301):
                said = {"turn_number": turn, "speaker": "respondent", "text": "x" * 20_000}
                response = client.post(f"/sessions/{session_id}/utterances", json=said)
                assert response.status_code == 201
        # The stream's events now wait in buffers the client never drains.

        begun = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=60)

        assert time.monotonic() - begun < 30
        assert "Application shutdown complete" in server.log_path.read_text()
    finally:
        stalled.close()
        if server.process.poll() is None:
            server.kill()


def test_open_event_streams_end_cleanly_when_the_server_stops(tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(tmp_path / "streams.db"), "DATABASE_URL": ""}
    server = launch_server(tmp_path, env)
    readers = []
    try:
        server.wait_until_healthy()
        port = int(server.url.rsplit(":", 1)[1])
        for _ in range(3):
            reader = socket.create_connection(("127.0.0.1", port))
            reader.sendall(b"GET /events HTTP/1.1\r\nHost: reader\r\n\r\n")
            readers.append(reader)
        with httpx.Client(base_url=server.url) as client:
            client.post("/sessions", json=NEW_SESSION_BODY)
        time.sleep(0.5)

        server.stop()

        # Each stream got the end of a chunked answer, and the log has no error about it.
        for reader in readers:
            reader.settimeout(10)
            received = b""
            while chunk := reader.recv(65536):
                received += chunk
            assert received.endswith(b"0\r\n\r\n"), received[-200:]
        log = server.log_path.read_text()
        assert "without completing response" not in log, log
        assert "[error" not in log, log
    finally:
        for reader in readers:
            reader.close()
        if server.process.poll() is None:
            server.kill()
