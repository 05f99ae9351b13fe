"""`make bench`: measure everything in one run and write docs/benchmarks.md.

    python -m bench [--quick]

--quick runs small stores, one repetition and short HTTP runs: a smoke test
of the bench itself, not figures to quote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg

from bench import http, report
from bench.export import build_transcript_store
from bench.stores import (
    UTTERANCES_PER_SESSION,
    build_postgres_store,
    build_sqlite_store,
    file_size_mib,
)
from src.domain.export import ExportFormat
from src.study_exporting import StudyExportFormat

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def machine() -> dict[str, Any]:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


async def postgres_version() -> str | None:
    try:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        version: str = await connection.fetchval("SHOW server_version")
        return version
    finally:
        await connection.close()


async def postgres_schema(name: str, drop: bool = False) -> str:
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        if not drop:
            await connection.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await connection.close()
    return f"{POSTGRES_URL}?search_path={name}"


def run_json(command: list[str]) -> Any:
    """Run a bench module in a process of its own; what it printed, as JSON."""
    output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(output.stdout)


def run_repository(kind: str, store: str, ids_file: Path, quick: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.repository", kind, store, str(ids_file)]
    if quick:
        command.append("--quick")
    result: dict[str, Any] = run_json(command)
    return result


def median_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            merged[key] = {
                metric: statistics.median(run[key][metric] for run in runs) for metric in value
            }
        elif isinstance(value, int | float):
            merged[key] = statistics.median(run[key] for run in runs)
    return merged


@contextmanager
def engine_stores(path: Path, schema: str, postgres: bool) -> Iterator[dict[str, str]]:
    """A SQLite file and, if asked, a PostgreSQL schema of its own, dropped afterwards."""
    stores = {"sqlite": str(path)}
    if postgres:
        stores["postgres"] = asyncio.run(postgres_schema(schema))
    try:
        yield stores
    finally:
        if postgres:
            asyncio.run(postgres_schema(schema, drop=True))


def run_erasures(
    work: Path, suffix: str, quick: bool, postgres: bool, repetitions: int
) -> dict[str, Any]:
    background = 20_000 if quick else 1_000_000
    sizes = [str(background), str(repetitions)]
    with engine_stores(work / "erasure.db", f"bench_erasure_{suffix}", postgres) as stores:
        return {
            engine: run_json([sys.executable, "-m", "bench.erasure", engine, store, *sizes])
            for engine, store in stores.items()
        }


def run_scale(
    stores: dict[tuple[str, str], tuple[str, Path]], quick: bool, repetitions: int
) -> dict[str, Any]:
    """A transcript page and a search on the small and the large SQLite store, sizes in
    turn, once per repetition."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(repetitions):
        for size_name in ("small", "large"):
            store, ids_file = stores[("sqlite", size_name)]
            command = [sys.executable, "-m", "bench.scale", store, str(ids_file)]
            if quick:
                command.append("--quick")
            runs.setdefault(size_name, []).append(run_json(command))
    return {size_name: graph_medians(results) for size_name, results in runs.items()}


def run_search(
    work: Path, suffix: str, quick: bool, postgres: bool, repetitions: int
) -> dict[str, Any]:
    """Search over a store of 1,000,000 utterances on each engine; the stores built once,
    then measured once per repetition, engines in turn."""
    utterances = 20_000 if quick else 1_000_000
    runs: dict[str, list[dict[str, Any]]] = {}
    with engine_stores(work / "search.db", f"bench_search_{suffix}", postgres) as stores:
        builds = {
            engine: run_json(
                [sys.executable, "-m", "bench.search", "build", engine, store, str(utterances)]
            )["build_s"]
            for engine, store in stores.items()
        }
        for _ in range(repetitions):
            for engine, store in stores.items():
                command = [sys.executable, "-m", "bench.search", "measure", engine, store]
                if quick:
                    command.append("--quick")
                runs.setdefault(engine, []).append(run_json(command))
    return {
        engine: {**graph_medians(results), "utterances": utterances, "build_s": builds[engine]}
        for engine, results in runs.items()
    }


