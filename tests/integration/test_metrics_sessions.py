"""`GET /metrics` counts the stored sessions by status when it is scraped."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import running_server

pytestmark = pytest.mark.sqlite

KEY = "g" * 24
_NEW = {"methodology": "mec", "concept_id": "coffee-01", "concept_name": "Coffee"}


def _sessions_by_status(text: str) -> dict[str, float]:
    return {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "interview_sessions"
        for sample in family.samples
    }


def test_sessions_are_counted_by_status_at_each_scrape(tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(tmp_path / "g.db"), "DATABASE_URL": "", "API_KEY": KEY}
    auth = {"Authorization": f"Bearer {KEY}"}
    with running_server(tmp_path, env) as url, httpx.Client(base_url=url, headers=auth) as client:
        empty = _sessions_by_status(client.get("/metrics").text)
        ids = [client.post("/sessions", json=_NEW).json()["id"] for _ in range(4)]
        client.post(f"/sessions/{ids[0]}/pause")
        client.post(f"/sessions/{ids[1]}/complete")
        client.post(f"/sessions/{ids[2]}/complete")
        counted = _sessions_by_status(client.get("/metrics").text)
        client.delete(f"/sessions/{ids[1]}")
        after_delete = _sessions_by_status(client.get("/metrics").text)
        locked_out = httpx.get(f"{url}/metrics")

    assert empty == {"active": 0, "paused": 0, "completed": 0, "abandoned": 0}
    assert counted == {"active": 1, "paused": 1, "completed": 2, "abandoned": 0}
    assert after_delete == {"active": 1, "paused": 1, "completed": 1, "abandoned": 0}
    assert locked_out.status_code == 401
