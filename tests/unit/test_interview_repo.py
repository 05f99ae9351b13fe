"""The repository's open state, records, history and forks, on both backends."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from src.core.errors import (
    InvalidStateError,
    SessionMismatchError,
    TurnNotRecordedError,
    TurnRecordExistsError,
)
from src.domain.models.json import MAX_CONFIG_BYTES, MAX_SIGNALS_BYTES, MAX_STATE_DATA_BYTES
from src.domain.models.session import Session, SessionState
from src.domain.models.turn import TurnRecordData
from src.domain.models.utterance import NewUtterance
from src.persistence.database import MIGRATIONS_DIRECTORY
from src.persistence.postgres import MIGRATIONS_DIRECTORY as POSTGRES_MIGRATIONS
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.backends import PostgresBackend, SqliteBackend
from tests.builders import new_session, state_of

Backend = SqliteBackend | PostgresBackend


def compact(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def said(turn: int, speaker: str = "interviewer") -> NewUtterance:
    return NewUtterance(turn_number=turn, speaker=speaker, text=f"{speaker} {turn}")


def blob(size: int) -> dict[str, Any]:
    """An object of exactly `size` bytes as compact JSON."""
    return {"b": "x" * (size - len(compact({"b": ""})))}


class TestLimits:
    @pytest.mark.parametrize(
        ("build", "limit", "location"),
        [
            (lambda value: new_session(config=value), MAX_CONFIG_BYTES, ("config",)),
            (
                lambda value: SessionState(
                    methodology="m", concept_id="c", concept_name="n", data=value
                ),
                MAX_STATE_DATA_BYTES,
                ("data",),
            ),
            (lambda value: TurnRecordData(signals=value), MAX_SIGNALS_BYTES, ("signals",)),
        ],
    )
    def test_open_json_fields_take_their_limit_and_refuse_one_byte_more(
        self, build: Any, limit: int, location: tuple[str, ...]
    ) -> None:
        build(blob(limit))
        with pytest.raises(ValidationError) as refused:
            build(blob(limit + 1))
        assert refused.value.errors()[0]["loc"] == location

    def test_sizes_count_utf8_bytes(self) -> None:
        with pytest.raises(ValidationError):
            new_session(config={"b": "é" * (MAX_CONFIG_BYTES // 2)})

    def test_a_data_key_with_nul_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            SessionState(methodology="m", concept_id="c", concept_name="n", data={"a\x00": 1})


class TestOpenState:
    async def test_a_large_state_is_kept_exactly_and_a_patch_stores_only_its_keys(
        self, repo: SessionRepositoryProtocol, backend: Backend
    ) -> None:
        session = await repo.create(new_session())
        big = blob(MAX_STATE_DATA_BYTES - 200)["b"]
        data = {"tracker": {"blob": big}, "mode": "exploratory", "x": [1, 2.5, None]}
        updated = await repo.update_state(session.id, state_of(session, data=data))
        assert updated.state.data == data
        patched = await repo.patch_state(session.id, {"data": {"mode": "focused"}})
        assert patched.state.data == {**data, "mode": "focused"}
        assert await repo.get(session.id) == patched

        row = await backend.fetch_one(
            "SELECT data_set, data_unset FROM session_versions"
            f" WHERE session_id = '{session.id}' AND version = {patched.version}"
        )
        assert row == {"data_set": '{"mode":"focused"}', "data_unset": None}

    async def test_an_unchanged_state_stores_no_data_in_the_history(
        self, repo: SessionRepositoryProtocol, backend: Backend
    ) -> None:
        session = await repo.create(new_session(state=None))
        first = await repo.update_state(session.id, state_of(session, data={"a": 1}))
        again = await repo.update_state(session.id, state_of(first, turn_count=3))
        row = await backend.fetch_one(
            "SELECT data_set, data_unset FROM session_versions"
            f" WHERE session_id = '{session.id}' AND version = {again.version}"
        )
        assert row == {"data_set": None, "data_unset": None}
        assert (await repo.get_version(session.id, first.version)) == first

    async def test_patch_refusals_store_nothing(self, repo: SessionRepositoryProtocol) -> None:
        session = await repo.create(new_session())
        with pytest.raises(SessionMismatchError):
            await repo.patch_state(session.id, {"concept_id": "other"})
        with pytest.raises(InvalidStateError) as refused:
            await repo.patch_state(session.id, {"coverage_score": 7})
        assert refused.value.errors[0]["field"] == "coverage_score"
        with pytest.raises(InvalidStateError):
            await repo.patch_state(session.id, ["not", "an", "object"])
        assert await repo.get(session.id) == session


class TestTurnsAndForks:
    async def test_a_refused_record_leaves_nothing_of_its_turn(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session = await repo.create(new_session())
        record = TurnRecordData(strategy="s", usage={"input_tokens": 3})
        await repo.record_turn(session.id, [said(1)], state_patch={}, record=record)
        before = await repo.get(session.id)
        with pytest.raises(TurnRecordExistsError):
            await repo.record_turn(
                session.id,
                [said(1, "respondent")],
                state_patch={"data": {"x": 1}},
                record=record,
            )
        assert await repo.get(session.id) == before
        assert len((await repo.list_utterances(session.id)).items) == 1

    async def test_a_turn_naming_two_turn_numbers_is_refused(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session = await repo.create(new_session())
        with pytest.raises(ValueError, match="one turn number"):
            await repo.record_turn(session.id, [said(1), said(2)], session.state)

    async def test_fork_past_the_last_turn_is_refused(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session = await repo.create(new_session())
        with pytest.raises(TurnNotRecordedError):
            await repo.fork(session.id, 1)
        forked = await repo.fork(session.id, 0, new_id=f"{session.id}-f")
        assert forked.forked_from is not None
        assert forked.forked_from.turn_number == 0


def interviews_migration(directory: Path) -> int:
    """The number of the migration that added studies, open state, records and history."""
    (path,) = directory.glob("*_interviews.sql")
    return int(path.name[:3])


def migrations_before_this_feature(directory: Path) -> list[Path]:
    number = interviews_migration(directory)
    return [path for path in sorted(directory.glob("*.sql")) if int(path.name[:3]) < number]


def old_sqlite_store(db_path: Path) -> None:
    """A SQLite store at the schema before this feature, with a session and an utterance."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(db_path)
    try:
        for path in migrations_before_this_feature(MIGRATIONS_DIRECTORY):
            connection.executescript(path.read_text())
        connection.executescript(
            """
            INSERT INTO sessions VALUES ('old', 'mec', 'c', 'Coffee', 'paused', 3, 0.5, 'ladder',
                4, '2026-01-01T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z', NULL);
            INSERT INTO utterances VALUES ('old', 1, 'respondent', 'hi', NULL,
                '2026-01-01T10:00:00.000000Z');
            """
        )
        connection.execute(
            f"PRAGMA user_version = {interviews_migration(MIGRATIONS_DIRECTORY) - 1}"
        )
    finally:
        connection.close()


