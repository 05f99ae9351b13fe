"""src.client against a real server process: studies, patches, turns with records, history,
forks, the list filters, search, pseudonymised exports and scoped keys."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from src.client import ApiError, AsyncClient, Client, InsufficientScopeError
from src.core.errors import (
    InvalidSearchQueryError,
    InvalidStateError,
    SessionMismatchError,
    StaleSessionError,
    StudyNotFoundError,
    TurnNotRecordedError,
    TurnRecordExistsError,
    VersionNotFoundError,
)
from src.core.keys import Scope, add_key
from src.domain.models.turn import RecordUsage, TurnRecordData
from src.domain.models.utterance import NewUtterance
from tests.servers import running_server

pytestmark = pytest.mark.sqlite

KEY = "r" * 24
COFFEE: dict[str, Any] = {"methodology": "mec", "concept_id": "coffee-02", "concept_name": "Coffee"}


@dataclass(frozen=True)
class Server:
    url: str
    read_only_key: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("client-routes")
    key_file = folder / "keys.toml"
    read_only_key = add_key(key_file, "reader", [Scope.READ])
    env = {
        "DATABASE_PATH": str(folder / "client.db"),
        "DATABASE_URL": "",
        "API_KEY": KEY,
        "API_KEYS": str(key_file),
        "PSEUDONYM_KEY": "p" * 32,
    }
    with running_server(folder, env) as url:
        yield Server(url, read_only_key)


def _turn(number: int, question: str, answer: str) -> list[NewUtterance]:
    return [
        NewUtterance(turn_number=number, speaker="interviewer", text=question),
        NewUtterance(turn_number=number, speaker="respondent", text=answer),
    ]


def _record(strategy: str, tokens: int) -> TurnRecordData:
    return TurnRecordData(
        strategy=strategy,
        scores={"depth": 0.5},
        signals={"model": "m"},
        usage=RecordUsage(input_tokens=tokens, output_tokens=1, cost_usd=0.25),
    )


class TestAsyncClient:
    async def test_turns_with_patches_and_records_then_turns_history_and_a_fork(
        self, server: Server
    ) -> None:
        async with AsyncClient(server.url, api_key=KEY) as client:
            session = await client.create_session(
                **COFFEE, study_id="study-turns", participant_id="p-1", config={"max_turns": 3}
            )
            first = await client.record_turn(
                session.id,
                _turn(1, "Why coffee?", "Warmth."),
                state_patch={"turn_count": 1, "data": {"mode": "explore"}},
                record=_record("ladder", 10),
                expected_version=1,
            )
            second = await client.record_turn(
                session.id,
                _turn(2, "And then?", "Calm."),
                state_patch={"turn_count": 2, "data": {"mode": None, "peak": 3}},
                record={"strategy": "probe", "usage": {"input_tokens": 5}},
            )
            with pytest.raises(TurnRecordExistsError) as twice:
                await client.record_turn(
                    session.id,
                    [NewUtterance(turn_number=2, speaker="interviewer", text="Again?")],
                    second.session.state,
                    record=_record("again", 1),
                )
            with pytest.raises(ValueError, match="exactly one"):
                await client.record_turn(session.id, _turn(3, "q", "a"))
            turns = [turn async for turn in client.list_turns(session.id, page_size=1)]
            versions = [v async for v in client.list_versions(session.id, page_size=1)]
            at_first = await client.get_version(session.id, first.session.version)
            with pytest.raises(VersionNotFoundError) as no_version:
                await client.get_version(session.id, 99)
            fork = await client.fork_session(
                session.id, at_turn=1, new_id=f"{session.id}-fork", labels={"arm": "b"}
            )
            with pytest.raises(TurnNotRecordedError) as past_the_end:
                await client.fork_session(session.id, at_turn=5)

        assert second.session.state.data == {"peak": 3}
        assert second.session.usage.input_tokens == 15
        assert twice.value.turn_number == 2
        assert [turn.turn_number for turn in turns] == [1, 2]
        assert [u.text for u in turns[1].utterances] == ["And then?", "Calm."]
        assert turns[0].record == _record("ladder", 10)
        assert turns[1].record is not None and turns[1].record.strategy == "probe"
        assert [(v.version, v.change) for v in versions] == [
            (1, "created"),
            (2, "turn"),
            (3, "turn"),
        ]
        assert at_first == first.session
        assert (no_version.value.session_id, no_version.value.version) == (session.id, 99)
        assert fork.id == f"{session.id}-fork"
        assert fork.forked_from is not None and fork.forked_from.turn_number == 1
        assert (fork.labels, fork.study_id, fork.config) == (
            {"arm": "b"},
            "study-turns",
            {"max_turns": 3},
        )
        assert fork.state.data == {"mode": "explore"}
        assert past_the_end.value.last_turn == 2

    async def test_patches_of_session_and_state_send_merge_patches(self, server: Server) -> None:
        async with AsyncClient(server.url, api_key=KEY) as client:
            session = await client.create_session(**COFFEE, labels={"arm": "a", "old": "x"})
            labelled = await client.patch_session(
                session.id,
                {"labels": {"arm": "b", "old": None}, "participant_id": "p-9"},
                expected_version=1,
            )
            with pytest.raises(StaleSessionError):
                await client.patch_session(session.id, {"labels": {}}, expected_version=1)
            patched = await client.patch_state(
                session.id, {"coverage_score": 0.5, "data": {"focus": ["price"]}}
            )
            removed = await client.patch_state(
                session.id, {"coverage_score": None, "data": {"focus": None}}
            )
            with pytest.raises(SessionMismatchError) as mismatch:
                await client.patch_state(session.id, {"concept_id": "tea"})
            with pytest.raises(InvalidStateError) as invalid:
                await client.patch_state(session.id, {"data": {"x": "y" * 300_000}})
            with pytest.raises(ApiError) as not_patchable:
                await client.patch_session(session.id, {"study_id": "s"})

        assert (labelled.labels, labelled.participant_id) == ({"arm": "b"}, "p-9")
        assert (patched.state.coverage_score, patched.state.data) == (0.5, {"focus": ["price"]})
        assert (removed.state.coverage_score, removed.state.data) == (0.0, {})
        assert mismatch.value.field == "concept_id"
        assert [error["field"] for error in invalid.value.errors] == ["data"]
        assert not_patchable.value.status == 422

    async def test_list_filters_counts_and_study_summaries(self, server: Server) -> None:
        async with AsyncClient(server.url, api_key=KEY) as client:
            study = "study-filters"
            made = [
                await client.create_session(
                    **COFFEE,
                    study_id=study,
                    participant_id=f"p-{n % 2}",
                    labels={"arm": "a" if n < 2 else "b", "run": "1"},
                )
                for n in range(4)
            ]
            await client.complete(made[0].id)

            async def ids(**filters: object) -> list[str]:
                return [s.id async for s in client.list_sessions(study_id=study, **filters)]  # type: ignore[arg-type]

            active = await ids(page_size=1)
            every = await ids(status="all")
            by_participant = await ids(status="all", participant_id="p-1")
            by_labels = await ids(status="all", labels={"arm": "b", "run": "1"})
            after_first = await ids(status="all", created_after=made[0].created_at)
            before_last = await ids(
                status="all", created_before=made[3].created_at.replace(tzinfo=None)
            )
            total = await client.count_sessions(study_id=study, status="all")
            active_total = await client.count_sessions(study_id=study)
            summary = await client.get_study(study)
            with pytest.raises(StudyNotFoundError) as unknown:
                await client.get_study("no-such-study")

        newest_first = [s.id for s in reversed(made)]
        assert active == newest_first[:3]
        assert every == newest_first
        assert by_participant == [made[3].id, made[1].id]
        assert by_labels == [made[3].id, made[2].id]
        assert after_first == newest_first[:3]
        assert before_last == newest_first[1:]
        assert (total, active_total) == (4, 3)
        assert summary.sessions == {"active": 3, "completed": 1}
        assert unknown.value.study_id == "no-such-study"

    async def test_search_pages_through_hits_and_refuses_a_blank_query(
        self, server: Server
    ) -> None:
        async with AsyncClient(server.url, api_key=KEY) as client:
            session = await client.create_session(**COFFEE, study_id="study-search")
            for number in (1, 2, 3):
                await client.record_turn(
                    session.id,
                    _turn(number, "Tell me more.", f"Espresso memory {number}."),
                    state_patch={"turn_count": number},
                )
            hits = [
                hit
                async for hit in client.search(
                    "espresso", study_id="study-search", speaker="respondent", page_size=2
                )
            ]
            with pytest.raises(InvalidSearchQueryError):
                [hit async for hit in client.search("***")]

        assert sorted(hit.turn_number for hit in hits) == [1, 2, 3]
        assert {hit.session_id for hit in hits} == {session.id}
        assert all("<mark>" in hit.snippet for hit in hits)

    async def test_a_pseudonymised_export_hides_the_participant_and_contact_details(
        self, server: Server
    ) -> None:
        async with AsyncClient(server.url, api_key=KEY) as client:
            session = await client.create_session(**COFFEE, participant_id="alice-42")
            await client.append_utterance(
                session.id,
                NewUtterance(turn_number=1, speaker="respondent", text="Mail alice@example.org"),
            )
            plain = b"".join([p async for p in client.export_session(session.id)]).decode()
            hidden = b"".join(
                [p async for p in client.export_session(session.id, pseudonymize=True)]
            ).decode()

        assert "alice-42" in plain and "alice@example.org" in plain
        assert "alice-42" not in hidden and "alice@example.org" not in hidden
        assert "[email]" in json.loads(hidden)["utterances"][0]["text"]

    async def test_a_key_without_the_scope_raises_insufficient_scope(self, server: Server) -> None:
        async with (
            AsyncClient(server.url, api_key=KEY) as writer,
            AsyncClient(server.url, api_key=server.read_only_key) as reader,
        ):
            session = await writer.create_session(**COFFEE)
            read = await reader.get_session(session.id)
            with pytest.raises(InsufficientScopeError) as refused:
                await reader.patch_state(session.id, {"turn_count": 3})

        assert read == session
        assert isinstance(refused.value, ApiError)
        assert (refused.value.status, refused.value.code, refused.value.scope) == (
            403,
            "insufficient_scope",
            "write",
        )
        assert "write" in str(refused.value)


class TestClient:
    def test_the_sync_client_offers_the_new_routes(self, server: Server) -> None:
        with Client(server.url, api_key=KEY) as client:
            session = client.create_session(**COFFEE, study_id="study-sync", labels={"k": "v"})
            turn = client.record_turn(
                session.id,
                _turn(1, "Why?", "Aroma."),
                state_patch={"turn_count": 1},
                record=_record("ladder", 4),
            )
            patched = client.patch_state(session.id, {"last_strategy": "probe"})
            labelled = client.patch_session(session.id, {"participant_id": "p-s"})
            turns = list(client.list_turns(session.id))
            versions = list(client.list_versions(session.id, after=1))
            as_created = client.get_version(session.id, 1)
            fork = client.fork_session(session.id, at_turn=0)
            listed = [s.id for s in client.list_sessions(study_id="study-sync", labels={"k": "v"})]
            total = client.count_sessions(study_id="study-sync")
            summary = client.get_study("study-sync")
            hits = list(client.search("aroma", study_id="study-sync"))
            exported = b"".join(client.export_session(session.id, "csv", pseudonymize=True))
            with (
                Client(server.url, api_key=server.read_only_key) as reader,
                pytest.raises(InsufficientScopeError),
            ):
                reader.fork_session(session.id, at_turn=0)

        assert turn.session.usage.input_tokens == 4
        assert patched.state.last_strategy == "probe"
        assert labelled.participant_id == "p-s"
        assert [t.record for t in turns] == [_record("ladder", 4)]
        assert [v.change for v in versions] == ["turn", "state", "labels"]
        assert as_created.version == 1 and as_created.state.turn_count == 0
        assert fork.forked_from is not None and fork.state.turn_count == 0
        assert set(listed) == {session.id, fork.id}
        assert total == 2
        assert summary.sessions == {"active": 2}
        assert [hit.session_id for hit in hits] == [session.id]
        assert b"p-s" not in exported


def test_every_route_has_a_method_in_both_clients() -> None:
    routes = {
        "count_sessions",
        "patch_session",
        "patch_state",
        "record_turn",
        "list_turns",
        "list_versions",
        "get_version",
        "fork_session",
        "get_study",
        "search",
        "export_session",
    }
    assert routes <= set(dir(AsyncClient))
    assert routes <= set(dir(Client))


async def test_the_audit_log_pages_newest_first_for_an_admin_key(server: Server) -> None:
    async with AsyncClient(server.url, api_key=KEY) as client:
        session = await client.create_session(**COFFEE)
        await client.delete_session(session.id)
        # Entries are written just after each answer, in batches.
        for _ in range(50):
            entries = [e async for e in client.list_audit(action="write", page_size=1)]
            if any(e.session_id == session.id and e.method == "DELETE" for e in entries):
                break
            await asyncio.sleep(0.1)
    (deleted,) = [e for e in entries if e.session_id == session.id]
    assert (deleted.method, deleted.key_name, deleted.action) == ("DELETE", "api_key", "write")
    assert any(e.method == "POST" and e.path == "/sessions" for e in entries)
    assert entries == sorted(entries, key=lambda e: e.at, reverse=True)

    with (
        Client(server.url, api_key=server.read_only_key) as reader,
        pytest.raises(InsufficientScopeError),
    ):
        list(reader.list_audit())


async def test_the_event_stream_resumes_after_the_last_id_it_gave(server: Server) -> None:
    async with AsyncClient(server.url, api_key=KEY) as client:
        session = await client.create_session(**COFFEE)
        stream = client.events(session_id=session.id, after=0)
        created = await anext(stream)
        await stream.aclose()
        await client.pause(session.id)
        resumed = client.events(session_id=session.id, after=created.id)
        moved = await asyncio.wait_for(anext(resumed), timeout=10)
        await resumed.aclose()

    assert (created.type, created.session_id) == ("session.created", session.id)
    assert moved.type == "session.status_changed" and moved.id > created.id
