"""src.client against a real server process on PostgreSQL: a turn, its history, a fork,
the filters, search, the sessions gauge and an export."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from src.client import AsyncClient
from src.core.errors import StudyNotFoundError
from src.domain.models.utterance import NewUtterance
from tests.backends import PostgresBackend
from tests.servers import running_server

pytestmark = pytest.mark.postgres


async def test_the_client_works_the_same_on_postgresql(
    postgres_backend: PostgresBackend, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": postgres_backend.dsn, "DATABASE_POOL_SIZE": "4"}
    with running_server(tmp_path, env) as url:
        async with AsyncClient(url) as client:
            session = await client.create_session(
                methodology="mec",
                concept_id="oat-milk",
                concept_name="Oat milk",
                study_id="pg-study",
                labels={"run": "1"},
            )
            turn = await client.record_turn(
                session.id,
                [
                    NewUtterance(turn_number=1, speaker="interviewer", text="Why oat milk?"),
                    NewUtterance(turn_number=1, speaker="respondent", text="Creamy café taste."),
                ],
                state_patch={"turn_count": 1, "data": {"mode": "focused"}},
                record={"strategy": "ladder", "usage": {"input_tokens": 7}},
                expected_version=1,
            )
            patched = await client.patch_session(session.id, {"participant_id": "p-1"})
            changes = [version.change async for version in client.list_versions(session.id)]
            fork = await client.fork_session(session.id, at_turn=1)
            listed = [s.id async for s in client.list_sessions(labels={"run": "1"})]
            total = await client.count_sessions(study_id="pg-study", status="all")
            summary = await client.get_study("pg-study")
            hits = [hit async for hit in client.search("cafe", study_id="pg-study")]
            exported = b"".join([piece async for piece in client.export_session(session.id)])
            with pytest.raises(StudyNotFoundError):
                await client.get_study("none")
            async with httpx.AsyncClient(base_url=url) as http:
                metrics = (await http.get("/metrics")).text

    assert (turn.session.usage.input_tokens, turn.session.state.data) == (7, {"mode": "focused"})
    assert patched.participant_id == "p-1"
    assert changes == ["created", "turn", "labels"]
    assert fork.forked_from is not None and fork.forked_from.session_id == session.id
    assert set(listed) == {session.id, fork.id}
    assert total == 2
    assert summary.sessions == {"active": 2}
    # Both sessions hold the answer; accents do not count.
    assert sorted(hit.session_id for hit in hits) == sorted([session.id, fork.id])
    assert b"Creamy caf" in exported
    gauge = {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "interview_sessions"
        for sample in family.samples
    }
    assert gauge == {"active": 2, "paused": 0, "completed": 0, "abandoned": 0}
