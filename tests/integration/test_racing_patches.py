"""Writes that race on one session each build on the one before: no update is lost."""

from __future__ import annotations

import asyncio

from src.domain.models.session import Session
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.builders import new_session

WRITES = 60


async def test_racing_merge_patches_keep_every_key(repo: SessionRepositoryProtocol) -> None:
    # Each patch adds one key to the same nested object: a write that patched the data
    # as it was before the one it waited for would drop that one's key.
    session = await repo.create(new_session())

    async def patch(n: int) -> Session:
        return await repo.patch_state(session.id, {"data": {"common": {f"k{n}": n}}})

    async def turn(n: int) -> Session:
        said = [NewUtterance(turn_number=n + 1, speaker=Speaker.RESPONDENT, text=f"answer {n}")]
        recorded = await repo.record_turn(
            session.id, said, state_patch={"data": {"common": {f"k{n}": n}}}
        )
        return recorded.session

    written = await asyncio.gather(*(patch(n) if n % 2 else turn(n) for n in range(WRITES)))

    current = await repo.get(session.id)
    assert current is not None
    assert current.state.data["common"] == {f"k{n}": n for n in range(WRITES)}
    assert current.version == 1 + WRITES
    # What each write answered is what its version holds, and the last answer is the state.
    by_version = {each.version: each for each in written}
    assert by_version[current.version].state == current.state
    for version, answered in by_version.items():
        assert (await repo.get_version(session.id, version)).state == answered.state


async def test_racing_replacements_and_patches_agree_with_the_history(
    repo: SessionRepositoryProtocol,
) -> None:
    session = await repo.create(new_session())

    async def replace(n: int) -> Session:
        current = await repo.get(session.id)
        assert current is not None
        state = current.state.model_copy(update={"data": {"put": n}})
        return await repo.update_state(session.id, state)

    async def patch(n: int) -> Session:
        return await repo.patch_state(session.id, {"data": {f"p{n}": n}})

    written = await asyncio.gather(*(replace(n) if n % 2 else patch(n) for n in range(WRITES)))

    for answered in written:
        assert (await repo.get_version(session.id, answered.version)).state == answered.state
    last = max(written, key=lambda each: each.version)
    current = await repo.get(session.id)
    assert current is not None and current.state == last.state