def run_study_exports(work: Path, quick: bool, repetitions: int) -> dict[str, Any]:
    """A study of 200 and of 600 sessions exported to /dev/null in each study format."""
    sizes = {"small": 20, "large": 60} if quick else {"small": 200, "large": 600}
    stores, builds = {}, {}
    for name, sessions in sizes.items():
        path = work / f"study-{name}.db"
        command = [sys.executable, "-m", "bench.study_export", "build", str(path), str(sessions)]
        builds[name] = run_json(command)["build_s"]
        stores[name] = str(path)
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(repetitions):
        for export_format in StudyExportFormat:
            for name, path_text in stores.items():
                command = [sys.executable, "-m", "bench.study_export", path_text, export_format]
                runs.setdefault(f"{export_format}@{name}", []).append(run_json(command))
    return {
        "sessions": sizes,
        "build_s": builds,
        "runs": {key: median_runs(values) for key, values in runs.items()},
    }


def graph_medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure of `bench.graph`'s runs, nested as they are."""
    merged: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            merged[key] = graph_medians([run[key] for run in runs])
        elif isinstance(value, int | float):
            merged[key] = statistics.median(run[key] for run in runs)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    quick: bool = args.quick
    repetitions = 1 if quick else 3
    seconds = 2 if quick else 10
    sizes = {"small": 1_000, "large": 20_000 if quick else 1_000_000}
    started = time.perf_counter()
    facts: dict[str, Any] = {"machine": machine(), "quick": quick, "repetitions": repetitions}
    facts["machine"]["postgres"] = pg_version = asyncio.run(postgres_version())
    wrk = http.ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    suffix = uuid.uuid4().hex[:8]

    # Stores: loaded in bulk (executemany in one transaction; COPY), not
    # through the repository.
    stores: dict[tuple[str, str], tuple[str, Path]] = {}
    loads: dict[str, float] = {}
    for size_name, count in sizes.items():
        path = work / f"sqlite-{size_name}.db"
        begin = time.perf_counter()
        ids = build_sqlite_store(path, count, UTTERANCES_PER_SESSION)
        loads[f"sqlite {count:,}"] = time.perf_counter() - begin
        ids_file = work / f"sqlite-{size_name}-ids.json"
        ids_file.write_text(json.dumps(ids))
        stores[("sqlite", size_name)] = (str(path), ids_file)
        facts.setdefault("file_mib", {})[size_name] = file_size_mib(path)
        if pg_version is not None:
            dsn = asyncio.run(postgres_schema(f"bench_{size_name}_{suffix}"))
            begin = time.perf_counter()
            ids = asyncio.run(build_postgres_store(dsn, count))
            loads[f"postgres {count:,}"] = time.perf_counter() - begin
            ids_file = work / f"postgres-{size_name}-ids.json"
            ids_file.write_text(json.dumps(ids))
            stores[("postgres", size_name)] = (dsn, ids_file)
    facts["loads_s"] = loads
    print(f"bench: stores loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    # Repository: every target once per repetition, interleaved.
    plan = [
        ("sqlite", "sqlite", "small"),
        ("plain-sqlite3", "sqlite", "small"),
        ("paired", "sqlite", "small"),
        ("per-operation", "sqlite", "small"),
        ("sqlite-normal", "sqlite", "small"),
        ("sqlite", "sqlite", "large"),
        ("plain-sqlite3", "sqlite", "large"),
        ("postgres", "postgres", "small"),
        ("plain-asyncpg", "postgres", "small"),
        ("postgres", "postgres", "large"),
    ]
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(repetitions):
        for kind, engine, size_name in plan:
            if (engine, size_name) not in stores:
                continue
            store, ids_file = stores[(engine, size_name)]
            result = run_repository(kind, store, ids_file, quick)
            if kind == "paired":
                for target, figures in result.items():
                    runs.setdefault(f"paired {target}@{size_name}", []).append(figures)
            else:
                runs.setdefault(f"{kind}@{size_name}", []).append(result)
    facts["repository"] = {name: median_runs(results) for name, results in runs.items()}
    print(f"bench: repository done at {time.perf_counter() - started:.0f} s", file=sys.stderr)

    # Reads at scale: a transcript page and a search on each SQLite store.
    facts["scale"] = run_scale(stores, quick, repetitions)
    print(f"bench: scale done at {time.perf_counter() - started:.0f} s", file=sys.stderr)

    # Erasure: a participant with 50 sessions of 40 turns, among other utterances.
    facts["erasure"] = run_erasures(work, suffix, quick, pg_version is not None, repetitions)
    print(f"bench: erasure done at {time.perf_counter() - started:.0f} s", file=sys.stderr)

    # Search: words, phrases and prefixes over 1,000,000 utterances; a turn's index upkeep.
    facts["search"] = run_search(work, suffix, quick, pg_version is not None, repetitions)
    print(f"bench: search done at {time.perf_counter() - started:.0f} s", file=sys.stderr)

    # Export: one long session streamed to /dev/null, at two lengths; flat
    # memory means the same peak for three times the utterances.
    lengths = {"short": 10_000, "long": 30_000} if quick else {"short": 100_000, "long": 300_000}
    transcripts = {}
    for name, count in lengths.items():
        path = work / f"transcript-{name}.db"
        transcripts[name] = (str(path), build_transcript_store(path, count))
    export_runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(repetitions):
        for export_format in ExportFormat:
            for name, (path_text, session_id) in transcripts.items():
                command = [
                    sys.executable,
                    "-m",
                    "bench.export",
                    path_text,
                    session_id,
                    export_format,
                ]
                export_runs.setdefault(f"{export_format}@{name}", []).append(run_json(command))
    facts["export"] = {
        "utterances": lengths,
        "runs": {key: median_runs(values) for key, values in export_runs.items()},
    }
    print(f"bench: export done at {time.perf_counter() - started:.0f} s", file=sys.stderr)

    # A whole study's export (qdpx, csv, jsonl) at two sizes, each in a process of its own.
    facts["study_export"] = run_study_exports(work, quick, repetitions)
    print(f"bench: study export done at {time.perf_counter() - started:.0f} s", file=sys.stderr)

    # The conversation graph: a turn with a graph change, as_of_turn, nearest nodes.
    graph_runs: list[dict[str, Any]] = []
    for repetition in range(repetitions):
        command = [sys.executable, "-m", "bench.graph", str(work / f"graph-{repetition}")]
        schema = f"bench_graph_{suffix}_{repetition}"
        if pg_version is not None:
            command.append(asyncio.run(postgres_schema(schema)))
        if quick:
            command.append("--quick")
        try:
            graph_runs.append(run_json(command))
        finally:
            if pg_version is not None:
                asyncio.run(postgres_schema(schema, drop=True))
    facts["graph"] = graph_medians(graph_runs)
    print(f"bench: graph done at {time.perf_counter() - started:.0f} s", file=sys.stderr)

    # HTTP: the real server process on core 0, wrk on core 1.
    http_plan = [
        ("sqlite", "small", ["get", "create", "turn", "list", "mix", "floor"], [1, 16, 64]),
        ("sqlite", "large", ["get", "list"], [16, 64]),
        ("postgres", "small", ["get", "create", "list", "mix", "floor"], [16, 64]),
    ]
    facts["http"] = {}
    port = 18_400
    for engine, size_name, scenarios, connection_counts in http_plan:
        if (engine, size_name) not in stores:
            continue
        store, ids_file = stores[(engine, size_name)]
        lines_file = ids_file.with_suffix(".txt")
        lines_file.write_text("\n".join(json.loads(ids_file.read_text())) + "\n")
        env = {"DATABASE_PATH": store, "DATABASE_URL": ""}
        if engine == "postgres":
            env = {"DATABASE_URL": store, "DATABASE_POOL_SIZE": "10"}
        port += 1
        server = http.start_server(env, port, work / f"server-{engine}-{size_name}.log")
        results: dict[str, list[dict[str, float]]] = {}
        try:
            for _ in range(repetitions):
                for scenario in scenarios:
                    for connections in connection_counts:
                        key = f"{scenario}@{connections}"
                        results.setdefault(key, []).append(
                            http.run_wrk(
                                wrk, server.url, scenario, connections, seconds, lines_file
                            )
                        )
            peak_rss = server.peak_rss_mib()
            errors = server.server_errors()
        finally:
            server.stop()
        facts["http"][f"{engine}@{size_name}"] = {
            "startup_s": server.startup_s,
            "peak_rss_mib": peak_rss,
            "server_errors": errors,
            "scenarios": {key: median_runs(values) for key, values in results.items()},
        }
    print(f"bench: HTTP done at {time.perf_counter() - started:.0f} s", file=sys.stderr)

    # Two API processes on one PostgreSQL database, each under its own wrk.
    if ("postgres", "small") in stores:
        store, ids_file = stores[("postgres", "small")]
        lines_file = ids_file.with_suffix(".txt")
        env = {"DATABASE_URL": store, "DATABASE_POOL_SIZE": "10"}
        servers = [
            http.start_server(env, port + n, work / f"server-pair-{n}.log", core=0) for n in (1, 2)
        ]
        totals: list[dict[str, float]] = []
        try:
            for _ in range(repetitions):
                with ThreadPoolExecutor(2) as pool:
                    both = list(
                        pool.map(
                            lambda s: http.run_wrk(wrk, s.url, "mix", 32, seconds, lines_file),
                            servers,
                        )
                    )
                totals.append(
                    {
                        "req_per_s": sum(r["req_per_s"] for r in both),
                        "p99_us": max(r["p99_us"] for r in both),
                        "non_2xx": sum(r["non_2xx"] for r in both),
                        "socket_errors": sum(r["socket_errors"] for r in both),
                    }
                )
            errors = sum(s.server_errors() for s in servers)
        finally:
            for server in servers:
                server.stop()
        facts["two_processes"] = {**median_runs(totals), "server_errors": errors}

    # GET /events: 200 subscribers while 64 clients record turns, on each engine.
    facts["events"] = {}
    for engine in ("sqlite", "postgres"):
        if engine == "postgres" and pg_version is None:
            continue
        measured: dict[str, Any] = {}
        for attempt in range(2):
            store = str(work / f"events-{attempt}.db")
            if engine == "postgres":
                store = asyncio.run(postgres_schema(f"bench_events_{suffix}"))
            # A fresh port each time: one a previous server still holds fails the start.
            port += 3
            command = [sys.executable, "-m", "bench.events", engine, store, "--port", str(port)]
            if quick:
                command.append("--quick")
            ran = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            if ran.returncode == 0:
                measured = json.loads(ran.stdout)
                break
            reason = (ran.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"bench: events on {engine} failed: {reason}", file=sys.stderr)
        if measured:
            facts["events"][engine] = measured
        if engine == "postgres":
            asyncio.run(postgres_schema(f"bench_events_{suffix}", drop=True))
    print(f"bench: events done at {time.perf_counter() - started:.0f} s", file=sys.stderr)

    for engine, size_name in stores:
        if engine == "postgres":
            asyncio.run(postgres_schema(f"bench_{size_name}_{suffix}", drop=True))
    facts["machine"]["load_average_after"] = os.getloadavg()
    facts["elapsed_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(facts, indent=1))
    args.out.write_text(report.render(facts))
    print(f"bench: wrote {args.out} in {facts['elapsed_s']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
