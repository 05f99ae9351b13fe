"""Full-text search over a store of N utterances, and what the search index adds to a turn.

    python -m bench.search build sqlite PATH|postgres DSN UTTERANCES
    python -m bench.search measure sqlite PATH|postgres DSN [--quick]

`build` loads the store in bulk with `bench.erasure`'s builder: sessions of 40
turns spread over 50 studies, each utterance 12 words drawn from a vocabulary of
20,000 with Zipf frequencies (the k-th most frequent word is said k times less
often than the first), as speech has them. The schema's own triggers (SQLite)
or generated column (PostgreSQL) index every utterance as any write does. On
SQLite it also copies the store without the search index's insert trigger.

`measure` (run once per repetition, in a process of its own) prints JSON:

- the first page (50 hits) of the repository's `search`, the call behind
  `GET /search`, for words, phrases and prefixes of set frequencies, with and
  without a study filter, in a shuffled order; p50 and p99 by kind and over the
  mix, and each kind's total number of hits;
- on SQLite, a turn with plain sqlite3 (the repository's statements, as
  `bench.plain.PlainSqliteTarget` writes them) on the store and on its copy
  without the search trigger, calls interleaved so that noise falls on both.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

from bench import erasure
from bench.plain import PlainSqliteTarget
from bench.repository import TURNS_PER_INTERVIEW, new_session, percentiles, summary
from bench.speech import CHANCES, VOCABULARY_SIZE, WORDS, WORDS_PER_UTTERANCE, share, spoken
from bench.stores import STUDIES
from src.domain.search import parse_search_query
from src.persistence.repositories.core import RepositoryCore
from src.persistence.repositories.postgres_session_repo import PostgresSessionRepository
from src.persistence.repositories.session_repo import SessionRepository

PAGE = 50
INSTANCES = 8
"""Queries of each kind: different words of about the same frequency."""


def _words_near(fraction: float) -> list[str]:
    """INSTANCES words, each in about `fraction` of utterances."""
    rank = min(range(VOCABULARY_SIZE), key=lambda r: abs(share(CHANCES[r]) - fraction))
    start = max(rank - INSTANCES // 2, 0)
    return WORDS[start : start + INSTANCES]


def _phrases_near(fraction: float) -> list[str]:
    """INSTANCES two-word phrases, each in about `fraction` of utterances: a frequent
    word, then one that makes the pair as rare as asked."""
    phrases = []
    for first in range(1, INSTANCES + 1):
        wanted = fraction / ((WORDS_PER_UTTERANCE - 1) * CHANCES[first])
        second = min(range(VOCABULARY_SIZE), key=lambda r: abs(CHANCES[r] - wanted))
        phrases.append(f'"{WORDS[first]} {WORDS[second]}"')
    return phrases


def _prefixes_near(fraction: float) -> list[str]:
    """INSTANCES two-syllable prefixes, each the start of words in about `fraction`
    of utterances."""
    weight: dict[str, float] = {}
    for word, chance in zip(WORDS, CHANCES, strict=True):
        weight[word[:4]] = weight.get(word[:4], 0.0) + chance
    nearest = sorted(weight, key=lambda prefix: abs(share(weight[prefix]) - fraction))
    return [f"{prefix}*" for prefix in nearest[:INSTANCES]]


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    queries: list[str]
    study: bool
    in_mix: bool = True


def kinds() -> list[Kind]:
    """The queries measured: the mix, and a very frequent word (10%) beside it."""
    plain = {
        "word 0.1%": _words_near(0.001),
        "word 1%": _words_near(0.01),
        "phrase 0.1%": _phrases_near(0.001),
        "prefix 0.5%": _prefixes_near(0.005),
    }
    measured = [Kind(name, queries, study=False) for name, queries in plain.items()]
    measured += [Kind(f"{name}, one study", queries, study=True) for name, queries in plain.items()]
    frequent = _words_near(0.1)
    measured += [
        Kind("word 10%", frequent, study=False, in_mix=False),
        Kind("word 10%, one study", frequent, study=True, in_mix=False),
    ]
    return measured


def without_search_path(path: str) -> Path:
    """The copy of a SQLite store without the search index's insert trigger."""
    return Path(f"{path}.without-search")


def build(kind: str, store: str, count: int) -> None:
    if kind == "sqlite":
        erasure.build_sqlite(Path(store), count, text=spoken(), studies=STUDIES)
        with sqlite3.connect(store) as connection:
            (indexed,) = connection.execute("SELECT count(*) FROM utterance_search_rows").fetchone()
        assert indexed == count, f"the search index holds {indexed} of {count} utterances"
        copy = without_search_path(store)
        shutil.copyfile(store, copy)
        with sqlite3.connect(copy) as connection:
            connection.execute("DROP TRIGGER utterances_search_insert")
    else:
        asyncio.run(erasure.build_postgres(store, count, text=spoken(), studies=STUDIES))


