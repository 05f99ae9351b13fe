"""The repository contract on every backend: the spec's five methods, lifecycle and paging."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from src.core.config import Settings
from src.core.errors import (
    InvalidCursorError,
    InvalidTransitionError,
    RepositoryClosedError,
    SessionExistsError,
    SessionMismatchError,
    SessionNotFoundError,
    StaleSessionError,
    StorageUnavailableError,
)
from src.domain.lifecycle import ALLOWED_TRANSITIONS
from src.domain.models.session import SessionStatus
from src.persistence.database import Synchronous
from src.persistence.repositories.factory import create_repository
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.repositories.session_repo import SessionRepository
from tests.backends import PostgresBackend, SqliteBackend, drop_session_tables
from tests.builders import new_session, state_of

Backend = SqliteBackend | PostgresBackend


async def stored_row(backend: Backend, session_id: str) -> dict[str, Any] | None:
    """The session's row as another connection sees it: only committed data."""
    return await backend.fetch_one(f"SELECT * FROM sessions WHERE id = '{session_id}'")


def as_datetime(value: str | datetime) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class TestCreate:
    async def test_create_returns_what_get_returns(self, repo: SessionRepositoryProtocol) -> None:
        created = await repo.create(new_session())

        assert await repo.get(created.id) == created

    async def test_create_is_committed_before_it_returns(
        self, repo: SessionRepositoryProtocol, backend: Backend
    ) -> None:
        created = await repo.create(new_session())

        row = await stored_row(backend, created.id)
        assert row is not None
        assert row["concept_name"] == "Coffee"

    async def test_created_session_survives_closing_the_repository(self, backend: Backend) -> None:
        async with backend.open() as first:
            created = await first.create(new_session())

        async with backend.open() as second:
            assert await second.get(created.id) == created

    async def test_create_stamps_the_time_of_the_write_and_version_one(
        self, repo: SessionRepositoryProtocol, backend: Backend
    ) -> None:
        long_ago = datetime(2001, 1, 1, tzinfo=UTC)
        before = datetime.now(UTC)

        created = await repo.create(new_session(created_at=long_ago, updated_at=long_ago))

        assert before <= created.created_at <= datetime.now(UTC)
        assert created.updated_at == created.created_at
        assert created.version == 1
        row = await stored_row(backend, created.id)
        assert row is not None
        assert as_datetime(row["created_at"]) == created.created_at

    async def test_create_keeps_the_state_counters(self, repo: SessionRepositoryProtocol) -> None:
        session = new_session()
        session.state = state_of(
            session, turn_count=7, coverage_score=0.25, last_strategy="laddering"
        )

        created = await repo.create(session)

        fetched = await repo.get(created.id)
        assert fetched is not None
        assert (fetched.state.turn_count, fetched.state.coverage_score) == (7, 0.25)
        assert fetched.state.last_strategy == "laddering"

    async def test_create_with_a_taken_id_raises_and_overwrites_nothing(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        original = await repo.create(new_session(concept_name="Original"))

        with pytest.raises(SessionExistsError) as raised:
            await repo.create(new_session(id=original.id, concept_name="Intruder"))

        assert raised.value.session_id == original.id
        assert await repo.get(original.id) == original

    @pytest.mark.parametrize("status", list(SessionStatus))
    async def test_create_may_store_any_status(
        self, repo: SessionRepositoryProtocol, status: SessionStatus
    ) -> None:
        created = await repo.create(new_session(status=status))

        assert created.status == status
        final = status in (SessionStatus.COMPLETED, SessionStatus.ABANDONED)
        assert (created.ended_at == created.created_at) if final else created.ended_at is None


class TestGet:
    async def test_get_missing_returns_none(self, repo: SessionRepositoryProtocol) -> None:
        assert await repo.get("no-such-session") is None

    async def test_get_reads_the_database_every_time(
        self, repo: SessionRepositoryProtocol, backend: Backend
    ) -> None:
        created = await repo.create(new_session())
        await backend.execute(f"UPDATE sessions SET turn_count = 42 WHERE id = '{created.id}'")

        fetched = await repo.get(created.id)

        assert fetched is not None
        assert fetched.state.turn_count == 42

    async def test_datetimes_come_back_timezone_aware_in_utc(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        created = await repo.create(new_session())

        fetched = await repo.get(created.id)

        assert fetched is not None
        assert fetched.created_at.utcoffset() == timedelta(0)
        assert fetched.updated_at.utcoffset() == timedelta(0)

    async def test_ids_are_matched_exactly(self, repo: SessionRepositoryProtocol) -> None:
        created = await repo.create(new_session(id="Case-Sensitive"))

        assert await repo.get("case-sensitive") is None
        assert await repo.get("Case-Sensitive") == created


class TestUnreachableVersions:
    @pytest.mark.parametrize("expected", [0, -1, 2**31, 10**30])
    async def test_a_version_no_session_can_have_is_stale(
        self, repo: SessionRepositoryProtocol, expected: int
    ) -> None:
        session = await repo.create(new_session())

        with pytest.raises(StaleSessionError):
            await repo.update_state(session.id, session.state, expected_version=expected)
        with pytest.raises(StaleSessionError):
            await repo.transition(session.id, "paused", expected_version=expected)
        assert await repo.get(session.id) == session


class TestUpdateState:
    async def test_update_state_stores_the_state_and_bumps_the_version(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        created = await repo.create(new_session())
        state = state_of(created, turn_count=3, coverage_score=0.5, last_strategy="probe")

        updated = await repo.update_state(created.id, state)

        assert updated.state == state
        assert updated.version == 2
        assert updated.updated_at > created.updated_at
        assert updated.created_at == created.created_at
        assert await repo.get(created.id) == updated

    async def test_update_state_is_committed_before_it_returns(
        self, repo: SessionRepositoryProtocol, backend: Backend
    ) -> None:
        created = await repo.create(new_session())

        await repo.update_state(created.id, state_of(created, turn_count=9))

        row = await stored_row(backend, created.id)
        assert row is not None
        assert (row["turn_count"], row["version"]) == (9, 2)

    async def test_update_state_on_missing_session_raises_not_found(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        with pytest.raises(SessionNotFoundError) as raised:
            await repo.update_state("ghost", new_session().state)

        assert raised.value.session_id == "ghost"

    async def test_update_state_with_the_expected_version_succeeds(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        created = await repo.create(new_session())

        updated = await repo.update_state(
            created.id, state_of(created, turn_count=1), expected_version=1
        )

        assert updated.version == 2

    async def test_update_state_with_a_stale_version_raises_and_changes_nothing(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        created = await repo.create(new_session())
        current = await repo.update_state(created.id, state_of(created, turn_count=1))

        with pytest.raises(StaleSessionError) as raised:
            await repo.update_state(
                created.id, state_of(created, turn_count=99), expected_version=1
            )

        assert (raised.value.expected_version, raised.value.actual_version) == (1, 2)
        assert await repo.get(created.id) == current

    @pytest.mark.parametrize(
        ("field", "value"),
        [("methodology", "zmet"), ("concept_id", "concept-tea"), ("concept_name", "Tea")],
    )
    async def test_update_state_naming_another_concept_raises_mismatch(
        self, repo: SessionRepositoryProtocol, field: str, value: str
    ) -> None:
        created = await repo.create(new_session())

        with pytest.raises(SessionMismatchError) as raised:
            await repo.update_state(created.id, state_of(created, **{field: value}))

        assert raised.value.field == field
        assert await repo.get(created.id) == created

    async def test_concurrent_updates_with_the_same_version_let_exactly_one_win(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        created = await repo.create(new_session())

        results = await asyncio.gather(
            *(
                repo.update_state(created.id, state_of(created, turn_count=n), expected_version=1)
                for n in range(20)
            ),
            return_exceptions=True,
        )

        winners = [result for result in results if not isinstance(result, BaseException)]
        assert len(winners) == 1
        assert all(isinstance(r, StaleSessionError) for r in results if r not in winners)
        assert await repo.get(created.id) == winners[0]


ALL_MOVES = [(source, target) for source in SessionStatus for target in SessionStatus]


class TestTransition:
    @pytest.mark.parametrize(("source", "target"), ALL_MOVES)
    async def test_every_move_follows_the_lifecycle(
        self, repo: SessionRepositoryProtocol, source: SessionStatus, target: SessionStatus
    ) -> None:
        created = await repo.create(new_session(status=source))

        if target in ALLOWED_TRANSITIONS[source]:
            moved = await repo.transition(created.id, target)
            assert (moved.status, moved.version) == (target, 2)
            assert await repo.get(created.id) == moved
        else:
            with pytest.raises(InvalidTransitionError) as raised:
                await repo.transition(created.id, target)
            assert (raised.value.from_status, raised.value.to_status) == (source, target)
            assert await repo.get(created.id) == created

    def test_the_lifecycle_is_the_contract_s(self) -> None:
        active, paused, completed, abandoned = SessionStatus
        assert ALLOWED_TRANSITIONS == {
            active: {paused, completed, abandoned},
            paused: {active, completed, abandoned},
            completed: set(),
            abandoned: set(),
        }

    @pytest.mark.parametrize("final", [SessionStatus.COMPLETED, SessionStatus.ABANDONED])
    async def test_ending_a_session_sets_ended_at_to_the_write_time(
        self, repo: SessionRepositoryProtocol, final: SessionStatus
    ) -> None:
        created = await repo.create(new_session())

        ended = await repo.transition(created.id, final)

        assert ended.ended_at is not None
        assert ended.ended_at == ended.updated_at

    async def test_pause_and_resume_leave_ended_at_unset(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        created = await repo.create(new_session())

        paused = await repo.transition(created.id, "paused")
        resumed = await repo.transition(created.id, "active")

        assert paused.ended_at is None and resumed.ended_at is None
        assert resumed.version == 3

    async def test_transition_on_missing_session_raises_not_found(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        with pytest.raises(SessionNotFoundError):
            await repo.transition("ghost", SessionStatus.PAUSED)

    async def test_transition_with_a_stale_version_raises(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        created = await repo.create(new_session())
        await repo.transition(created.id, SessionStatus.PAUSED)

        with pytest.raises(StaleSessionError) as raised:
            await repo.transition(created.id, SessionStatus.ACTIVE, expected_version=1)

        assert raised.value.actual_version == 2

    async def test_a_forbidden_move_is_reported_before_a_stale_version(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        created = await repo.create(new_session(status="completed"))

        with pytest.raises(InvalidTransitionError):
            await repo.transition(created.id, SessionStatus.ACTIVE, expected_version=7)

    async def test_an_unknown_status_is_a_value_error(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        created = await repo.create(new_session())

        with pytest.raises(ValueError, match="archived"):
            await repo.transition(created.id, "archived")


class TestListActive:
    async def test_list_active_returns_every_active_session_newest_first(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        active = [await repo.create(new_session()) for _ in range(3)]
        for status in ("paused", "completed", "abandoned"):
            await repo.create(new_session(status=status))

        listed = await repo.list_active()

        assert listed == list(reversed(active))

    async def test_list_active_returns_more_than_one_page(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        created = [await repo.create(new_session()) for _ in range(501)]

        listed = await repo.list_active()

        assert {session.id for session in listed} == {session.id for session in created}
        assert len(listed) == 501

    async def test_list_active_on_an_empty_store_is_empty(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        assert await repo.list_active() == []


class TestListSessions:
    async def test_walking_every_page_yields_each_session_once_in_order(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        created = [await repo.create(new_session()) for _ in range(300)]

        seen, cursor, pages = [], None, 0
        while True:
            page = await repo.list_sessions(limit=37, cursor=cursor)
            seen.extend(page.items)
            pages += 1
            assert len(page.items) <= 37
            if page.next_cursor is None:
                break
            cursor = page.next_cursor

        assert [session.id for session in seen] == [session.id for session in reversed(created)]
        assert pages == 9

    async def test_ties_on_created_at_are_ordered_by_id(
        self, repo: SessionRepositoryProtocol, backend: Backend
    ) -> None:
        ids = [(await repo.create(new_session(id=f"tie-{n}"))).id for n in range(5)]
        ids += [(await repo.create(new_session(id=f"Tie-{n}"))).id for n in range(3)]
        await backend.execute("UPDATE sessions SET created_at = '2026-01-01T00:00:00.000000Z'")

        first = await repo.list_sessions(limit=3)
        rest = await repo.list_sessions(limit=10, cursor=first.next_cursor)

        # Byte order on every backend: "tie-…" sorts after "Tie-…".
        assert [s.id for s in first.items + rest.items] == sorted(ids, reverse=True)

    async def test_cursors_stay_valid_while_sessions_are_added_and_deleted(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        created = [await repo.create(new_session()) for _ in range(10)]
        first = await repo.list_sessions(limit=4)
        await repo.create(new_session())
        await repo.delete(first.items[0].id)
        await repo.delete(created[3].id)

        rest = await repo.list_sessions(limit=50, cursor=first.next_cursor)

        expected = [s.id for s in reversed(created[:6]) if s.id != created[3].id]
        assert [s.id for s in rest.items] == expected
        assert rest.next_cursor is None

    async def test_filters_combine(self, repo: SessionRepositoryProtocol) -> None:
        wanted = await repo.create(new_session(methodology="zmet", concept_id="tea"))
        await repo.create(new_session(methodology="zmet", concept_id="coffee"))
        await repo.create(new_session(methodology="mec", concept_id="tea"))
        await repo.create(new_session(methodology="zmet", concept_id="tea", status="paused"))

        page = await repo.list_sessions(status="active", methodology="zmet", concept_id="tea")

        assert page.items == [wanted]
        assert page.next_cursor is None

    async def test_no_status_filter_lists_every_status(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        for status in SessionStatus:
            await repo.create(new_session(status=status))

        page = await repo.list_sessions()

        assert {s.status for s in page.items} == set(SessionStatus)

    async def test_an_exactly_full_last_page_has_no_next_cursor(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        for _ in range(4):
            await repo.create(new_session())

        page = await repo.list_sessions(limit=4)

        assert len(page.items) == 4
        assert page.next_cursor is None

    @pytest.mark.parametrize("limit", [0, -1, 501, 10_000])
    async def test_a_limit_outside_1_to_500_is_a_value_error(
        self, repo: SessionRepositoryProtocol, limit: int
    ) -> None:
        with pytest.raises(ValueError, match="limit"):
            await repo.list_sessions(limit=limit)

    @pytest.mark.parametrize("cursor", ["", "garbage", "bm90IGpzb24", "WyJ4IiwgMV0", "W10"])
    async def test_a_bad_cursor_is_a_value_error(
        self, repo: SessionRepositoryProtocol, cursor: str
    ) -> None:
        with pytest.raises(InvalidCursorError):
            await repo.list_sessions(cursor=cursor)
        assert issubclass(InvalidCursorError, ValueError)

    async def test_an_unknown_status_is_a_value_error(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        with pytest.raises(ValueError, match="bogus"):
            await repo.list_sessions(status="bogus")


class TestDelete:
    async def test_delete_removes_the_session_for_good(
        self, repo: SessionRepositoryProtocol, backend: Backend
    ) -> None:
        created = await repo.create(new_session())

        assert await repo.delete(created.id) is True

        assert await repo.get(created.id) is None
        assert await stored_row(backend, created.id) is None

    async def test_delete_missing_returns_false(self, repo: SessionRepositoryProtocol) -> None:
        assert await repo.delete("ghost") is False


class TestLifetime:
    async def test_close_is_idempotent_and_refuses_later_use(self, backend: Backend) -> None:
        repository = backend.open()
        await repository.create(new_session())

        await repository.close()
        await repository.close()

        with pytest.raises(RepositoryClosedError):
            await repository.get("anything")

    async def test_a_repository_closed_before_use_refuses_use(self, backend: Backend) -> None:
        repository = backend.open()
        await repository.close()

        with pytest.raises(RepositoryClosedError):
            await repository.create(new_session())

    async def test_ping_fails_when_the_sessions_table_is_gone(
        self, repo: SessionRepositoryProtocol, backend: Backend
    ) -> None:
        await repo.ping()
        await drop_session_tables(backend)

        with pytest.raises(StorageUnavailableError):
            await repo.ping()


@pytest.mark.sqlite
class TestSqliteConnection:
    async def test_all_calls_share_one_connection_thread(
        self, sqlite_repo: SessionRepository, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        repo = sqlite_repo
        created = await repo.create(new_session())
        started: list[threading.Thread] = []
        real_start = threading.Thread.start

        def counting_start(thread: threading.Thread) -> None:
            started.append(thread)
            real_start(thread)

        monkeypatch.setattr(threading.Thread, "start", counting_start)
        for n in range(30):
            await repo.update_state(created.id, state_of(created, turn_count=n))
            await repo.get(created.id)
        await repo.list_sessions()
        await repo.transition(created.id, SessionStatus.PAUSED)
        await repo.delete(created.id)

        assert started == []

    async def test_nothing_is_opened_until_first_use(self, db_path: Path) -> None:
        repository = SessionRepository(str(db_path))
        try:
            assert not db_path.exists()
            await repository.get("anything")
            assert db_path.exists()
        finally:
            await repository.close()

    async def test_ping_reports_a_missing_database_file(
        self, sqlite_repo: SessionRepository, db_path: Path
    ) -> None:
        repo = sqlite_repo
        await repo.ping()
        db_path.unlink()

        with pytest.raises(StorageUnavailableError, match="missing"):
            await repo.ping()

    async def test_the_journal_is_wal_and_commits_are_fully_synchronous(
        self, sqlite_repo: SessionRepository, db_path: Path
    ) -> None:
        repo = sqlite_repo
        await repo.ping()
        with sqlite3.connect(db_path) as other:
            assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        other.close()
        (synchronous,) = await repo.connections[0].execute_fetchall("PRAGMA synchronous")
        assert synchronous[0] == 2  # FULL

    @pytest.mark.parametrize(("setting", "pragma"), [("full", 2), ("normal", 1)])
    async def test_synchronous_follows_the_setting(
        self, db_path: Path, setting: Synchronous, pragma: int
    ) -> None:
        async with SessionRepository(db_path, synchronous=setting) as repository:
            await repository.ping()
            (row,) = await repository.connections[0].execute_fetchall("PRAGMA synchronous")

        assert row[0] == pragma

    @pytest.mark.parametrize(("one_pass", "cache_kib"), [(False, 8192), (True, 256)])
    async def test_a_process_that_reads_once_through_keeps_small_page_caches(
        self, db_path: Path, one_pass: bool, cache_kib: int
    ) -> None:
        settings = Settings(database_path=db_path)
        async with create_repository(settings, one_pass=one_pass) as repository:
            await repository.ping()
            assert isinstance(repository, SessionRepository)
            writer, *readers = repository.connections
            caches = [list(await c.execute_fetchall("PRAGMA cache_size")) for c in readers]
            written = list(await writer.execute_fetchall("PRAGMA cache_size"))

        assert [rows[0][0] for rows in caches] == [-cache_kib, -cache_kib]
        assert written[0][0] == -8192


@pytest.mark.parametrize("query", ["INSERT", "SELECT_BY_ID", "UPDATE_STATE", "TRANSITION"])
@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_every_query_returns_columns_in_the_shared_order(query: str, dialect: str) -> None:
    import re

    from src.persistence.repositories import statements
    from src.persistence.repositories.common import SESSION_COLUMNS

    for built in (getattr(statements, query), statements.list_query(("status",), True)):
        text = getattr(built, dialect)
        listed = re.search(r"(?:RETURNING|SELECT)\s+(id,.*?ended_at)", text, re.S)
        assert listed is not None, text
        columns = tuple(column.strip() for column in listed.group(1).split(","))
        assert columns == SESSION_COLUMNS