async def old_postgres_store(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for path in migrations_before_this_feature(POSTGRES_MIGRATIONS):
            await connection.execute(path.read_text())
            await connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                int(path.name[:3]),
                path.stem[4:],
            )
        await connection.execute(
            """
            INSERT INTO sessions VALUES ('old', 'mec', 'c', 'Coffee', 'paused', 3, 0.5, 'ladder',
                4, '2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z', NULL);
            INSERT INTO utterances VALUES ('old', 1, 'respondent', 'hi', NULL,
                '2026-01-01T10:00:00Z');
            """
        )
    finally:
        await connection.close()


async def test_sessions_stored_before_the_migration_stay_readable(backend: Backend) -> None:
    if isinstance(backend, SqliteBackend):
        old_sqlite_store(backend.path)
    else:
        await old_postgres_store(backend.dsn)

    async with backend.open() as repo:
        old = await repo.get("old")
        assert isinstance(old, Session)
        assert (old.version, old.status, old.state.turn_count, old.state.last_strategy) == (
            4,
            "paused",
            3,
            "ladder",
        )
        assert (old.labels, old.config, old.state.data, old.study_id, old.forked_from) == (
            {},
            {},
            {},
            None,
            None,
        )
        assert old.usage.turns == 0
        history = await repo.list_versions("old")
        assert [(v.version, v.change) for v in history.items] == [(4, "state")]
        assert await repo.get_version("old", 4) == old
        turns = await repo.list_turns("old")
        assert [(t.turn_number, t.version, t.record) for t in turns.items] == [(1, 4, None)]
        fork = await repo.fork("old", 1, new_id="old-fork")
        assert fork.state.turn_count == 3
        went_on = await repo.patch_state("old", {"data": {"mode": "focused"}})
        assert went_on.version == 5


def nested(depth: int) -> dict[str, Any]:
    """An object nesting objects and arrays `depth` levels deep, itself included."""
    value: Any = []
    for level in range(depth - 2):
        value = {"k": value} if level % 2 else [value]
    return {"k": value}


@pytest.mark.parametrize(
    "build",
    [
        lambda value: new_session(config=value),
        lambda value: SessionState(methodology="m", concept_id="c", concept_name="n", data=value),
        lambda value: TurnRecordData(signals=value),
    ],
)
def test_open_json_nests_at_most_32_levels(build: Any) -> None:
    build(nested(32))
    with pytest.raises(ValidationError, match="at most 32 levels"):
        build(nested(33))


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = "[" * 100 + '\\"{' + "}" * 3
    SessionState(methodology="m", concept_id="c", concept_name="n", data={"a": text, "b": [text]})


def test_a_value_nested_past_what_json_can_write_is_refused_not_an_error() -> None:
    with pytest.raises(ValidationError, match="at most 32 levels"):
        TurnRecordData(signals=nested(3000))


async def test_a_write_returns_the_data_it_stored(repo: SessionRepositoryProtocol) -> None:
    session = await repo.create(new_session())
    patched = await repo.patch_state(session.id, {"data": {"a": [1, {"b": None}]}})
    assert patched.state.data == {"a": [1, {"b": None}]}
    assert patched == await repo.get(session.id)
    assert patched.model_dump_json() == (await repo.get(session.id)).model_dump_json()  # type: ignore[union-attr]
