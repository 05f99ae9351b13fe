"""src.client against a real server process: every route, its errors, pages and retries."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from src.client import ApiError, AsyncClient, Client
from src.core.errors import (
    InvalidTransitionError,
    SessionEndedError,
    SessionError,
    SessionNotFoundError,
    StaleSessionError,
    UtteranceExistsError,
)
from src.domain.export import parse_json_export
from src.domain.models.session import Session, SessionState
from src.domain.models.utterance import NewUtterance
from tests.servers import running_server

pytestmark = pytest.mark.sqlite

KEY = "c" * 24
COFFEE: dict[str, Any] = {"methodology": "mec", "concept_id": "coffee-01", "concept_name": "Coffee"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("client")
    env = {"DATABASE_PATH": str(folder / "client.db"), "DATABASE_URL": "", "API_KEY": KEY}
    with running_server(folder, env) as url:
        yield url


def _state(session: Session, **changes: object) -> SessionState:
    return session.state.model_copy(update=changes)


class TestAsyncClient:
    async def test_sessions_round_trip_and_listings_follow_every_page(self, server: str) -> None:
        async with AsyncClient(server, api_key=KEY) as client:
            created = [
                await client.create_session(
                    methodology="zmet", concept_id=f"paged-{n}", concept_name="Paging"
                )
                for n in range(5)
            ]
            fetched = await client.get_session(created[0].id)
            listed = [
                session.id
                async for session in client.list_sessions(methodology="zmet", page_size=2)
            ]

        assert fetched == created[0]
        # Five sessions on pages of two: the client followed two Link headers.
        assert listed == [session.id for session in reversed(created)]

    async def test_a_state_update_with_a_stale_version_raises_stale_with_both_versions(
        self, server: str
    ) -> None:
        async with AsyncClient(server, api_key=KEY) as client:
            session = await client.create_session(**COFFEE)
            updated = await client.update_state(
                session.id, _state(session, turn_count=1), expected_version=1
            )
            with pytest.raises(StaleSessionError) as stale:
                await client.update_state(
                    session.id, _state(session, turn_count=2), expected_version=1
                )

        assert updated.version == 2
        assert (stale.value.session_id, stale.value.expected_version) == (session.id, 1)
        assert stale.value.actual_version == 2

    async def test_modify_state_reads_again_after_a_concurrent_write_and_keeps_both(
        self, server: str
    ) -> None:
        async with (
            AsyncClient(server, api_key=KEY) as client,
            AsyncClient(server, api_key=KEY) as other,
        ):
            session = await client.create_session(**COFFEE)
            seen: list[int] = []

            async def add_a_turn(current: Session) -> SessionState:
                seen.append(current.version)
                if len(seen) == 1:
                    # Someone else writes between this read and the write below.
                    await other.update_state(
                        current.id, _state(current, coverage_score=0.5, turn_count=1)
                    )
                return _state(current, turn_count=current.state.turn_count + 1)

            result = await client.modify_state(session.id, add_a_turn)

        assert seen == [1, 2]
        assert (result.version, result.state.turn_count, result.state.coverage_score) == (
            3,
            2,
            0.5,
        )

    async def test_modify_state_gives_up_after_its_attempts(self, server: str) -> None:
        async with AsyncClient(server, api_key=KEY) as client:
            session = await client.create_session(**COFFEE)

            async def always_overtaken(current: Session) -> SessionState:
                await client.update_state(current.id, current.state)
                return current.state

            with pytest.raises(StaleSessionError):
                await client.modify_state(session.id, always_overtaken, attempts=2)

    async def test_lifecycle_and_its_refusals_raise_the_domain_errors(self, server: str) -> None:
        async with AsyncClient(server, api_key=KEY) as client:
            session = await client.create_session(**COFFEE)
            paused = await client.pause(session.id, expected_version=1)
            resumed = await client.resume(session.id)
            completed = await client.complete(session.id)
            with pytest.raises(InvalidTransitionError) as refused:
                await client.pause(session.id)
            with pytest.raises(SessionEndedError) as ended:
                await client.append_utterance(
                    session.id, NewUtterance(turn_number=1, speaker="respondent", text="Late.")
                )
            other = await client.create_session(**COFFEE)
            abandoned = await client.abandon(other.id)
            await client.delete_session(other.id)
            with pytest.raises(SessionNotFoundError) as missing:
                await client.get_session(other.id)
            with pytest.raises(SessionNotFoundError):
                await client.delete_session(other.id)

        assert [paused.status, resumed.status, completed.status, abandoned.status] == [
            "paused",
            "active",
            "completed",
            "abandoned",
        ]
        assert (refused.value.from_status, refused.value.to_status) == ("completed", "paused")
        assert ended.value.session_id == session.id
        assert missing.value.session_id == other.id
        assert str(missing.value) == f"Session {other.id!r} does not exist."

    async def test_transcript_routes_turns_resume_and_export(self, server: str) -> None:
        async with AsyncClient(server, api_key=KEY) as client:
            session = await client.create_session(**COFFEE)
            question = NewUtterance(turn_number=1, speaker="interviewer", text="Why coffee?")
            first = await client.append_utterance(session.id, question)
            with pytest.raises(UtteranceExistsError) as duplicate:
                await client.append_utterance(session.id, question)
            turn = await client.record_turn(
                session.id,
                [
                    NewUtterance(turn_number=2, speaker="interviewer", text="And then?"),
                    NewUtterance(turn_number=2, speaker="respondent", text="Warmth."),
                ],
                _state(session, turn_count=2),
                expected_version=1,
            )
            transcript = [u.text async for u in client.list_utterances(session.id, page_size=1)]
            later = [u.text async for u in client.list_utterances(session.id, after_turn=1)]
            context = await client.resume_context(session.id, last=2)
            exported = b"".join([piece async for piece in client.export_session(session.id)])
            csv = b"".join([piece async for piece in client.export_session(session.id, "csv")])
            with pytest.raises(SessionNotFoundError):
                [piece async for piece in client.export_session("nobody")]

        assert first.text == "Why coffee?"
        assert (duplicate.value.turn_number, duplicate.value.speaker) == (1, "interviewer")
        assert turn.session.version == 2
        assert [u.text for u in turn.utterances] == ["And then?", "Warmth."]
        assert transcript == ["Why coffee?", "And then?", "Warmth."]
        assert later == ["And then?", "Warmth."]
        assert [u.text for u in context.utterances] == ["And then?", "Warmth."]
        assert context.session == turn.session
        exported_session, utterances = parse_json_export(exported.decode())
        assert exported_session == turn.session
        assert len(utterances) == 3
        assert csv.decode().startswith("session_id,")

    async def test_refusals_without_a_domain_error_raise_api_error(self, server: str) -> None:
        async with AsyncClient(server) as keyless, AsyncClient(server, api_key=KEY) as client:
            with pytest.raises(ApiError) as unauthorized:
                await keyless.get_session("anything")
            with pytest.raises(ApiError) as invalid:
                await client.create_session(methodology="mec", concept_id="", concept_name="x")
            health = await keyless.health()

        assert (unauthorized.value.status, unauthorized.value.code) == (401, "unauthorized")
        assert isinstance(invalid.value, SessionError)
        assert invalid.value.status == 422
        assert [error["field"] for error in invalid.value.errors] == ["concept_id"]
        assert health["status"] == "ok"


class TestClient:
    def test_the_sync_client_offers_the_same_routes(self, server: str) -> None:
        with Client(server, api_key=KEY) as client:
            session = client.create_session(**COFFEE)
            client.append_utterance(
                session.id, NewUtterance(turn_number=1, speaker="respondent", text="Hot.")
            )
            changed = client.modify_state(session.id, lambda current: _state(current, turn_count=7))
            with pytest.raises(StaleSessionError):
                client.update_state(session.id, session.state, expected_version=1)
            listed = [s.id for s in client.list_sessions(concept_id="coffee-01", page_size=1)]
            texts = [u.text for u in client.list_utterances(session.id)]
            exported = b"".join(client.export_session(session.id, "markdown")).decode()
            paused = client.pause(session.id)
            context = client.resume_context(session.id)
            client.delete_session(session.id)
            with pytest.raises(SessionNotFoundError):
                client.get_session(session.id)

        assert changed.state.turn_count == 7
        assert session.id in listed
        assert texts == ["Hot."]
        assert "Hot." in exported
        assert context.session == paused


def test_every_contract_route_has_a_method_in_both_clients() -> None:
    routes = {
        "create_session",
        "get_session",
        "list_sessions",
        "update_state",
        "pause",
        "resume",
        "complete",
        "abandon",
        "delete_session",
        "health",
        "append_utterance",
        "list_utterances",
        "record_turn",
        "resume_context",
        "export_session",
        "modify_state",
    }
    assert routes <= set(dir(AsyncClient))
    assert routes <= set(dir(Client))


def test_importing_the_client_loads_no_server() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, src.client; print('fastapi' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"
