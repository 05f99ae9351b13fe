"""The baselines: the repository's statements for each call, run by a plain driver.

Each operation is written once, as a script of statements (the same `Query`
objects the repository runs, in the same order, with the same values), and run
by two drivers: plain sqlite3 on one long-lived connection, and plain asyncpg
on a pool like the repository's. A write runs in one transaction; rows come
back as the driver gives them, with no model built from them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Generator, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from bench import turns
from src.domain.merge_patch import apply_merge_patch
from src.domain.models.event import EventType
from src.domain.models.graph import EdgeUpsert, GraphChange, NodeUpsert, Span
from src.domain.models.json import compact_json
from src.domain.models.session import Session, SessionState, SessionStatus, utc_now
from src.domain.models.utterance import metadata_json
from src.persistence.database import connection_pragmas
from src.persistence.postgres import create_pool
from src.persistence.repositories import graph_statements as graph_sql
from src.persistence.repositories import statements as sql
from src.persistence.repositories.core import session_insert
from src.persistence.repositories.events import deleted_event, session_event
from src.persistence.repositories.session_repo import sqlite_parameters, to_text
from src.persistence.repositories.statements import Statement

Script = Generator[Statement, Sequence[Any], Any]
"""An operation's statements: each is sent the rows of the one before."""


def _version(session_id: str, change: str, data_set: str | None, turn: int | None) -> Statement:
    return Statement(
        sql.INSERT_VERSION,
        {
            "id": session_id,
            "change": change,
            "turn_number": turn,
            "data_set": data_set,
            "data_unset": None,
        },
    )


def create(session: Session) -> Script:
    rows = yield session_insert(session)
    yield _version(session.id, "created", None, None)
    yield session_event(EventType.CREATED, session.id, {"status": "active", "forked_from": None})
    return rows


def get(session_id: str) -> Script:
    return (yield Statement(sql.SELECT_BY_ID, {"id": session_id}))


def update_state(session_id: str, state: SessionState, *, history: bool = True) -> Script:
    """The repository's statements for a state with unchanged data."""
    (current,) = yield Statement(sql.SELECT_FOR_WRITE, {"id": session_id})
    yield Statement(sql.DATA_FOR_WRITE, {"id": session_id})
    rows = yield Statement(
        sql.UPDATE_STATE,
        {
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
        },
    )
    if history:
        yield _version(session_id, "state", None, None)
    yield session_event(
        EventType.STATE_UPDATED,
        session_id,
        {
            "turn_count": state.turn_count,
            "coverage_score": state.coverage_score,
            "last_strategy": state.last_strategy,
        },
    )
    return rows


def turn(
    session_id: str,
    number: int,
    *,
    history: bool = True,
    graph: GraphChange | None = None,
    graph_checks: bool = True,
) -> Script:
    """The rows the repository writes for a turn, statement for statement: read the
    session, the record, the state, its changed data keys, the version, the utterances,
    the graph change of new nodes and edges (see `graph_change`), the event."""
    patch = turns.state_patch(number)
    record = turns.RECORD
    usage = record.usage
    (current,) = yield Statement(sql.SELECT_FOR_WRITE, {"id": session_id})
    ((data_text,),) = yield Statement(sql.DATA_FOR_WRITE, {"id": session_id})
    data = json.loads(data_text or "{}")
    merged = apply_merge_patch(data, patch["data"])
    yield Statement(
        sql.INSERT_RECORD,
        {
            "session_id": session_id,
            "turn_number": number,
            "strategy": record.strategy,
            "scores": compact_json(record.scores),
            "signals": compact_json(record.signals),
            "model": usage.model,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cost_usd": usage.cost_usd,
            "latency_ms": usage.latency_ms,
        },
    )
    yield Statement(
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
        },
    )
    changed = {
        key: compact_json(merged[key])
        for key in patch["data"]
        if key not in data or compact_json(data[key]) != compact_json(merged[key])
    }
    for key, text in changed.items():
        yield Statement(sql.UPSERT_DATA, {"session_id": session_id, "key": key, "value": text})
    if history:
        members = ",".join(f"{compact_json(key)}:{text}" for key, text in changed.items())
        yield _version(session_id, "turn", "{" + members + "}" if changed else None, number)
    appended = []
    for utterance in turns.utterances(number):
        (row,) = yield Statement(
            sql.APPEND_UTTERANCE,
            {
                "session_id": session_id,
                "turn_number": utterance.turn_number,
                "speaker": utterance.speaker.value,
                "text": utterance.text,
                "metadata": metadata_json(utterance.metadata),
            },
        )
        # asyncpg gives timestamps as datetimes; the event holds them as text.
        appended.append(
            {
                key: to_text(value) if isinstance(value, datetime) else value
                for key, value in dict(row).items()
            }
        )
    if graph is not None:
        yield from graph_change(session_id, number, graph, checks=graph_checks)
    yield session_event(
        EventType.TURN_RECORDED, session_id, {"turn_number": number, "utterances": appended}
    )


