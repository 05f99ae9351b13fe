"""Reads that must not grow with the store: a transcript page and a search.

    python -m bench.scale STORE IDS_FILE [--quick]

Run on the bench's SQLite stores of sessions with ten utterances each (1,000 and
1,000,000 sessions: 10,000 and 10,000,000 utterances), prints JSON:

- a transcript page (`list_utterances`, the call behind `GET
  /sessions/{id}/utterances`) of sessions drawn at random from the sample, p50 and p99;
- the first page of each search of `bench.search`'s mix, once (the bench runs this
  once per repetition).
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

from bench.repository import percentiles
from bench.search import searches
from src.persistence.repositories.session_repo import SessionRepository


async def measure(store: str, ids: list[str], quick: bool) -> dict[str, Any]:
    rng = random.Random(5)
    pages = 200 if quick else 2000
    async with SessionRepository(store) as repository:
        transcript_ns = []
        for _ in range(pages):
            session_id = rng.choice(ids)
            begin = time.perf_counter_ns()
            await repository.list_utterances(session_id)
            transcript_ns.append(time.perf_counter_ns() - begin)
        found = await searches("sqlite", store, repository, rounds=1, mix_only=True)
    return {"transcript_page": percentiles(transcript_ns), "search": found}


def main() -> None:
    store, ids_file = sys.argv[1:3]
    ids = json.loads(Path(ids_file).read_text())
    print(json.dumps(uvloop.run(measure(store, ids, "--quick" in sys.argv))))


if __name__ == "__main__":
    main()
