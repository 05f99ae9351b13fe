"""SIGKILL the server during a burst of turns with records and state patches: every
acknowledged turn is whole, and no turn is there in part."""

from __future__ import annotations

import random
from pathlib import Path

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
        "state_patch": {
            "turn_count": number,
            "data": {"last_turn": number, f"slot{number % 4}": "x" * 1024},
        },
        "record": {
            "strategy": f"s{number}",
            "scores": {"depth": number / 10},
            "signals": {"turn": number},
            "usage": {"input_tokens": number, "output_tokens": 1, "cost_usd": 0.5},
        },
    }


async def check_whole(repo: SessionRepositoryProtocol, acknowledged: dict[str, int]) -> None:
    for session_id, last_acknowledged in acknowledged.items():
        session = await repo.get(session_id)
        assert session is not None, f"acknowledged session {session_id} is gone"
        turns = (await repo.list_turns(session_id)).items
        stored = [turn.turn_number for turn in turns]
        # The turn in flight when the server died is there whole, or not at all.
        assert stored in (
            list(range(1, last_acknowledged + 1)),
            list(range(1, last_acknowledged + 2)),
        ), (session_id, stored, last_acknowledged)
        for turn in turns:
            assert [u.text for u in turn.utterances] == [
                f"q{turn.turn_number}",
                f"a{turn.turn_number}",
            ]
            assert turn.record is not None
            assert turn.record.strategy == f"s{turn.turn_number}"
            then = await repo.get_version(session_id, turn.version)
            assert then.state.turn_count == turn.turn_number
            assert then.state.data["last_turn"] == turn.turn_number
        count = len(turns)
        assert session.state.turn_count == count
        assert session.state.data.get("last_turn", 0) == count
        assert session.usage.turns == count
        assert session.usage.input_tokens == sum(range(1, count + 1))
        assert session.usage.cost_usd == 0.5 * count
        assert session.version == 1 + count


async def test_acknowledged_turns_survive_sigkill_whole(
    tmp_path: Path, backend: SqliteBackend | PostgresBackend
) -> None:
    env = server_env(backend)
    rng = random.Random(12)
    acknowledged: dict[str, int] = {}

    for _ in range(KILLS):
        turns_before = sum(acknowledged.values())
        await burst_then_kill(tmp_path, env, rng, acknowledged, turn_body, WRITERS)

        async with backend.open() as repo:
            await check_whole(repo, acknowledged)
        assert sum(acknowledged.values()) > turns_before, "no turn was acknowledged this time"
