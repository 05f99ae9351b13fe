"""SIGKILL the server during a burst of writes: every acknowledged write has its event, and
no event names a write that is not stored."""

from __future__ import annotations

import random
from pathlib import Path

from src.domain.models.event import EventType
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.backends import PostgresBackend, SqliteBackend
from tests.reliability.bursts import burst_then_kill, server_env

KILLS = 3
WRITERS = 12


def turn_body(number: int) -> dict[str, object]:
    return {
        "utterances": [
            {"turn_number": number, "speaker": "interviewer", "text": f"q{number}"},
            {"turn_number": number, "speaker": "respondent", "text": f"a{number}"},
        ],
        "state_patch": {"turn_count": number},
    }


async def all_events(repo: SessionRepositoryProtocol) -> dict[str, list[tuple[str, int | None]]]:
    by_session: dict[str, list[tuple[str, int | None]]] = {}
    after, ids = 0, []
    while page := await repo.list_events(after=after):
        for event in page:
            assert event.session_id is not None
            turn = event.data.get("turn_number")
            by_session.setdefault(event.session_id, []).append((event.type.value, turn))
            ids.append(event.id)
        after = page[-1].id
    assert ids == sorted(set(ids))
    return by_session


async def check_events(repo: SessionRepositoryProtocol, acknowledged: dict[str, int]) -> None:
    events = await all_events(repo)
    for session_id, last_acknowledged in acknowledged.items():
        turns = [turn.turn_number for turn in (await repo.list_turns(session_id)).items]
        assert len(turns) >= last_acknowledged
        # Exactly the writes that are stored, the one in flight included if it landed.
        expected = [(EventType.CREATED.value, None)] + [
            (EventType.TURN_RECORDED.value, number) for number in turns
        ]
        assert events.pop(session_id) == expected, session_id
    # The rest: sessions whose creation landed but was never acknowledged.
    for session_id, unacknowledged in events.items():
        assert await repo.get(session_id) is not None, f"an event names missing {session_id}"
        turns = [turn.turn_number for turn in (await repo.list_turns(session_id)).items]
        assert unacknowledged == [(EventType.CREATED.value, None)] + [
            (EventType.TURN_RECORDED.value, number) for number in turns
        ]


async def test_every_acknowledged_write_has_its_event_after_sigkill(
    tmp_path: Path, backend: SqliteBackend | PostgresBackend
) -> None:
    env = server_env(backend)
    rng = random.Random(15)
    acknowledged: dict[str, int] = {}

    for _ in range(KILLS):
        writes_before = sum(acknowledged.values()) + len(acknowledged)
        await burst_then_kill(tmp_path, env, rng, acknowledged, turn_body, WRITERS)

        async with backend.open() as repo:
            await check_events(repo, acknowledged)
        writes = sum(acknowledged.values()) + len(acknowledged)
        assert writes > writes_before, "no write was acknowledged this time"
