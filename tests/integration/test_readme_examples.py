"""The README's examples run as written: the curl walk-through and both Python examples."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import running_server

pytestmark = pytest.mark.sqlite

README = Path(__file__).parents[2] / "README.md"
DOCUMENTED_URL = "http://127.0.0.1:8000"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", README.read_text(), re.M | re.S)


def _env(tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_PATH": str(tmp_path / "readme.db"), "DATABASE_URL": "", "LOG_FORMAT": "json"}


def test_the_curl_walk_through_runs_top_to_bottom(tmp_path: Path) -> None:
    walk = [block for block in _blocks("sh") if f"{DOCUMENTED_URL}/sessions" in block]
    assert len(walk) >= 2, "the API and transcript walk-throughs"
    script = "set -euo pipefail\n" + "\n".join(walk)

    with running_server(tmp_path, _env(tmp_path)) as url:
        done = subprocess.run(
            ["bash", "-c", script.replace(DOCUMENTED_URL, url)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert done.returncode == 0, done.stderr
    statuses = [int(code) for code in re.findall(r"^HTTP/1\.1 (\d{3})", done.stdout, re.M)]
    assert statuses and all(code < 400 for code in statuses), done.stdout
    log = "".join(path.read_text() for path in tmp_path.glob("server-*.log"))
    requests = [
        record
        for record in map(json.loads, log.splitlines())
        if record["event"] == "request" and record["path"] != "/health"
    ]
    # Every curl of the script reached the server, and none was refused.
    assert len(requests) == script.count("curl ") - script.count("/health")
    assert [r for r in requests if r["status"] >= 400] == []
    deleted = [r for r in requests if r["method"] == "DELETE"]
    assert [r["status"] for r in deleted] == [204]
    (exported,) = tmp_path.glob("coffee-01_*.csv")
    assert exported.read_text().startswith("session_id,")


def test_the_client_example_runs_as_written(tmp_path: Path) -> None:
    (example,) = [block for block in _blocks("python") if "AsyncClient(" in block]

    with running_server(tmp_path, _env(tmp_path)) as url:
        done = subprocess.run(
            [sys.executable, "-c", example.replace(DOCUMENTED_URL, url)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "someone wrote first: now at version 2",
        "interviewer: Why does that matter?",
        "respondent: I start work early.",
        "1 active sessions; this one at version 3",
        "turn 1 stored at version 2",
        "history: created, turn, state, turn",
        "2 sessions in the study; the fork has turns [1]",
    ]


def test_the_repository_example_runs_as_written(tmp_path: Path) -> None:
    (example,) = [block for block in _blocks("python") if "SessionRepository(" in block]

    done = subprocess.run(
        [sys.executable, "-c", example],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    first, second, third = done.stdout.splitlines()
    assert first.split() == ["1", "3", "2", "2"]
    assert second.split()[2:] == ["2", "s-1-b", "2"]  # version 2, the fork, two sessions in "oat"
    assert third == "{'active': 2}"
    assert (tmp_path / "data" / "interview.db").is_file()
