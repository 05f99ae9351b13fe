"""What a real server process logs, read back from its output in both formats."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.backends import postgres_schema
from tests.servers import SERVER, launch_server, running_server

_CONSOLE_LINE = re.compile(
    r"^(?P<timestamp>\d{4}-\d\d-\d\dT[\d:.]+Z) \[(?P<level>debug|info|warning|error|critical)\s*\]"
    r" (?P<event>\S.*?)(?:\s+\[(?P<logger>[\w.]+)\])?(?P<fields>(?:\s+\w+=\S*)*)\s*$"
)
_CONSOLE_FIELD = re.compile(r"(\w+)=(\S*)")
_NEW = {"methodology": "mec", "concept_id": "coffee-01", "concept_name": "Coffee"}


def _records(log_format: str, log: str) -> list[dict[str, Any]]:
    """Every line of the server's output as a dict; fails on a line in another format."""
    records = []
    for line in log.splitlines():
        if log_format == "json":
            records.append(json.loads(line))
            continue
        match = _CONSOLE_LINE.match(line)
        assert match is not None, f"not a console log line: {line!r}"
        record: dict[str, Any] = dict(_CONSOLE_FIELD.findall(match["fields"]))
        record.update(event=match["event"], level=match["level"], timestamp=match["timestamp"])
        records.append(record)
    return records


def _server_log(tmp_path: Path) -> str:
    return "".join(path.read_text() for path in sorted(tmp_path.glob("server-*.log")))


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"DATABASE_PATH": str(tmp_path / "logged.db"), "DATABASE_URL": "", **extra}


@pytest.mark.sqlite
@pytest.mark.parametrize("log_format", ["console", "json"])
def test_every_line_has_one_format_and_each_request_is_logged_once_with_its_id(
    tmp_path: Path, log_format: str
) -> None:
    env = _env(tmp_path, LOG_FORMAT=log_format, LOG_LEVEL="info")
    with running_server(tmp_path, env) as url, httpx.Client(base_url=url) as client:
        created = client.post("/sessions", json=_NEW, headers={"X-Request-ID": "client-id.1"})
        missing = client.get("/sessions/nobody")

    records = _records(log_format, _server_log(tmp_path))
    events = [record["event"] for record in records]
    # uvicorn's own lines come out in the same format as the app's.
    assert any("Application startup complete" in event for event in events)
    assert any("Application shutdown complete" in event for event in events)
    requests = [record for record in records if record["event"] == "request"]
    by_path = {record["path"]: record for record in requests}
    # /health is polled until the server answers; the two requests above come once each.
    assert [r["path"] for r in requests if r["path"] != "/health"] == [
        "/sessions",
        "/sessions/nobody",
    ]

    assert created.headers["X-Request-ID"] == "client-id.1"
    assert by_path["/sessions"]["request_id"] == "client-id.1"
    assert (by_path["/sessions"]["method"], str(by_path["/sessions"]["status"])) == ("POST", "201")
    generated = missing.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert by_path["/sessions/nobody"]["request_id"] == generated
    assert str(by_path["/sessions/nobody"]["status"]) == "404"
    assert float(by_path["/sessions/nobody"]["duration_ms"]) >= 0


@pytest.mark.sqlite
@pytest.mark.parametrize(
    "sent", ["x" * 129, "has space", "new\u00e9line", "semi;colon", ""], ids=repr
)
def test_an_unsafe_request_id_is_replaced_by_a_new_one(tmp_path: Path, sent: str) -> None:
    env = _env(tmp_path, LOG_FORMAT="json")
    with running_server(tmp_path, env) as url:
        answer = httpx.get(f"{url}/sessions", headers={b"X-Request-ID": sent.encode()})

    assert answer.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-ID"])
    logged = [record.get("request_id") for record in _records("json", _server_log(tmp_path))]
    assert answer.headers["X-Request-ID"] in logged
    assert sent not in logged


@pytest.mark.sqlite
def test_log_level_warning_leaves_out_requests_and_start_up_lines(tmp_path: Path) -> None:
    # Serving beyond loopback without a key is warned about: one line that must stay.
    env = _env(tmp_path, LOG_FORMAT="json", LOG_LEVEL="WARNING", HOST="0.0.0.0")
    server = launch_server(tmp_path, env)
    try:
        server.wait_until_healthy()
        assert httpx.get(f"{server.url}/sessions").status_code == 200
    finally:
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)

    records = _records("json", server.log_path.read_text())
    assert [(record["level"], record["event"]) for record in records] == [
        ("warning", "serving_without_api_key")
    ]


@pytest.mark.sqlite
@pytest.mark.parametrize(("variable", "value"), [("LOG_FORMAT", "xml"), ("LOG_LEVEL", "chatty")])
def test_a_bad_logging_setting_stops_the_program_naming_the_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    done = subprocess.run(
        [str(SERVER), "serve"],
        cwd=tmp_path,
        env={**os.environ, **_env(tmp_path), variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert variable in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "logged.db").exists()


@pytest.mark.sqlite
def test_start_up_says_whether_the_database_is_new_and_whether_a_key_is_active(
    tmp_path: Path,
) -> None:
    key = "k" * 24
    with running_server(tmp_path, _env(tmp_path, LOG_FORMAT="json")):
        pass
    first = _records("json", _server_log(tmp_path))
    for path in tmp_path.glob("server-*.log"):
        path.unlink()
    with running_server(tmp_path, _env(tmp_path, LOG_FORMAT="json", API_KEY=key)):
        pass
    second_log = _server_log(tmp_path)
    second = _records("json", second_log)

    def event(records: list[dict[str, Any]], name: str) -> dict[str, Any]:
        (found,) = [record for record in records if record["event"] == name]
        return found

    assert event(first, "database_created")["database"] == str(tmp_path / "logged.db")
    assert not [record for record in first if record["event"] == "database_opened"]
    assert event(second, "database_opened")["schema_version"] >= 1
    assert event(first, "serving")["api_key"] == "off"
    assert event(second, "serving")["api_key"] == "active"
    assert key not in second_log


@pytest.mark.sqlite
def test_retention_moves_are_logged_under_the_names_the_readme_gives(tmp_path: Path) -> None:
    env = _env(tmp_path, LOG_FORMAT="json", IDLE_PAUSE_AFTER="0.5", RETENTION_SWEEP_INTERVAL="0.2")
    with running_server(tmp_path, env) as url, httpx.Client(base_url=url) as client:
        session_id = client.post("/sessions", json=_NEW).json()["id"]
        deadline = time.monotonic() + 20
        while client.get(f"/sessions/{session_id}").json()["status"] != "paused":
            assert time.monotonic() < deadline, "the idle session was never paused"
            time.sleep(0.1)

    records = _records("json", _server_log(tmp_path))
    (paused,) = [record for record in records if record["event"] == "retention_paused"]
    assert paused["session_id"] == session_id
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "`retention_paused`" in readme
    assert "`retention_abandoned`" in readme


@pytest.mark.postgres
async def test_migrate_on_postgresql_says_whether_the_schema_was_new(tmp_path: Path) -> None:
    async with postgres_schema() as dsn:
        env = {**os.environ, "DATABASE_URL": dsn, "LOG_FORMAT": "json"}
        runs = [
            subprocess.run(
                [str(SERVER), "migrate"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            for _ in range(2)
        ]

    assert [run.returncode for run in runs] == [0, 0]
    events = [[r["event"] for r in _records("json", run.stderr)] for run in runs]
    assert events == [["database_created"], ["database_opened"]]
