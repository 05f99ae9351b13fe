"""What the benchmark measures: our repositories and two baselines, behind one interface."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import aiosqlite

from bench import turns
from src.domain.merge_patch import apply_merge_patch
from src.domain.models.event import EventType
from src.domain.models.json import compact_json
from src.domain.models.session import Session, SessionState, SessionStatus, utc_now
from src.domain.models.utterance import metadata_json
from src.persistence.database import connection_pragmas
from src.persistence.pagination import encode_cursor
from src.persistence.repositories import statements as sql
from src.persistence.repositories.core import RepositoryCore, session_insert
from src.persistence.repositories.events import deleted_event, session_event
from src.persistence.repositories.session_repo import to_text


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


class PlainSqliteTarget:
    """The in-process limit: plain sqlite3, one long-lived connection, the same SQL.

    Same schema, WAL, synchronous=FULL, one transaction per operation; rows
    are returned as they come, with no model built from them.
    """

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode = WAL")
        # The store's own settings: synchronous=FULL, foreign keys, its cache, and
        # secure_delete, which erasure needs.
        self.connection.executescript(connection_pragmas("full"))
        self.connection.row_factory = sqlite3.Row

    def _run(self, query: sql.Query, parameters: Mapping[str, Any]) -> list[sqlite3.Row]:
        return self.connection.execute(query.sqlite, parameters).fetchall()

    def _write(self, statement: sql.Statement, now: str) -> list[sqlite3.Row]:
        return self._run(statement.query, {**statement.parameters, "now": now})

    def _version(
        self, session_id: str, change: str, data_set: str | None, turn: int | None
    ) -> None:
        self._run(
            sql.INSERT_VERSION,
            {
                "id": session_id,
                "change": change,
                "turn_number": turn,
                "data_set": data_set,
                "data_unset": None,
            },
        )

    def _event(self, type_: EventType, session_id: str, data: Mapping[str, Any], now: str) -> None:
        self._write(session_event(type_, session_id, data), now)

    async def create(self, session: Session) -> Any:
        now = to_text(utc_now())
        self.connection.execute("BEGIN IMMEDIATE")
        rows = self._write(session_insert(session), now)
        self._version(session.id, "created", None, None)
        self._event(EventType.CREATED, session.id, {"status": "active", "forked_from": None}, now)
        self.connection.execute("COMMIT")
        return rows

    async def get(self, session_id: str) -> Any:
        return self._run(sql.SELECT_BY_ID, {"id": session_id})

    async def update_state(
        self, session_id: str, state: SessionState, *, history: bool = True
    ) -> Any:
        """The repository's statements for a state with unchanged data, in one transaction."""
        now = to_text(utc_now())
        self.connection.execute("BEGIN IMMEDIATE")
        (current,) = self._run(sql.SELECT_FOR_WRITE, {"id": session_id})
        rows = self._run(sql.UPDATE_STATE, {**self._state(session_id, state, current), "now": now})
        if history:
            self._version(session_id, "state", None, None)
        self._event(
            EventType.STATE_UPDATED,
            session_id,
            {
                "turn_count": state.turn_count,
                "coverage_score": state.coverage_score,
                "last_strategy": state.last_strategy,
            },
            now,
        )
        self.connection.execute("COMMIT")
        return rows

    @staticmethod
    def _state(session_id: str, state: SessionState, current: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": session_id,
            "version": current["version"],
            "turn_count": state.turn_count,
            "coverage_score": state.coverage_score,
            "last_strategy": state.last_strategy,
            "usage_turns": 0,
            "usage_input_tokens": 0,
            "usage_output_tokens": 0,
            "usage_cost_usd": 0.0,
            "usage_latency_ms": 0.0,
        }

    async def turn(self, session_id: str, number: int, *, history: bool = True) -> Any:
        """The rows the repository writes for a turn, statement for statement, in one
        transaction: read the session, the record, the state, its changed data keys,
        the version, the utterances."""
        now = to_text(utc_now())
        patch = turns.state_patch(number)
        record = turns.RECORD
        self.connection.execute("BEGIN IMMEDIATE")
        (current,) = self._run(sql.SELECT_FOR_WRITE, {"id": session_id})
        data = json.loads(current[-1] or "{}")
        merged = apply_merge_patch(data, patch["data"])
        self._run(
            sql.INSERT_RECORD,
            {
                "session_id": session_id,
                "turn_number": number,
                "strategy": record.strategy,
                "scores": compact_json(record.scores),
                "signals": compact_json(record.signals),
                "model": record.usage.model,
                "input_tokens": record.usage.input_tokens,
                "output_tokens": record.usage.output_tokens,
                "cost_usd": record.usage.cost_usd,
                "latency_ms": record.usage.latency_ms,
                "now": now,
            },
        )
        usage = record.usage
        self._run(
            sql.UPDATE_STATE,
            {
                "id": session_id,
                "version": current["version"],
                "turn_count": number,
                "coverage_score": current["coverage_score"],
                "last_strategy": current["last_strategy"],
                "usage_turns": 1,
                "usage_input_tokens": usage.input_tokens,
                "usage_output_tokens": usage.output_tokens,
                "usage_cost_usd": usage.cost_usd,
                "usage_latency_ms": usage.latency_ms,
                "now": now,
            },
        )
        changed = {
            key: compact_json(merged[key])
            for key in patch["data"]
            if key not in data or compact_json(data[key]) != compact_json(merged[key])
        }
        for key, text in changed.items():
            self._run(sql.UPSERT_DATA, {"session_id": session_id, "key": key, "value": text})
        if history:
            members = ",".join(f"{compact_json(key)}:{text}" for key, text in changed.items())
            self._version(session_id, "turn", "{" + members + "}" if changed else None, number)
        appended = []
        for utterance in turns.utterances(number):
            (row,) = self._run(
                sql.APPEND_UTTERANCE,
                {
                    "session_id": session_id,
                    "turn_number": utterance.turn_number,
                    "speaker": utterance.speaker.value,
                    "text": utterance.text,
                    "metadata": metadata_json(utterance.metadata),
                    "now": now,
                },
            )
            appended.append(dict(row))
        self._event(
            EventType.TURN_RECORDED,
            session_id,
            {"turn_number": number, "utterances": appended},
            now,
        )
        self.connection.execute("COMMIT")

    async def list_page(self, after: Session | None) -> Any:
        parameters: dict[str, Any] = {"status": "active", "limit": 51}
        if after is not None:
            parameters |= {"after_created_at": to_text(after.created_at), "after_id": after.id}
        return self._run(sql.list_query(("status",), after is not None), parameters)

    async def transition(self, session_id: str, to_status: SessionStatus) -> Any:
        source = "paused" if to_status == SessionStatus.ACTIVE else "active"
        now = to_text(utc_now())
        self.connection.execute("BEGIN IMMEDIATE")
        rows = self._run(
            sql.TRANSITION,
            {
                "id": session_id,
                "to_status": to_status.value,
                "from_status_1": source,
                "from_status_2": source,
                "ends": False,
                "expected_version": None,
                "now": now,
            },
        )
        self._version(session_id, "transition", None, None)
        self._event(EventType.STATUS_CHANGED, session_id, {"status": to_status.value}, now)
        self.connection.execute("COMMIT")
        return rows

    async def delete(self, session_id: str) -> Any:
        now = to_text(utc_now())
        self.connection.execute("BEGIN IMMEDIATE")
        rows = self._run(sql.DELETE, {"id": session_id})
        for row in rows:
            self._write(deleted_event(session_id, row["study_id"], int(row["version"])), now)
        self.connection.execute("COMMIT")
        return rows

    async def close(self) -> None:
        self.connection.close()


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
