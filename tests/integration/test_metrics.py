"""`GET /metrics` of a real server process, read with Prometheus's own parser."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import running_server

pytestmark = pytest.mark.sqlite

KEY = "m" * 24
_NEW = {"methodology": "mec", "concept_id": "coffee-01", "concept_name": "Coffee"}
_STATE = {**_NEW, "turn_count": 1, "coverage_score": 0.1, "last_strategy": "ladder_up"}


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_by_route_template_and_status(tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(tmp_path / "m.db"), "DATABASE_URL": "", "API_KEY": KEY}
    auth = {"Authorization": f"Bearer {KEY}"}
    with running_server(tmp_path, env) as url, httpx.Client(base_url=url, headers=auth) as client:
        session_id = client.post("/sessions", json=_NEW).json()["id"]
        for _ in range(2):
            assert client.get(f"/sessions/{session_id}").status_code == 200
        assert client.get("/sessions/nobody").status_code == 404
        assert client.get("/no/such/thing").status_code == 404
        turn = {
            "utterances": [{"turn_number": 1, "speaker": "respondent", "text": "Warmth."}],
            "state": _STATE,
        }
        assert client.post(f"/sessions/{session_id}/turns", json=turn).status_code == 201
        locked_out = httpx.get(f"{url}/metrics")
        answer = client.get("/metrics")

    assert locked_out.status_code == 401
    assert answer.status_code == 200
    assert answer.headers["content-type"] == CONTENT_TYPE_LATEST
    samples = _samples(answer.text)
    requests = "interview_http_requests_total"
    template = "/sessions/{session_id}"
    assert _value(samples, requests, method="GET", route=template, status="200") == 2
    assert _value(samples, requests, method="GET", route=template, status="404") == 1
    assert _value(samples, requests, method="POST", route="/sessions", status="201") == 1
    # What no route took (no such path, no key) shares one label: scanners add no series.
    assert _value(samples, requests, method="GET", route="unrouted", status="404") == 1
    assert _value(samples, requests, method="GET", route="unrouted", status="401") == 1
    # No label ever holds a raw id.
    assert not any(session_id in value for _, labels in samples for _, value in labels)
    durations = "interview_http_request_duration_seconds_count"
    assert _value(samples, durations, method="GET", route=template) == 3
    assert (
        _value(
            samples,
            "interview_http_request_duration_seconds_bucket",
            method="GET",
            route=template,
            le="+Inf",
        )
        == 3
    )
    # A turn's writes commit as one unit: one transaction in the group-commit histogram.
    assert _value(samples, "interview_group_commit_writes_count") >= 1
    assert _value(samples, "interview_group_commit_writes_sum") >= 1


def test_database_errors_are_counted_by_kind(tmp_path: Path) -> None:
    database = tmp_path / "locked.db"
    env = {"DATABASE_PATH": str(database), "DATABASE_URL": ""}
    with running_server(tmp_path, env) as url, httpx.Client(base_url=url, timeout=30) as client:
        # Another process holds the write lock past the 5 s busy timeout.
        holder = sqlite3.connect(database, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            refused = client.post("/sessions", json=_NEW)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        answer = client.get("/metrics")

    assert refused.status_code == 503
    samples = _samples(answer.text)
    assert _value(samples, "interview_database_errors_total", kind="storage_unavailable") == 1