def graph_change(session_id: str, number: int, change: GraphChange, *, checks: bool) -> Script:
    """A change of new nodes and edges: with `checks`, the repository's statements for it
    (its last turn, its spans' utterances, what stands of its ids), else its rows alone."""
    if checks:
        yield Statement(graph_sql.LAST_CHANGE, {"session_id": session_id})
        items: list[NodeUpsert | EdgeUpsert] = [*change.nodes, *change.edges]
        spans = sorted({(s.turn_number, s.speaker.value) for i in items for s in i.provenance})
        for turn_number, speaker in spans:
            yield Statement(
                graph_sql.UTTERANCE_LENGTH,
                {"session_id": session_id, "turn_number": turn_number, "speaker": speaker},
            )
        ends = {end for edge in change.edges for end in (edge.source, edge.target)}
        node_ids = sorted(ends | {node.id for node in change.nodes})
        yield Statement(
            graph_sql.STANDING_NODES, {"session_id": session_id, "ids": compact_json(node_ids)}
        )
    for node in change.nodes:
        yield Statement(
            graph_sql.INSERT_NODE,
            {
                "session_id": session_id,
                "node_id": node.id,
                "turn": number,
                "type": node.type,
                "label": node.label,
                "confidence": node.confidence,
                "properties": compact_json(node.properties),
                "provenance": _spans(node.provenance),
                "embedding": None,
                "superseded_by": node.superseded_by,
                "first_turn": number,
            },
        )
    if checks:
        edge_ids = sorted({edge.id for edge in change.edges})
        yield Statement(
            graph_sql.STANDING_EDGES, {"session_id": session_id, "ids": compact_json(edge_ids)}
        )
    for edge in change.edges:
        yield Statement(
            graph_sql.INSERT_EDGE,
            {
                "session_id": session_id,
                "edge_id": edge.id,
                "turn": number,
                "source": edge.source,
                "target": edge.target,
                "type": edge.type,
                "confidence": edge.confidence,
                "properties": compact_json(edge.properties),
                "provenance": _spans(edge.provenance),
            },
        )


def _spans(spans: Sequence[Span]) -> str:
    return compact_json([span.model_dump(mode="json") for span in spans])


def list_page(after: Session | None) -> Script:
    parameters: dict[str, Any] = {"status": "active", "limit": 51}
    if after is not None:
        parameters |= {"after_created_at": after.created_at, "after_id": after.id}
    return (yield Statement(sql.list_query(("status",), after is not None), parameters))


def transition(session_id: str, to_status: SessionStatus) -> Script:
    source = "paused" if to_status == SessionStatus.ACTIVE else "active"
    rows = yield Statement(
        sql.TRANSITION,
        {
            "id": session_id,
            "to_status": to_status.value,
            "from_status_1": source,
            "from_status_2": source,
            "ends": False,
            "expected_version": None,
        },
    )
    yield _version(session_id, "transition", None, None)
    yield session_event(EventType.STATUS_CHANGED, session_id, {"status": to_status.value})
    return rows


def delete(session_id: str) -> Script:
    rows = yield Statement(sql.DELETE, {"id": session_id})
    for row in rows:
        yield deleted_event(session_id, row["study_id"], int(row["version"]))
    return rows


class _PlainTarget:
    """Every operation of `bench.targets.Target`, as a script run by `_run`."""

    async def _run(self, script: Script, *, write: bool) -> Any:
        raise NotImplementedError

    async def create(self, session: Session) -> Any:
        return await self._run(create(session), write=True)

    async def get(self, session_id: str) -> Any:
        return await self._run(get(session_id), write=False)

    async def update_state(
        self, session_id: str, state: SessionState, *, history: bool = True
    ) -> Any:
        return await self._run(update_state(session_id, state, history=history), write=True)

    async def turn(
        self,
        session_id: str,
        number: int,
        *,
        history: bool = True,
        graph: GraphChange | None = None,
        graph_checks: bool = True,
    ) -> Any:
        script = turn(session_id, number, history=history, graph=graph, graph_checks=graph_checks)
        return await self._run(script, write=True)

    async def list_page(self, after: Session | None) -> Any:
        return await self._run(list_page(after), write=False)

    async def transition(self, session_id: str, to_status: SessionStatus) -> Any:
        return await self._run(transition(session_id, to_status), write=True)

    async def delete(self, session_id: str) -> Any:
        return await self._run(delete(session_id), write=True)


class PlainSqliteTarget(_PlainTarget):
    """The in-process limit: plain sqlite3 on one long-lived connection, calls one at a
    time on the caller's thread, with the store's settings (WAL, synchronous=FULL,
    foreign keys, its cache, and the secure_delete that erasure needs)."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode = WAL")
        self.connection.executescript(connection_pragmas("full"))
        self.connection.row_factory = sqlite3.Row

    async def _run(self, script: Script, *, write: bool) -> Any:
        now = to_text(utc_now())
        if write:
            self.connection.execute("BEGIN IMMEDIATE")
        try:
            statement = next(script)
            while True:
                rows = self.connection.execute(
                    statement.query.sqlite, sqlite_parameters(statement, now)
                ).fetchall()
                statement = script.send(rows)
        except StopIteration as done:
            if write:
                self.connection.execute("COMMIT")
            return done.value
        except BaseException:
            if write:
                self.connection.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        self.connection.close()


class PlainAsyncpgTarget(_PlainTarget):
    """PostgreSQL's limit for our statements: plain asyncpg on a pool made as the
    repository makes its own (same size, same settings), one connection per call."""

    def __init__(self, dsn: str, pool_size: int) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    async def _connected(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await create_pool(self.dsn, self.pool_size)
        return self._pool

    async def _run(self, script: Script, *, write: bool) -> Any:
        pool = await self._connected()
        async with pool.acquire() as connection:
            if not write:
                return await _drive(connection, script)
            async with connection.transaction():
                return await _drive(connection, script)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


async def _drive(connection: Any, script: Script) -> Any:
    try:
        statement = next(script)
        while True:
            values = [statement.parameters[name] for name in statement.query.names]
            statement = script.send(await connection.fetch(statement.query.postgres, *values))
    except StopIteration as done:
        return done.value
