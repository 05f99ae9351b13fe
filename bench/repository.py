"""Run the repository scenarios on one target, in a process of its own; print JSON.

    python -m bench.repository TARGET STORE IDS_FILE [--quick]

The orchestrator (python -m bench) runs it once per repetition, interleaving
targets, so that the machine's noise falls on all of them alike.

TARGET is sqlite, sqlite-normal, postgres, plain-sqlite3, plain-asyncpg,
per-operation, or paired (sqlite and plain-sqlite3 call by call in turn, the
plain calls on a copy of the store); STORE a file path
or a PostgreSQL DSN; IDS_FILE a JSON list of ids present in the store.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import uvloop

from bench.plain import PlainAsyncpgTarget, PlainSqliteTarget
from bench.stores import CONCEPT_ID, CONCEPT_NAME, METHODOLOGY
from bench.targets import ConnectionPerOperationTarget, RepositoryTarget, Target
from src.domain.models.session import Session, SessionState, SessionStatus
from src.persistence.repositories.postgres_session_repo import PostgresSessionRepository
from src.persistence.repositories.session_repo import SessionRepository

CONCURRENT_TASKS = 64
POOL_SIZE = 10
TURNS_PER_INTERVIEW = 12
FULL_COUNTS = {
    "create": 300,
    "get": 3000,
    "update_state": 300,
    "list_page": 500,
    "transition": 300,
    "delete": 300,
    "turn": 300,
}
# The sketch opens a connection per call and reads every active session to
# list; fewer rounds keep its run short.
PER_OPERATION_COUNTS = {
    "create": 100,
    "get": 500,
    "update_state": 100,
    "list_page": 5,
    "delete": 100,
}
# Each interview turn reads its session and records its new state; new
# sessions and listings (a researcher's dashboard) are rarer.
MIX = (("get", 45), ("update_state", 45), ("create", 8), ("list_page", 2))


def open_target(kind: str, store: str) -> Target:
    if kind == "sqlite":
        return RepositoryTarget(SessionRepository(store))
    if kind == "sqlite-normal":
        return RepositoryTarget(SessionRepository(store, synchronous="normal"))
    if kind == "postgres":
        return RepositoryTarget(PostgresSessionRepository(store, pool_size=POOL_SIZE))
    if kind == "plain-asyncpg":
        return PlainAsyncpgTarget(store, POOL_SIZE)
    if kind == "plain-sqlite3":
        return PlainSqliteTarget(store)
    if kind == "per-operation":
        return ConnectionPerOperationTarget(store)
    raise SystemExit(f"unknown target {kind!r}")


STATE = SessionState(
    methodology=METHODOLOGY, concept_id=CONCEPT_ID, concept_name=CONCEPT_NAME, turn_count=3
)


def new_session() -> Session:
    return Session(
        id=str(uuid.uuid4()),
        methodology=METHODOLOGY,
        concept_id=CONCEPT_ID,
        concept_name=CONCEPT_NAME,
        state=STATE,
    )


def percentiles(latencies_ns: list[int]) -> dict[str, float]:
    ordered = sorted(latencies_ns)
    return {
        "p50_ms": ordered[(len(ordered) - 1) // 2] / 1e6,
        "p99_ms": ordered[int((len(ordered) - 1) * 0.99)] / 1e6,
    }


def summary(latencies_ns: list[int], elapsed_s: float) -> dict[str, float]:
    ordered = sorted(latencies_ns)
    return {
        "ops_per_s": len(ordered) / elapsed_s,
        "p50_us": ordered[(len(ordered) - 1) // 2] / 1000,
        "p99_us": ordered[int((len(ordered) - 1) * 0.99)] / 1000,
    }


async def timed(calls: dict[str, list[Callable[[], Awaitable[Any]]]]) -> dict[str, Any]:
    """Each target's calls, one at a time; with several targets, call by call in turn (each
    first as often as the others), so that the machine's drift falls on all alike."""
    names = list(calls)
    latencies: dict[str, list[int]] = {name: [] for name in names}
    for index in range(len(calls[names[0]])):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            begin = time.perf_counter_ns()
            await calls[name][index]()
            latencies[name].append(time.perf_counter_ns() - begin)
    return {name: summary(values, sum(values) / 1e9) for name, values in latencies.items()}


def cursors_for(ids: list[str], rng: random.Random, count: int) -> list[Session | None]:
    # Keys far into the listing: keyset pages must cost the same at any depth.
    now_ish = new_session()
    cursors: list[Session | None] = [None]
    for _ in range(count - 1):
        key = now_ish.model_copy(update={"id": rng.choice(ids)})
        key.created_at = key.created_at.replace(microsecond=rng.randrange(1_000_000))
        cursors.append(key)
    return cursors


