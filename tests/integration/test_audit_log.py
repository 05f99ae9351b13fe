"""The audit log through the repository, on every backend: entries kept in order, pages, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from src.api.observability import logged_path
from src.core.errors import InvalidCursorError
from src.domain.audit import (
    AuditAction,
    AuditEntry,
    command_erasure,
    recorded_path,
    recorded_session_id,
)
from src.persistence.pagination import walk_pages
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.backends import PostgresBackend, SqliteBackend, forge_cursor

Repo = SessionRepositoryProtocol
START = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def entry(number: int, **changes: object) -> AuditEntry:
    fields: dict[str, object] = {
        "at": START + timedelta(seconds=number),
        "key_name": "ingest",
        "action": AuditAction.WRITE,
        "method": "POST",
        "path": f"/sessions/s{number}/turns",
        "session_id": f"s{number}",
        **changes,
    }
    return AuditEntry.model_validate(fields)


async def test_entries_come_back_newest_first_as_appended(repo: Repo) -> None:
    first = [entry(1), entry(2, key_name=None, action="unauthorized", session_id=None)]
    second = [entry(3, action="export", method="GET", path="/sessions/s3/export")]
    await repo.append_audit(first)
    await repo.append_audit(second)

    page = await repo.list_audit()

    assert page.items == [*second, *reversed(first)]
    assert page.next_cursor is None


async def test_an_erasure_keeps_its_counts(repo: Repo) -> None:
    erasure = entry(
        1,
        action="erasure",
        method="DELETE",
        path="/participants/{participant_id}",
        session_id=None,
        counts={"sessions": 2, "utterances": 40, "events": 7},
    )
    await repo.append_audit([erasure])

    (stored,) = (await repo.list_audit()).items

    assert stored == erasure


async def test_an_erasure_from_the_command_line_is_kept_without_a_key(repo: Repo) -> None:
    await repo.append_audit([command_erasure({"sessions": 1, "utterances": 3, "events": 2})])

    (stored,) = (await repo.list_audit(action="erasure")).items

    assert (stored.key_name, stored.method, stored.path, stored.session_id) == (
        None,
        "CLI",
        "interview-system erase",
        None,
    )
    assert stored.counts == {"sessions": 1, "utterances": 3, "events": 2}


async def test_nothing_to_append_is_no_write(repo: Repo) -> None:
    await repo.append_audit([])

    assert (await repo.list_audit()).items == []


async def test_pages_walk_every_entry_once_while_more_are_appended(repo: Repo) -> None:
    await repo.append_audit([entry(number) for number in range(7)])
    first = await repo.list_audit(limit=3)
    await repo.append_audit([entry(100)])  # newer: before the walk's start, not in it

    rest = [item async for item in walk_pages(lambda c: repo.list_audit(limit=3, cursor=c))]
    walked = [*first.items, *[item for item in rest if item.session_id != "s100"]]
    resumed = await repo.list_audit(limit=3, cursor=first.next_cursor)

    assert [item.session_id for item in first.items] == ["s6", "s5", "s4"]
    assert [item.session_id for item in resumed.items] == ["s3", "s2", "s1"]
    assert len(walked) == 3 + 7
    assert rest[0].session_id == "s100"


async def test_filters_by_action_and_key_name(repo: Repo) -> None:
    await repo.append_audit(
        [
            entry(1, key_name="analyst", action="export", method="GET"),
            entry(2, key_name="ingest"),
            entry(3, key_name="analyst", action="forbidden", method="DELETE"),
            entry(4, key_name="analyst", action="export", method="GET"),
        ]
    )

    exports = await repo.list_audit(action="export")
    analyst = await repo.list_audit(key_name="analyst")
    both = await repo.list_audit(action=AuditAction.EXPORT, key_name="analyst", limit=1)
    after = await repo.list_audit(action="export", key_name="analyst", cursor=both.next_cursor)

    assert [item.session_id for item in exports.items] == ["s4", "s1"]
    assert [item.session_id for item in analyst.items] == ["s4", "s3", "s1"]
    assert [item.session_id for item in both.items + after.items] == ["s4", "s1"]
    assert after.next_cursor is None


@pytest.mark.parametrize("limit", [0, 501, -1])
async def test_a_limit_outside_1_to_500_is_refused(repo: Repo, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        await repo.list_audit(limit=limit)


async def test_an_unknown_action_is_refused(repo: Repo) -> None:
    with pytest.raises(ValueError):
        await repo.list_audit(action="read")


@pytest.mark.parametrize("cursor", ["", "x", "x.y", "eyJhIjoxfQ.AAAA", "a.b.c", "\uff21.\uff22"])
async def test_a_cursor_not_handed_out_is_refused(repo: Repo, cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        await repo.list_audit(cursor=cursor)


@pytest.mark.parametrize(
    "sort_key",
    [
        ["audit", 0],
        ["audit", -1],
        ["audit", 2**63],
        ["audit", "1"],
        ["audit", 1.5],
        [1],
        5,
        ["audit", True],
        ["2026-11-30T06:00:00+00:00", "s1"],
    ],
)
async def test_a_signed_cursor_with_a_key_no_listing_makes_is_refused(
    repo: Repo, backend: SqliteBackend | PostgresBackend, sort_key: object
) -> None:
    await repo.list_audit()  # the store exists, with its cursor key
    cursor = await forge_cursor(backend, sort_key)

    with pytest.raises(InvalidCursorError):
        await repo.list_audit(cursor=cursor)


async def test_a_session_listing_cursor_does_not_page_the_audit_log(repo: Repo) -> None:
    await repo.append_audit([entry(number) for number in range(3)])
    cursor = (await repo.list_audit(limit=1)).next_cursor
    assert cursor is not None

    with pytest.raises(InvalidCursorError):
        await repo.list_sessions(cursor=cursor)


class TestRecordedValues:
    def test_a_participant_id_never_stays_in_a_path(self) -> None:
        assert recorded_path("/participants/p-42") == "/participants/{participant_id}"
        assert recorded_path("/participants/p%2F42/x") == "/participants/{participant_id}/x"
        assert recorded_path("/participants/") == "/participants/{participant_id}"
        assert recorded_path("/sessions/s1/export") == "/sessions/s1/export"

    @pytest.mark.parametrize(
        "raw_path", ["/particip%61nts/p-42", "/participants%2Fp-42", "/%70articipants/p-42"]
    )
    def test_a_participant_route_spelled_with_escapes_keeps_no_id(self, raw_path: str) -> None:
        # The server routes these as /participants/p-42 (it decodes the path first).
        scope = {"type": "http", "raw_path": raw_path.encode(), "path": "/participants/p-42"}

        assert recorded_path(raw_path, "/participants/p-42") == "/participants/{participant_id}"
        assert logged_path(scope) == "/participants/{participant_id}"

    def test_a_path_is_cut_to_2048_characters(self) -> None:
        assert len(recorded_path("/sessions/" + "x" * 5000)) == 2048

    @pytest.mark.parametrize("value", [None, "", "x" * 129, "a\x00b", "a\nb", "\ud800", 5])
    def test_a_session_id_no_session_can_have_is_dropped(self, value: object) -> None:
        assert recorded_session_id(value) is None

    def test_a_session_id_is_kept(self) -> None:
        assert recorded_session_id("s-1") == "s-1"
