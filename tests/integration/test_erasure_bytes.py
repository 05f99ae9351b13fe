"""After an erasure, the SQLite files hold nothing of the participant: not the database
file, not its -wal, not its -shm; not a word of what was said, nor where it was kept."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from src.core.errors import ParticipantNotFoundError
from src.domain.models.turn import TurnRecordData
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.session_repo import SessionRepository
from tests.builders import new_session, state_of

PARTICIPANT = "participant-Quixwellbrook-4417"
# One distinctive word for each place a participant's data is kept.
IN_TRANSCRIPT = "zembrovian"
IN_METADATA = "plonquifex"
IN_SIGNALS = "vastrolleum"
IN_STATE = "gribbledorf"
IN_LABELS = "snorkelwhist"
DISTINCTIVE = (PARTICIPANT, IN_TRANSCRIPT, IN_METADATA, IN_SIGNALS, IN_STATE, IN_LABELS)


def stored_bytes(db_path: Path) -> dict[str, bytes]:
    """The database file and every file SQLite keeps beside it, by name."""
    return {
        path.name: path.read_bytes()
        for path in db_path.parent.iterdir()
        if path.name.startswith(db_path.name)
    }


def found(db_path: Path, word: str) -> list[str]:
    """The files holding `word`, as written or as the search index folds it."""
    shapes = {word.encode(), word.lower().encode()}
    return sorted(
        name
        for name, content in stored_bytes(db_path).items()
        if any(shape in content for shape in shapes)
    )


async def record_a_participant(repo: SessionRepository, turns: int) -> None:
    session = await repo.create(
        new_session(participant_id=PARTICIPANT, study_id="st-bytes", labels={"cohort": IN_LABELS})
    )
    for turn in range(1, turns + 1):
        recorded = await repo.record_turn(
            session.id,
            [
                NewUtterance(
                    turn_number=turn,
                    speaker=Speaker.INTERVIEWER,
                    text="What comes to mind?",
                    metadata={"aside": f"{IN_METADATA} {turn}"},
                ),
                NewUtterance(
                    turn_number=turn,
                    speaker=Speaker.RESPONDENT,
                    text=f"My grandmother's {IN_TRANSCRIPT.capitalize()} recipe, turn {turn}.",
                ),
            ],
            state_of(session, turn_count=turn, data={"remembered": f"{IN_STATE} {turn}"}),
            record=TurnRecordData(signals={"theme": f"{IN_SIGNALS} {turn}"}),
        )
        session = recorded.session
    await repo.fork(session.id, 2)


async def test_after_an_erasure_no_file_of_the_store_holds_anything_of_the_participant(
    db_path: Path,
) -> None:
    async with SessionRepository(str(db_path)) as repo:
        kept = await repo.create(new_session(participant_id="someone-else"))
        await record_a_participant(repo, 30)
        # Written to the log, and some of it into the file: there to be found before.
        for word in DISTINCTIVE:
            assert found(db_path, word), word

        erased = await repo.erase_participant(PARTICIPANT)

        assert (erased.sessions, erased.utterances) == (2, 60 + 4)
        # Read while the store is still open and serving, as a running server's files are.
        left = {word: found(db_path, word) for word in DISTINCTIVE}
        assert await repo.get(kept.id) == kept

    nowhere: dict[str, list[str]] = {word: [] for word in DISTINCTIVE}
    assert left == nowhere
    # And after the last connection closed, too.
    assert {word: found(db_path, word) for word in DISTINCTIVE} == nowhere


async def test_a_reader_holding_the_log_delays_its_truncation_until_it_is_done(
    db_path: Path,
) -> None:
    async with SessionRepository(str(db_path)) as repo:
        await record_a_participant(repo, 3)
        reader = sqlite3.connect(db_path)
        try:
            # A read transaction on the snapshot before the erasure, as a long read would be.
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM utterances").fetchone()
            with capture_logs() as logs:
                erased = await repo.erase_participant(PARTICIPANT)
            held = found(db_path, IN_TRANSCRIPT)
        finally:
            reader.close()

        assert erased.sessions == 2
        assert [log["event"] for log in logs] == ["erasure_log_not_emptied"]
        assert held == ["sessions.db-wal"]
        # The next erasure's checkpoint, or the last connection's close, empties it.
        await repo.create(new_session(participant_id="next"))
        await repo.erase_participant("next")
        assert found(db_path, IN_TRANSCRIPT) == []


async def test_erasing_a_participant_whose_sessions_were_all_deleted_purges_their_words(
    db_path: Path,
) -> None:
    async with SessionRepository(str(db_path)) as repo:
        await repo.create(new_session(participant_id="someone-else"))
        await record_a_participant(repo, 30)
        for session in (await repo.list_sessions(participant_id=PARTICIPANT)).items:
            await repo.delete(session.id)
        assert found(db_path, IN_TRANSCRIPT), "the deleted words are still in the index"

        with pytest.raises(ParticipantNotFoundError):
            await repo.erase_participant(PARTICIPANT)

        assert found(db_path, IN_TRANSCRIPT) == []


@pytest.mark.parametrize("ticks", [0, 1, 2, 5, 10])
async def test_an_erasure_the_store_closes_on_answers_as_it_went(db_path: Path, ticks: int) -> None:
    repo = SessionRepository(str(db_path))
    await repo.create(new_session(participant_id=PARTICIPANT))
    erasure = asyncio.ensure_future(repo.erase_participant(PARTICIPANT))
    for _ in range(ticks):
        await asyncio.sleep(0)

    await repo.close()
    await asyncio.wait([erasure])

    with sqlite3.connect(db_path) as other:
        ((left,),) = other.execute("SELECT count(*) FROM sessions").fetchall()
    # Committed: its counts. Not begun: the store's closing. Never both.
    if left == 0:
        assert erasure.result().sessions == 1
    else:
        assert erasure.exception() is not None
