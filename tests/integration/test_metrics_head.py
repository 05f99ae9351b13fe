"""HEAD requests are counted under the route that answered them, not as `unrouted`.

Load balancers probe `/health` with HEAD; counted as `unrouted`, their
probes hid among scanners' requests for paths that do not exist.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import running_server

pytestmark = pytest.mark.sqlite


def requests_counted(text: str, method: str, route: str, status: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "interview_http_requests_total"
        and sample.labels == {"method": method, "route": route, "status": status}
    )


def test_head_is_counted_under_its_route(tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(tmp_path / "m.db"), "DATABASE_URL": ""}
    with running_server(tmp_path, env) as url, httpx.Client(base_url=url) as client:
        session_id = client.post(
            "/sessions", json={"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"}
        ).json()["id"]
        for _ in range(3):
            assert client.head("/health").status_code == 200
        assert client.head(f"/sessions/{session_id}").status_code == 200
        assert client.head("/sessions/nobody").status_code == 404
        text = client.get("/metrics").text

    assert requests_counted(text, "HEAD", "/health", "200") == 3
    assert requests_counted(text, "HEAD", "/sessions/{session_id}", "200") == 1
    assert requests_counted(text, "HEAD", "/sessions/{session_id}", "404") == 1
    assert requests_counted(text, "HEAD", "unrouted", "200") == 0
