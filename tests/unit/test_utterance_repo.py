"""The transcript contract on every backend: append, list, the atomic turn, idle sessions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from src.core.errors import (
    InvalidCursorError,
    SessionEndedError,
    SessionMismatchError,
    SessionNotFoundError,
    StaleSessionError,
    UtteranceExistsError,
)
from src.domain.models.session import SessionStatus, utc_now
from src.domain.models.utterance import MAX_TEXT_LENGTH, NewUtterance, Speaker
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.backends import PostgresBackend, SqliteBackend
from tests.builders import new_session, state_of

Backend = SqliteBackend | PostgresBackend


def said(
    turn: int, speaker: str = "respondent", text: str | None = None, **extra: Any
) -> NewUtterance:
    return NewUtterance(
        turn_number=turn, speaker=Speaker(speaker), text=text or f"{speaker} {turn}", **extra
    )


async def count_utterances(backend: Backend, session_id: str) -> int:
    row = await backend.fetch_one(
        f"SELECT count(*) AS n FROM utterances WHERE session_id = '{session_id}'"
    )
    assert row is not None
    return int(row["n"])


class TestAppend:
    async def test_append_returns_what_the_listing_returns(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session = await repo.create(new_session())

        stored = await repo.append_utterance(
            session.id, said(1, "interviewer", "Why does that matter to you?", metadata={"q": 1})
        )

        assert stored.session_id == session.id
        assert stored.metadata == {"q": 1}
        assert stored.created_at.tzinfo is not None
        page = await repo.list_utterances(session.id)
        assert page.items == [stored]
        assert page.next_cursor is None

    async def test_text_and_metadata_come_back_exactly(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session = await repo.create(new_session())
        text = 'Ünïcödé 🎉 \'; DROP TABLE utterances; -- "quoted"\n\ttabbed ' + "x" * 100
        metadata = {"nested": {"list": [1, 2.5, None, True]}, "ключ": "значение"}

        await repo.append_utterance(session.id, said(0, text=text, metadata=metadata))

        (stored,) = (await repo.list_utterances(session.id)).items
        assert stored.text == text
        assert stored.metadata == metadata

    async def test_a_paused_session_takes_utterances(self, repo: SessionRepositoryProtocol) -> None:
        session = await repo.create(new_session(status="paused"))

        await repo.append_utterance(session.id, said(1))

        assert len((await repo.list_utterances(session.id)).items) == 1

    @pytest.mark.parametrize("status", ["completed", "abandoned"])
    async def test_a_final_session_refuses_utterances(
        self, repo: SessionRepositoryProtocol, backend: Backend, status: str
    ) -> None:
        session = await repo.create(new_session(status=status))

        with pytest.raises(SessionEndedError) as raised:
            await repo.append_utterance(session.id, said(1))

        assert raised.value.session_status == status
        assert await count_utterances(backend, session.id) == 0

    async def test_a_duplicate_turn_and_speaker_is_refused_and_the_first_kept(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session = await repo.create(new_session())
        first = await repo.append_utterance(session.id, said(3, text="first"))

        with pytest.raises(UtteranceExistsError) as raised:
            await repo.append_utterance(session.id, said(3, text="second"))

        assert (raised.value.turn_number, raised.value.speaker) == (3, "respondent")
        assert (await repo.list_utterances(session.id)).items == [first]

    async def test_both_speakers_may_speak_in_one_turn(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session = await repo.create(new_session())

        await repo.append_utterance(session.id, said(1, "respondent"))
        await repo.append_utterance(session.id, said(1, "interviewer"))

        items = (await repo.list_utterances(session.id)).items
        assert [(u.turn_number, u.speaker) for u in items] == [
            (1, Speaker.INTERVIEWER),
            (1, Speaker.RESPONDENT),
        ]

    async def test_a_missing_session_is_not_found(self, repo: SessionRepositoryProtocol) -> None:
        for session_id in ("nobody", "nul\x00id"):
            with pytest.raises(SessionNotFoundError):
                await repo.append_utterance(session_id, said(1))
            with pytest.raises(SessionNotFoundError):
                await repo.list_utterances(session_id)

    async def test_concurrent_appends_of_one_key_store_exactly_one(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session = await repo.create(new_session())

        outcomes = await asyncio.gather(
            *(repo.append_utterance(session.id, said(1, text=f"try {n}")) for n in range(8)),
            return_exceptions=True,
        )

        assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
        assert all(
            isinstance(o, UtteranceExistsError) for o in outcomes if isinstance(o, BaseException)
        )
        assert len((await repo.list_utterances(session.id)).items) == 1


class TestUtteranceValidation:
    @pytest.mark.parametrize(
        "fields",
        [
            {"text": ""},
            {"text": "x" * (MAX_TEXT_LENGTH + 1)},
            {"text": "nul\x00"},
            {"speaker": "narrator"},
            {"turn_number": -1},
            {"metadata": {"big": "x" * 16_384}},
            {"metadata": {"nan": float("nan")}},
            {"metadata": ["not", "an", "object"]},
        ],
    )
    def test_bad_utterances_are_refused(self, fields: dict[str, Any]) -> None:
        with pytest.raises(ValidationError):
            NewUtterance.model_validate(
                {"turn_number": 1, "speaker": "respondent", "text": "hi", **fields}
            )

    @pytest.mark.parametrize("metadata", [{"k": "\ud800"}, {"\udc00": 1}, {"k": ["\udfff"]}])
    def test_metadata_with_a_lone_surrogate_is_refused_by_name(
        self, metadata: dict[str, Any]
    ) -> None:
        with pytest.raises(ValidationError, match="lone surrogate"):
            NewUtterance(turn_number=1, speaker=Speaker.RESPONDENT, text="hi", metadata=metadata)

    def test_the_longest_text_is_taken(self) -> None:
        assert NewUtterance(turn_number=1, speaker=Speaker.RESPONDENT, text="x" * MAX_TEXT_LENGTH)


class TestListUtterances:
    async def test_pages_walk_every_utterance_in_turn_order(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session = await repo.create(new_session())
        for turn in (3, 1, 2):
            for speaker in ("respondent", "interviewer"):
                await repo.append_utterance(session.id, said(turn, speaker))

        seen, cursor = [], None
        while True:
            page = await repo.list_utterances(session.id, limit=4, cursor=cursor)
            seen += [(u.turn_number, u.speaker.value) for u in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor

        assert seen == [
            (turn, speaker) for turn in (1, 2, 3) for speaker in ("interviewer", "respondent")
        ]

    async def test_after_turn_starts_after_that_whole_turn(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session = await repo.create(new_session())
        for turn in range(4):
            await repo.append_utterance(session.id, said(turn, "interviewer"))
            await repo.append_utterance(session.id, said(turn, "respondent"))

        page = await repo.list_utterances(session.id, after_turn=1)

        assert [u.turn_number for u in page.items] == [2, 2, 3, 3]

    async def test_an_empty_transcript_is_an_empty_page(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session = await repo.create(new_session())

        assert await repo.list_utterances(session.id) == ([], None)

    async def test_utterances_are_per_session(self, repo: SessionRepositoryProtocol) -> None:
        first = await repo.create(new_session())
        second = await repo.create(new_session())
        await repo.append_utterance(first.id, said(1))

        assert (await repo.list_utterances(second.id)).items == []

    @pytest.mark.parametrize("cursor", ["", "garbage", "WzEsIm5hcnJhdG9yIl0", "WyJ4IiwxXQ"])
    async def test_a_bad_cursor_is_refused(
        self, repo: SessionRepositoryProtocol, cursor: str
    ) -> None:
        session = await repo.create(new_session())

        with pytest.raises(InvalidCursorError):
            await repo.list_utterances(session.id, cursor=cursor)

    @pytest.mark.parametrize("arguments", [{"limit": 0}, {"limit": 501}, {"after_turn": -1}])
    async def test_bad_bounds_are_refused(
        self, repo: SessionRepositoryProtocol, arguments: dict[str, int]
    ) -> None:
        session = await repo.create(new_session())

        with pytest.raises(ValueError):
            await repo.list_utterances(session.id, **arguments)  # type: ignore[arg-type]


class TestLastUtterances:
    async def test_the_last_ones_come_in_turn_order(self, repo: SessionRepositoryProtocol) -> None:
        session = await repo.create(new_session())
        for turn in range(5):
            await repo.append_utterance(session.id, said(turn, "interviewer"))
            await repo.append_utterance(session.id, said(turn, "respondent"))

        last = await repo.last_utterances(session.id, 3)

        assert [(u.turn_number, u.speaker.value) for u in last] == [
            (3, "respondent"),
            (4, "interviewer"),
            (4, "respondent"),
        ]
        assert (
            await repo.last_utterances(session.id, 500)
            == (await repo.list_utterances(session.id)).items
        )

    async def test_a_missing_session_is_not_found(self, repo: SessionRepositoryProtocol) -> None:
        with pytest.raises(SessionNotFoundError):
            await repo.last_utterances("nobody", 5)

    async def test_an_empty_transcript_has_no_last_utterances(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session = await repo.create(new_session())

        assert await repo.last_utterances(session.id, 5) == []


class TestDeleteCascades:
    async def test_deleting_a_session_deletes_its_utterances(
        self, repo: SessionRepositoryProtocol, backend: Backend
    ) -> None:
        session = await repo.create(new_session())
        kept = await repo.create(new_session())
        for turn in range(3):
            await repo.append_utterance(session.id, said(turn))
        await repo.append_utterance(kept.id, said(1))

        assert await repo.delete(session.id)

        assert await count_utterances(backend, session.id) == 0
        assert await count_utterances(backend, kept.id) == 1


class TestRecordTurn:
    async def test_the_turn_stores_utterances_and_state_together(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session = await repo.create(new_session())
        state = state_of(session, turn_count=1, coverage_score=0.25, last_strategy="ladder_up")

        record = await repo.record_turn(
            session.id, [said(1, "interviewer"), said(1, "respondent")], state, expected_version=1
        )

        assert record.session.version == 2
        assert record.session.state == state
        assert record.session == await repo.get(session.id)
        assert record.utterances == (await repo.list_utterances(session.id)).items
        assert [u.created_at for u in record.utterances] == [record.session.updated_at] * 2

    @pytest.mark.parametrize(
        ("break_it", "error"),
        [
            ("stale", StaleSessionError),
            ("mismatch", SessionMismatchError),
            ("duplicate_stored", UtteranceExistsError),
            ("duplicate_in_turn", UtteranceExistsError),
            ("missing", SessionNotFoundError),
            ("completed", SessionEndedError),
        ],
    )
    async def test_a_failing_part_leaves_nothing_behind(
        self,
        repo: SessionRepositoryProtocol,
        backend: Backend,
        break_it: str,
        error: type[Exception],
    ) -> None:
        session = await repo.create(new_session())
        await repo.append_utterance(session.id, said(1, "interviewer"))
        session = await repo.get(session.id) or session
        state = state_of(session, turn_count=1)
        utterances = [said(2, "interviewer"), said(2, "respondent")]
        session_id, expected = session.id, session.version
        if break_it == "stale":
            expected = session.version + 1
        elif break_it == "mismatch":
            state = state_of(session, concept_id="another")
        elif break_it == "duplicate_stored":
            utterances = [said(1, "respondent"), said(1, "interviewer")]
        elif break_it == "duplicate_in_turn":
            utterances = [said(2, "respondent"), said(2, "respondent", "again")]
        elif break_it == "missing":
            session_id = "nobody"
        elif break_it == "completed":
            await repo.transition(session.id, "completed")
            expected = session.version + 1

        with pytest.raises(error):
            await repo.record_turn(session_id, utterances, state, expected_version=expected)

        assert await count_utterances(backend, session.id) == 1
        after = await repo.get(session.id)
        assert after is not None
        assert after.state.turn_count == 0
        assert after.version == (
            session.version + 1 if break_it == "completed" else session.version
        )

    async def test_a_turn_needs_an_utterance(self, repo: SessionRepositoryProtocol) -> None:
        session = await repo.create(new_session())

        with pytest.raises(ValueError):
            await repo.record_turn(session.id, [], session.state)

    async def test_concurrent_turns_with_one_version_store_exactly_one(
        self, repo: SessionRepositoryProtocol, backend: Backend
    ) -> None:
        session = await repo.create(new_session())

        outcomes = await asyncio.gather(
            *(
                repo.record_turn(
                    session.id,
                    [said(n, "respondent")],
                    state_of(session, turn_count=n),
                    expected_version=1,
                )
                for n in range(1, 9)
            ),
            return_exceptions=True,
        )

        stored = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(stored) == 1
        assert all(
            isinstance(o, StaleSessionError) for o in outcomes if isinstance(o, BaseException)
        )
        assert await count_utterances(backend, session.id) == 1


class TestListIdle:
    async def test_idle_means_no_write_and_no_utterance_since(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        quiet = await repo.create(new_session())
        talking = await repo.create(new_session())
        paused = await repo.create(new_session(status="paused"))
        await asyncio.sleep(0.01)
        cut_off = utc_now()
        await asyncio.sleep(0.01)
        await repo.append_utterance(talking.id, said(1))
        written = await repo.create(new_session())

        idle = await repo.list_idle(SessionStatus.ACTIVE, idle_since=cut_off, limit=500)
        ids = {session.id for session in idle}

        assert quiet.id in ids
        assert not {talking.id, paused.id, written.id} & ids
        paused_idle = await repo.list_idle(SessionStatus.PAUSED, idle_since=cut_off)
        assert [session.id for session in paused_idle] == [paused.id]