async def sequential(
    targets: dict[str, Target], ids: list[str], counts: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """Each operation on every target (each on a store of its own, holding the same
    sessions), the same calls in the same order."""
    rng = random.Random(7)
    results: dict[str, dict[str, Any]] = {name: {} for name in targets}

    def each(name: str, figures: dict[str, Any]) -> None:
        for target, summary_ in figures.items():
            results[target][name] = summary_

    def calls(make: Callable[[Target], list[Callable[[], Awaitable[Any]]]]) -> dict[str, Any]:
        return {name: make(target) for name, target in targets.items()}

    if "create" in counts:
        fresh = [new_session() for _ in range(counts["create"])]
        each("create", await timed(calls(lambda t: [partial(t.create, s) for s in fresh])))
    if "get" in counts:
        picks = [rng.choice(ids) for _ in range(counts["get"])]
        each("get", await timed(calls(lambda t: [partial(t.get, i) for i in picks])))
    if "update_state" in counts:
        picks = [rng.choice(ids) for _ in range(counts["update_state"])]
        each(
            "update_state",
            await timed(calls(lambda t: [partial(t.update_state, i, STATE) for i in picks])),
        )
    if "list_page" in counts:
        cursors = cursors_for(ids, rng, counts["list_page"])
        each("list_page", await timed(calls(lambda t: [partial(t.list_page, c) for c in cursors])))
    if "transition" in counts:
        # Pause then resume the same sessions, so each move is allowed.
        picks = rng.sample(ids, counts["transition"] // 2)
        moves = [(i, SessionStatus.PAUSED) for i in picks] + [
            (i, SessionStatus.ACTIVE) for i in picks
        ]
        each(
            "transition",
            await timed(calls(lambda t: [partial(t.transition, i, s) for i, s in moves])),
        )
    if "turn" in counts:
        interviews = [new_session() for _ in range(counts["turn"] // TURNS_PER_INTERVIEW + 1)]
        for target in targets.values():
            for session in interviews:
                await target.create(session)
        each(
            "turn",
            await timed(
                calls(
                    lambda t: [
                        partial(
                            t.turn,
                            interviews[n // TURNS_PER_INTERVIEW].id,
                            n % TURNS_PER_INTERVIEW + 1,
                        )
                        for n in range(counts["turn"])
                    ]
                )
            ),
        )
        for name, target in targets.items():
            if isinstance(target, PlainSqliteTarget):
                results[name] |= await with_and_without_history(target, ids, counts, rng)
    if "delete" in counts:
        doomed = [new_session() for _ in range(counts["delete"])]
        for target in targets.values():
            for session in doomed:
                await target.create(session)
        each("delete", await timed(calls(lambda t: [partial(t.delete, s.id) for s in doomed])))
    return results


async def mixed(target: Target, ids: list[str], tasks: int, per_task: int) -> dict[str, float]:
    """`tasks` concurrent tasks (1: one after another) each doing `per_task` mixed operations."""
    rng = random.Random(11)
    cursors = cursors_for(ids, rng, 50)
    kinds = [kind for kind, weight in MIX for _ in range(weight)]

    def operation() -> Callable[[], Awaitable[Any]]:
        kind = rng.choice(kinds)
        if kind == "create":
            return partial(target.create, new_session())
        if kind == "list_page":
            return partial(target.list_page, rng.choice(cursors))
        if kind == "get":
            return partial(target.get, rng.choice(ids))
        return partial(target.update_state, rng.choice(ids), STATE)

    plans = [[operation() for _ in range(per_task)] for _ in range(tasks)]
    latencies: list[int] = []
    failures = 0

    async def worker(plan: list[Callable[[], Awaitable[Any]]]) -> None:
        nonlocal failures
        for call in plan:
            begin = time.perf_counter_ns()
            try:
                await call()
            except Exception:
                # The connection-per-operation sketch fails under load
                # ("database is locked"); count it rather than stop.
                failures += 1
                continue
            latencies.append(time.perf_counter_ns() - begin)

    started = time.perf_counter()
    await asyncio.gather(*(worker(plan) for plan in plans))
    return {**summary(latencies, time.perf_counter() - started), "failed": float(failures)}


async def with_and_without_history(
    target: PlainSqliteTarget, ids: list[str], counts: dict[str, int], rng: random.Random
) -> dict[str, Any]:
    """The same statements with and without the history row, call by call in turn, so
    that the machine's drift falls on both alike."""
    interviews = [new_session() for _ in range(2 * (counts["turn"] // TURNS_PER_INTERVIEW + 1))]
    for session in interviews:
        await target.create(session)
    timings: dict[str, list[int]] = {}
    started = time.perf_counter()
    for n in range(counts["turn"]):
        number = n % TURNS_PER_INTERVIEW + 1
        pair = 2 * (n // TURNS_PER_INTERVIEW)
        for history, session in ((True, interviews[pair]), (False, interviews[pair + 1])):
            begin = time.perf_counter_ns()
            await target.turn(session.id, number, history=history)
            key = "turn_with_history" if history else "turn_without_history"
            timings.setdefault(key, []).append(time.perf_counter_ns() - begin)
        session_id = rng.choice(ids)
        for history in (True, False):
            begin = time.perf_counter_ns()
            await target.update_state(session_id, STATE, history=history)
            key = "update_state_with_history" if history else "update_state_without_history"
            timings.setdefault(key, []).append(time.perf_counter_ns() - begin)
    elapsed = time.perf_counter() - started
    return {key: summary(values, elapsed / 4) for key, values in timings.items()}


async def concurrent_turns(target: Target, tasks: int, per_task: int) -> dict[str, float]:
    """`tasks` interviews at once (1: one after another), each recording `per_task` turns."""
    interviews = [new_session() for _ in range(tasks)]
    for session in interviews:
        await target.create(session)
    latencies: list[int] = []

    async def interview(session_id: str) -> None:
        for number in range(1, per_task + 1):
            begin = time.perf_counter_ns()
            await target.turn(session_id, number)
            latencies.append(time.perf_counter_ns() - begin)

    started = time.perf_counter()
    await asyncio.gather(*(interview(session.id) for session in interviews))
    return summary(latencies, time.perf_counter() - started)


def peak_rss_mib() -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across execve, so a child
    # would report its parent's peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name in runs[0]:
        merged[name] = {
            metric: statistics.median(run[name][metric] for run in runs) for metric in runs[0][name]
        }
    return merged


async def measure(
    kind: str, store: str, ids: list[str], quick: bool, repetitions: int = 1
) -> dict[str, Any]:
    counts = PER_OPERATION_COUNTS if kind == "per-operation" else FULL_COUNTS
    if quick:
        counts = {name: max(count // 10, 5) for name, count in counts.items()}
    per_task = 10 if quick else 100
    if kind == "paired":
        return await measure_paired(store, ids, counts)
    target = open_target(kind, store)
    try:
        runs = []
        for _ in range(repetitions):
            run = (await sequential({kind: target}, ids, counts))[kind]
            # plain sqlite3 cannot overlap calls: its mix runs one call at a time.
            tasks = 1 if kind == "plain-sqlite3" else CONCURRENT_TASKS
            run["concurrent_mix" if tasks > 1 else "sequential_mix"] = await mixed(
                target, ids, tasks, per_task * (CONCURRENT_TASKS if tasks == 1 else 1)
            )
            if kind != "per-operation":
                turns_each = 3 if quick else 10
                run[
                    "concurrent_turns" if tasks > 1 else "sequential_turns"
                ] = await concurrent_turns(
                    target, tasks, turns_each * (CONCURRENT_TASKS if tasks == 1 else 1)
                )
            runs.append(run)
    finally:
        await target.close()
    result = median_of(runs)
    result["peak_rss_mib"] = peak_rss_mib()
    result["repetitions"] = repetitions
    return result


async def measure_paired(store: str, ids: list[str], counts: dict[str, int]) -> dict[str, Any]:
    """Each operation through the repository and by plain sqlite3, call by call in turn,
    the plain calls on a copy of the store (so that neither writer empties the other's
    cache), in one process: a ratio free of the drift between separate runs."""
    copy = Path(store).with_name(f"{Path(store).stem}-paired-plain.db")
    for leftover in (copy, Path(f"{copy}-wal"), Path(f"{copy}-shm")):
        leftover.unlink(missing_ok=True)
    with sqlite3.connect(store) as source, sqlite3.connect(copy) as destination:
        source.backup(destination)
    targets: dict[str, Target] = {
        "sqlite": open_target("sqlite", store),
        "plain-sqlite3": open_target("plain-sqlite3", str(copy)),
    }
    try:
        return await sequential(targets, ids, counts)
    finally:
        for target in targets.values():
            await target.close()


def main() -> None:
    kind, store, ids_file = sys.argv[1:4]
    quick = "--quick" in sys.argv
    with open(ids_file) as file:
        ids = json.load(file)
    print(json.dumps(uvloop.run(measure(kind, store, ids, quick))))


if __name__ == "__main__":
    main()