async def _hits(kind: str, store: str, query: str, study_id: str | None) -> int:
    """How many utterances match `query` in all, by the engine's own count."""
    parsed = parse_search_query(query)
    if kind == "sqlite":
        statement = (
            "SELECT count(*) FROM utterance_search"
            " JOIN utterance_search_rows AS u ON u.row_id = utterance_search.rowid"
            " JOIN sessions AS s ON s.id = u.session_id"
            " WHERE utterance_search MATCH ? AND (? IS NULL OR s.study_id = ?)"
        )
        with sqlite3.connect(store) as database:
            (count,) = database.execute(statement, (parsed.fts5(), study_id, study_id)).fetchone()
        return int(count)
    connection = await asyncpg.connect(store)
    try:
        count = await connection.fetchval(
            "SELECT count(*) FROM utterances AS u JOIN sessions AS s ON s.id = u.session_id"
            " WHERE u.search_vector @@ (SELECT all_of(term) FROM ("
            "   SELECT phraseto_tsquery('utterance_search', p) AS term FROM unnest($1::text[]) p"
            "   UNION ALL"
            "   SELECT to_tsquery('utterance_search', p) FROM unnest($2::text[]) p) AS parts)"
            " AND ($3::text IS NULL OR s.study_id = $3)",
            parsed.phrases(),
            parsed.prefixes(),
            study_id,
        )
    finally:
        await connection.close()
    return int(count)


async def searches(
    kind: str, store: str, repository: RepositoryCore, rounds: int, *, mix_only: bool = False
) -> dict[str, Any]:
    """The first page of each query, `rounds` times in a shuffled order; `mix_only`:
    leave out the kinds outside the mix (the 10% word)."""
    measured = [each for each in kinds() if each.in_mix or not mix_only]
    calls: list[tuple[Kind, Callable[[], Awaitable[Any]]]] = []
    hits: dict[str, list[int]] = {}
    for number, each in enumerate(measured):
        for index, query in enumerate(each.queries):
            study_id = f"study-{(number + index) % STUDIES}" if each.study else None
            hits.setdefault(each.name, []).append(await _hits(kind, store, query, study_id))
            call = partial(repository.search, query, study_id=study_id, limit=PAGE)
            await call()  # once before the clock runs
            calls += [(each, call)] * rounds
    for each in measured:
        # The store's own index found what it holds (the bulk load went through it).
        assert each.study or min(hits[each.name]) > 0, f"no hit for {each.name}"
    random.Random(3).shuffle(calls)
    latencies: dict[str, list[int]] = {}
    mix: list[int] = []
    for each, search in calls:
        begin = time.perf_counter_ns()
        await search()
        elapsed = time.perf_counter_ns() - begin
        latencies.setdefault(each.name, []).append(elapsed)
        if each.in_mix:
            mix.append(elapsed)
    return {
        "kinds": {
            each.name: {
                **percentiles(latencies[each.name]),
                "hits": float(sorted(hits[each.name])[len(hits[each.name]) // 2]),
            }
            for each in measured
        },
        "mix": percentiles(mix),
    }


async def turns_with_and_without_search(store: str, count: int) -> dict[str, Any]:
    """Turns with plain sqlite3 on the store and on its copy without the search trigger,
    one after the other in turn (each first half the time)."""
    targets = {
        "with_search": PlainSqliteTarget(store),
        "without_search": PlainSqliteTarget(str(without_search_path(store))),
    }
    try:
        interviews: dict[str, list[str]] = {}
        for name, target in targets.items():
            sessions = [new_session() for _ in range(count // TURNS_PER_INTERVIEW + 1)]
            for session in sessions:
                await target.create(session)
            interviews[name] = [session.id for session in sessions]
        timings: dict[str, list[int]] = {name: [] for name in targets}
        order = list(targets)
        started = time.perf_counter()
        for n in range(count):
            for name in order if n % 2 else order[::-1]:
                session_id = interviews[name][n // TURNS_PER_INTERVIEW]
                begin = time.perf_counter_ns()
                await targets[name].turn(session_id, n % TURNS_PER_INTERVIEW + 1)
                timings[name].append(time.perf_counter_ns() - begin)
        elapsed = time.perf_counter() - started
    finally:
        for target in targets.values():
            await target.close()
    return {name: summary(values, elapsed / 2) for name, values in timings.items()}


async def measure(kind: str, store: str, quick: bool) -> dict[str, Any]:
    repository: RepositoryCore = (
        SessionRepository(store) if kind == "sqlite" else PostgresSessionRepository(store)
    )
    async with repository:
        result = await searches(kind, store, repository, rounds=1 if quick else 3)
    if kind == "sqlite":
        result["turn"] = await turns_with_and_without_search(store, 30 if quick else 300)
    return result


def main() -> None:
    command, kind, store = sys.argv[1:4]
    if command == "build":
        started = time.perf_counter()
        build(kind, store, int(sys.argv[4]))
        print(json.dumps({"build_s": time.perf_counter() - started}))
        return
    print(json.dumps(uvloop.run(measure(kind, store, "--quick" in sys.argv))))


if __name__ == "__main__":
    main()
