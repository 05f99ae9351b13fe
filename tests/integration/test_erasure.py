"""Erasing a participant takes every session naming them, and every fork of one, with all
they hold, in one transaction; nothing of anyone else; on every backend."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from src.core.errors import ParticipantNotFoundError, SessionNotFoundError
from src.domain.models.session import Session
from src.domain.models.turn import TurnRecordData
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.backends import PostgresBackend, SqliteBackend
from tests.builders import new_session, state_of

# Every table that holds a session's rows, keyed by session_id.
SESSION_TABLES = ("utterances", "turn_records", "session_versions", "state_data", "events")


def said(turn: int, text: str) -> list[NewUtterance]:
    return [
        NewUtterance(turn_number=turn, speaker=Speaker.INTERVIEWER, text=f"Why {text}?"),
        NewUtterance(turn_number=turn, speaker=Speaker.RESPONDENT, text=f"Because {text}."),
    ]


async def interview(
    repo: SessionRepositoryProtocol, turns: int, words: str, **fields: Any
) -> Session:
    """A session with `turns` turns, each with two utterances, a record and state data."""
    session = await repo.create(new_session(**fields))
    for turn in range(1, turns + 1):
        stored = await repo.record_turn(
            session.id,
            said(turn, words),
            state_of(session, turn_count=turn, data={"said": words, f"turn_{turn}": turn}),
            record=TurnRecordData(strategy="ladder", signals={"note": words}),
        )
        session = stored.session
    return session


async def rows_left(backend: SqliteBackend | PostgresBackend, session_ids: list[str]) -> int:
    quoted = ", ".join(f"'{session_id}'" for session_id in session_ids)
    total = 0
    for table in ("sessions", *SESSION_TABLES):
        column = "id" if table == "sessions" else "session_id"
        row = await backend.fetch_one(
            f"SELECT count(*) AS n FROM {table} WHERE {column} IN ({quoted})"
        )
        assert row is not None
        total += int(row["n"])
    return total


async def test_erasure_takes_every_session_of_the_participant_in_every_study_and_counts_them(
    backend: SqliteBackend | PostgresBackend, repo: SessionRepositoryProtocol
) -> None:
    first = await interview(repo, 3, "quokka", study_id="st-a", participant_id="p-erased")
    second = await interview(repo, 2, "quokka", study_id="st-b", participant_id="p-erased")
    other = await interview(repo, 2, "quokka", study_id="st-a", participant_id="p-kept")
    assert len((await repo.search("quokka")).items) == 14

    quoted = ", ".join(f"'{session.id}'" for session in (first, second))
    logged = await backend.fetch_one(
        f"SELECT count(*) AS n FROM events WHERE session_id IN ({quoted})"
    )
    assert logged is not None and int(logged["n"]) > 0

    erased = await repo.erase_participant("p-erased")

    assert (erased.sessions, erased.utterances, erased.events) == (2, 10, int(logged["n"]))
    assert await repo.get(first.id) is None
    assert await repo.get(second.id) is None
    assert await rows_left(backend, [first.id, second.id]) == 0
    hits = (await repo.search("quokka")).items
    assert {hit.session_id for hit in hits} == {other.id}
    assert len(hits) == 4
    kept = await repo.get(other.id)
    assert kept is not None and kept.version == other.version
    assert len(await repo.list_turn_records(other.id)) == 2
    assert len((await repo.list_versions(other.id)).items) == 3


async def test_erasure_takes_forks_however_deep_even_one_naming_someone_else(
    backend: SqliteBackend | PostgresBackend, repo: SessionRepositoryProtocol
) -> None:
    source = await interview(repo, 3, "wombat", participant_id="p-forked")
    fork = await repo.fork(source.id, 2)
    renamed = await repo.fork(fork.id, 1)
    # A fork given to another participant still holds copies of what this one said.
    await repo.patch_session(renamed.id, {"participant_id": "p-other"})
    unrelated = await interview(repo, 1, "wombat", participant_id="p-other")

    erased = await repo.erase_participant("p-forked")

    assert (erased.sessions, erased.utterances) == (3, 6 + 4 + 2)
    assert await rows_left(backend, [source.id, fork.id, renamed.id]) == 0
    assert {hit.session_id for hit in (await repo.search("wombat")).items} == {unrelated.id}


async def test_forks_racing_an_erasure_go_with_it_or_find_their_source_gone(
    backend: SqliteBackend | PostgresBackend, repo: SessionRepositoryProtocol
) -> None:
    # On PostgreSQL the forks run on connections of their own, beside the erasure: one
    # that commits while the erasure waits for its locks must not outlive it.
    for trial in range(5):
        participant = f"p-race-{trial}"
        sources = [await interview(repo, 1, "secret", participant_id=participant) for _ in range(3)]
        forks = [repo.fork(source.id, 1) for source in sources for _ in range(4)]
        outcomes = await asyncio.gather(
            *forks[:6], repo.erase_participant(participant), *forks[6:], return_exceptions=True
        )
        made = [outcome.id for outcome in outcomes if isinstance(outcome, Session)]
        refused = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        assert all(isinstance(error, SessionNotFoundError) for error in refused), refused
        assert await rows_left(backend, [source.id for source in sources] + made) == 0
    assert (await repo.search("secret")).items == []


async def test_erasing_a_participant_no_session_names_is_refused_and_changes_nothing(
    repo: SessionRepositoryProtocol,
) -> None:
    kept = await interview(repo, 1, "numbat", participant_id="p-here")

    with pytest.raises(ParticipantNotFoundError) as refused:
        await repo.erase_participant("p-nowhere")

    assert "p-nowhere" not in str(refused.value)  # the id stays out of messages and logs
    assert await repo.get(kept.id) == kept


async def test_erasing_twice_finds_nothing_the_second_time(
    repo: SessionRepositoryProtocol,
) -> None:
    await interview(repo, 1, "bilby", participant_id="p-twice")

    first = await repo.erase_participant("p-twice")

    assert first.sessions == 1
    with pytest.raises(ParticipantNotFoundError):
        await repo.erase_participant("p-twice")


@pytest.mark.postgres
async def test_postgres_erasure_leaves_no_search_entry_and_the_deletes_show_in_pg_stat(
    postgres_backend: PostgresBackend,
) -> None:
    async with postgres_backend.open() as repo:
        session = await interview(repo, 4, "platypus", participant_id="p-pg")
        await repo.erase_participant("p-pg")

    matching = await postgres_backend.fetch_one(
        "SELECT count(*) AS n FROM utterances"
        " WHERE search_vector @@ to_tsquery('utterance_search', 'platypus')"
    )
    assert matching == {"n": 0}
    assert await rows_left(postgres_backend, [session.id]) == 0
    assert await deletions_seen(postgres_backend, "utterances") == 8
    assert await deletions_seen(postgres_backend, "sessions") == 1


async def deletions_seen(backend: PostgresBackend, table: str) -> int:
    """The table's deletions as pg_stat shows them, once the server has reported them."""
    deadline = time.monotonic() + 10
    while True:
        stats = await backend.fetch_one(
            "SELECT n_tup_del FROM pg_stat_user_tables"
            f" WHERE schemaname = current_schema() AND relname = '{table}'"
        )
        assert stats is not None
        deleted = int(stats["n_tup_del"])
        if deleted or time.monotonic() > deadline:
            return deleted
        await asyncio.sleep(0.2)
