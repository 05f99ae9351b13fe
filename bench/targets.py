"""What the benchmark measures, behind one interface: our repositories and the spec's
sketch (the plain drivers' baselines are in `bench.plain`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import aiosqlite

from bench import turns
from src.domain.models.session import Session, SessionState, SessionStatus
from src.persistence.pagination import encode_cursor
from src.persistence.repositories.core import RepositoryCore


class Target(Protocol):
    """The operations every measured thing offers."""

    async def create(self, session: Session) -> Any: ...
    async def get(self, session_id: str) -> Any: ...
    async def update_state(self, session_id: str, state: SessionState) -> Any: ...
    async def list_page(self, after: Session | None) -> Any: ...
    async def transition(self, session_id: str, to_status: SessionStatus) -> Any: ...
    async def delete(self, session_id: str) -> Any: ...
    async def turn(self, session_id: str, number: int) -> Any: ...
    async def close(self) -> None: ...


class RepositoryTarget:
    """One of our repositories, used as an application would."""

    def __init__(self, repository: RepositoryCore) -> None:
        self.repository = repository

    async def create(self, session: Session) -> Any:
        return await self.repository.create(session)

    async def get(self, session_id: str) -> Any:
        return await self.repository.get(session_id)

    async def update_state(self, session_id: str, state: SessionState) -> Any:
        return await self.repository.update_state(session_id, state)

    async def list_page(self, after: Session | None) -> Any:
        cursor = None
        if after is not None:
            # The cursor a listing would have handed out, signed with the store's key.
            cursor = encode_cursor(await self.repository._key(), after)
        return await self.repository.list_sessions(status="active", limit=50, cursor=cursor)

    async def transition(self, session_id: str, to_status: SessionStatus) -> Any:
        return await self.repository.transition(session_id, to_status)

    async def delete(self, session_id: str) -> Any:
        return await self.repository.delete(session_id)

    async def turn(self, session_id: str, number: int) -> Any:
        return await self.repository.record_turn(
            session_id,
            turns.utterances(number),
            state_patch=turns.state_patch(number),
            record=turns.RECORD,
        )

    async def close(self) -> None:
        await self.repository.close()


class ConnectionPerOperationTarget:
    """The spec's sketch as written (a new aiosqlite connection per call), plus its commit."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def create(self, session: Session) -> Any:
        async with aiosqlite.connect(self.path) as db:
            db.row_factory = aiosqlite.Row
            now = datetime.now().isoformat()
            await db.execute(
                "INSERT INTO sessions (id, methodology, concept_id, concept_name, status,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    session.id,
                    session.methodology,
                    session.concept_id,
                    session.concept_name,
                    session.status.value,
                    now,
                    now,
                ),
            )
            await db.commit()
            return session

    async def get(self, session_id: str) -> Any:
        async with aiosqlite.connect(self.path) as db:
            db.row_factory = aiosqlite.Row
            cursor = await db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,))
            return await cursor.fetchone()

    async def update_state(self, session_id: str, state: SessionState) -> Any:
        async with aiosqlite.connect(self.path) as db:
            await db.execute(
                "UPDATE sessions SET turn_count = ?, coverage_score = ?, last_strategy = ?,"
                " updated_at = ? WHERE id = ?",
                (
                    state.turn_count,
                    state.coverage_score,
                    state.last_strategy,
                    datetime.now().isoformat(),
                    session_id,
                ),
            )
            await db.commit()

    async def list_page(self, after: Session | None) -> Any:
        # The sketch has no pages: list_active reads every active session.
        async with aiosqlite.connect(self.path) as db:
            db.row_factory = aiosqlite.Row
            rows = await db.execute(
                "SELECT * FROM sessions WHERE status = 'active' ORDER BY created_at DESC"
            )
            return await rows.fetchall()

    async def transition(self, session_id: str, to_status: SessionStatus) -> Any:
        raise NotImplementedError("the sketch has no lifecycle")

    async def delete(self, session_id: str) -> Any:
        async with aiosqlite.connect(self.path) as db:
            cursor = await db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            await db.commit()
            return cursor.rowcount > 0

    async def close(self) -> None:
        return None

    async def turn(self, session_id: str, number: int) -> Any:
        raise NotImplementedError("the spec's sketch has no turns")
