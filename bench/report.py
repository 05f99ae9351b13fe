"""docs/benchmarks.md from one run's figures."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from bench.stores import UTTERANCES_PER_SESSION

OPERATIONS = ("create", "get", "update_state", "list_page", "transition", "delete", "turn")
WRITE_OPERATIONS = ("create", "update_state", "transition", "delete", "turn")
TURN_LABEL = "a turn: 2 utterances, a 4 KiB state patch and a record, in one transaction"
MIX_LABEL = "45% get, 45% update_state, 8% create, 2% list page"


def _n(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def _pair(stats: dict[str, float] | None) -> str:
    return f"{_n(stats['p50_us'])} / {_n(stats['p99_us'])}" if stats else "n/a"


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def _targets(facts: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    repo = facts["repository"]
    ours, plain = repo.get("sqlite@small", {}), repo.get("plain-sqlite3@small", {})
    # Each operation's ratio from the paired run (call by call in one process), when there.
    ours_paired = repo.get("paired sqlite@small", ours)
    plain_paired = repo.get("paired plain-sqlite3@small", plain)
    rows = _p50_ratio_targets(
        ours_paired,
        plain_paired,
        "{operation} p50 vs plain sqlite3",
        lambda operation: 1.5 if operation in WRITE_OPERATIONS else 5.0,
    )
    spec = repo.get("per-operation@small", {})
    for operation, limit in (("get", 10.0), ("create", 5.0)):
        if operation in spec and operation in ours:
            speedup = spec[operation]["p50_us"] / ours[operation]["p50_us"]
            rows.append(
                (
                    f"{operation} p50 speed-up vs connection-per-operation",
                    f"{speedup:.1f}x",
                    f">= {limit}x",
                    speedup >= limit,
                )
            )
    if "concurrent_mix" in ours and "sequential_mix" in plain:
        ratio = ours["concurrent_mix"]["ops_per_s"] / plain["sequential_mix"]["ops_per_s"]
        rows.append(
            (
                "64 tasks' throughput vs plain sqlite3 sequential",
                f"{ratio:.2f}x",
                ">= 1.5x",
                ratio >= 1.5,
            )
        )
    if "concurrent_turns" in ours and "sequential_turns" in plain:
        ratio = ours["concurrent_turns"]["ops_per_s"] / plain["sequential_turns"]["ops_per_s"]
        rows.append(
            (
                "64 interviews' turns/s vs plain sqlite3 sequential turns",
                f"{ratio:.2f}x",
                ">= 1.5x",
                ratio >= 1.5,
            )
        )
    for operation in ("turn", "update_state"):
        with_it = plain.get(f"{operation}_with_history")
        without = plain.get(f"{operation}_without_history")
        if with_it and without:
            ratio = with_it["p50_us"] / without["p50_us"]
            rows.append(
                (
                    f"{operation} p50 with history vs without (plain sqlite3, same SQL)",
                    f"{ratio:.2f}x",
                    "<= 1.2x",
                    ratio <= 1.2,
                )
            )
    large = repo.get("sqlite@large", {})
    if "get" in large and "get" in ours:
        ratio = large["get"]["p50_us"] / ours["get"]["p50_us"]
        rows.append(
            ("get p50 at the large store vs 1,000", f"{ratio:.2f}x", "<= 1.5x", ratio <= 1.5)
        )
    if "list_page" in large:
        p99 = large["list_page"]["p99_us"] / 1000
        rows.append(("list page p99 at the large store", f"{p99:.2f} ms", "< 2 ms", p99 < 2))
    served = facts["http"]
    small, big = served.get("sqlite@small"), served.get("sqlite@large")
    if small and big:
        growth = big["peak_rss_mib"] - small["peak_rss_mib"]
        rows.append(
            ("server RSS, large store minus 1,000", f"{growth:+.1f} MiB", "<= 20 MiB", growth <= 20)
        )
        rows.append(
            (
                "server start-up at the large store",
                f"{big['startup_s']:.2f} s",
                "< 1 s",
                big["startup_s"] < 1,
            )
        )
    if small:
        scenarios = small["scenarios"]
        for connections in (16, 64):
            get, floor = scenarios.get(f"get@{connections}"), scenarios.get(f"floor@{connections}")
            if get and floor:
                ratio = get["req_per_s"] / floor["req_per_s"]
                rows.append(
                    (
                        f"HTTP GET by id vs framework floor, {connections} connections",
                        f"{ratio:.2f}x",
                        ">= 0.8x",
                        ratio >= 0.8,
                    )
                )
        for scenario, label in (("create", "create"), ("turn", "whole turn")):
            run = scenarios.get(f"{scenario}@64")
            if run:
                p99 = run["p99_us"] / 1000
                rows.append(
                    (f"HTTP {label} p99, 64 connections", f"{p99:.1f} ms", "< 50 ms", p99 < 50)
                )
    failures = 0.0
    for run in served.values():
        failures += run["server_errors"]
        failures += sum(s["non_2xx"] + s["socket_errors"] for s in run["scenarios"].values())
    rows.append(
        ("non-2xx, socket and server errors, every scenario", _n(failures), "0", failures == 0)
    )
    export = facts.get("export", {}).get("runs", {})
    if "json@short" in export and "json@long" in export:
        worst = max(
            export[f"{f}@long"]["peak_rss_mib"] / export[f"{f}@short"]["peak_rss_mib"]
            for f in ("json", "markdown", "csv")
            if f"{f}@long" in export and f"{f}@short" in export
        )
        rows.append(
            (
                "export peak RSS, 3x the utterances vs 1x (worst format)",
                f"{worst:.2f}x",
                "<= 1.1x",
                worst <= 1.1,
            )
        )
    rows += _postgres_targets(repo)
    rows += _event_targets(facts.get("events", {}))
    rows += _graph_targets(facts.get("graph"))
    return rows


def _p50_ratio_targets(
    ours: dict[str, Any], base: dict[str, Any], name: str, limit: Callable[[str], float]
) -> list[tuple[str, str, str, bool]]:
    """Each operation's p50 against the baseline's, held to `limit(operation)`."""
    rows = []
    for operation in OPERATIONS:
        if operation in ours and operation in base:
            ratio = ours[operation]["p50_us"] / base[operation]["p50_us"]
            most = limit(operation)
            rows.append(
                (name.format(operation=operation), f"{ratio:.2f}x", f"<= {most}x", ratio <= most)
            )
    return rows


def _postgres_targets(repo: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    ours, plain = repo.get("postgres@small", {}), repo.get("plain-asyncpg@small", {})
    rows = _p50_ratio_targets(
        ours, plain, "PostgreSQL {operation} p50 vs plain asyncpg", lambda _: 1.3
    )
    if "concurrent_mix" in ours and "concurrent_mix" in plain:
        ratio = plain["concurrent_mix"]["ops_per_s"] / ours["concurrent_mix"]["ops_per_s"]
        rows.append(
            (
                "PostgreSQL 64 tasks' mix: plain asyncpg's throughput vs ours",
                f"{ratio:.2f}x",
                "<= 1.3x",
                ratio <= 1.3,
            )
        )
    return rows


def _versus_rows(ours: dict[str, Any], base: dict[str, Any], header: str) -> list[str]:
    """A table of each operation's p50 / p99 here and in the baseline, and their ratio."""
    lines = [header, "|---|---|---|---|"]
    for operation in OPERATIONS:
        if operation in ours and operation in base:
            ratio = ours[operation]["p50_us"] / base[operation]["p50_us"]
            lines.append(
                f"| {operation} | {_pair(ours[operation])} | {_pair(base[operation])}"
                f" | {ratio:.2f}x |"
            )
    return lines


def _paired_table(facts: dict[str, Any]) -> list[str]:
    repo = facts["repository"]
    ours, plain = repo.get("paired sqlite@small"), repo.get("paired plain-sqlite3@small")
    if not ours or not plain:
        return []
    return [
        "### Call by call against plain sqlite3, 1,000 sessions",
        "",
        "The runs above measure each target in a process of its own, one after another, so"
        " the disk's and the machine's drift between them falls into their ratio. Here both"
        " run in one process, call by call in turn (each first as often), plain sqlite3 on a"
        " copy of the store so that neither writer empties the other's cache; the targets"
        " take their per-operation ratios from this run.",
        "",
        *_versus_rows(
            ours,
            plain,
            "| operation | SessionRepository p50 / p99 µs | plain sqlite3 p50 / p99 µs"
            " | ratio (p50) |",
        ),
    ]


def _postgres_table(facts: dict[str, Any]) -> list[str]:
    repo = facts["repository"]
    ours, plain = repo.get("postgres@small"), repo.get("plain-asyncpg@small")
    if not ours or not plain:
        return []
    lines = [
        "### PostgreSQL against plain asyncpg, 1,000 sessions",
        "",
        "*plain asyncpg* runs the repository's statements for each call, in the same order"
        " and with the same values, on a pool made as the repository makes its own (10"
        " connections), a write in one transaction, with no model built from the rows.",
        "",
        *_versus_rows(
            ours,
            plain,
            "| operation | PostgreSQL repository p50 / p99 µs | plain asyncpg p50 / p99 µs"
            " | ratio (p50) |",
        ),
    ]
    lines += ["", "| 64 tasks at once | ops/s | p50 µs | p99 µs |", "|---|---|---|---|"]
    for label, source in (("PostgreSQL repository", ours), ("plain asyncpg", plain)):
        for key, what in (("concurrent_mix", f"mix ({MIX_LABEL})"), ("concurrent_turns", "turns")):
            if key in source:
                run = source[key]
                lines.append(
                    f"| {label}, {what} | {_n(run['ops_per_s'])} | {_n(run['p50_us'])}"
                    f" | {_n(run['p99_us'])} |"
                )
    return lines


def _event_targets(events: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """GET /events: 200 subscribers while 64 clients record turns (bench/events.py)."""
    rows: list[tuple[str, str, str, bool]] = []
    for engine, limit, where in (("sqlite", 100, "one server"), ("postgres", 250, "two servers")):
        if engine not in events:
            continue
        measured = events[engine]
        p99 = measured["delivery_p99_ms"]
        ratio = measured["throughput_ratio"]
        rows.append(
            (
                f"{engine}: write-to-delivery p99, {where}",
                f"{p99:.0f} ms",
                f"< {limit} ms",
                p99 < limit,
            )
        )
        rows.append(
            (
                f"{engine}: writes/s with 200 subscribers vs none",
                f"{ratio:.2f}x",
                ">= 0.9x",
                ratio >= 0.9,
            )
        )
    return rows


def _graph_targets(graph: dict[str, Any] | None) -> list[tuple[str, str, str, bool]]:
    if not graph:
        return []
    turn = graph["turn_with_graph"]["ratio_p50"]
    rows = graph["turn_with_graph"]["ratio_rows_p50"]
    as_of = graph["sqlite"]["as_of"]["p99_ms"]
    nearest = graph["sqlite"]["nearest_10"]["p99_ms"]
    return [
        (
            "whole turn with a 5-node, 4-edge graph change, p50 vs plain sqlite3's same statements",
            f"{turn:.2f}x",
            "<= 1.5x",
            turn <= 1.5,
        ),
        (
            "the same turn, p50 vs plain sqlite3 writing its rows alone",
            f"{rows:.2f}x",
            "<= 1.5x",
            rows <= 1.5,
        ),
        (
            "as_of_turn read of a 2,000-node graph, p99 (SQLite)",
            f"{as_of:.1f} ms",
            "< 20 ms",
            as_of < 20,
        ),
        (
            "nearest 10 over 2,000 384-dim embeddings, p99 (SQLite)",
            f"{nearest:.1f} ms",
            "< 10 ms",
            nearest < 10,
        ),
    ]


def _graph_table(graph: dict[str, Any]) -> list[str]:
    turn = graph["turn_with_graph"]
    lines = [
        "## Conversation graph",
        "",
        f"`bench.graph`: {graph['turns']:.0f} whole turns, each with two utterances, a 4 KiB"
        " state patch, a record and a graph change of 5 nodes and 4 edges, through the"
        " repository and, interleaved, by plain sqlite3 in one transaction, twice: running the"
        " repository's statements for it, the graph's checks included (`bench.plain`), and"
        " writing its rows alone; each on a store of its own; then"
        f" {graph['queries']:.0f} `as_of_turn` reads of a 2,000-node graph built over 20 turns"
        " and nearest-10 queries over 2,000 384-dimensional embeddings (the embeddings of"
        " the graphs searched last are kept in memory, keyed by the session's version, so"
        " the first query after a change reads them again; its figure is given apart).",
        "",
        "| measure | p50 ms | p99 ms |",
        "|---|---|---|",
        f"| turn with graph change, repository | {_n(turn['repository']['p50_ms'], 2)} |"
        f" {_n(turn['repository']['p99_ms'], 2)} |",
        f"| the same statements, plain sqlite3 | {_n(turn['plain_sqlite3']['p50_ms'], 2)} |"
        f" {_n(turn['plain_sqlite3']['p99_ms'], 2)} |",
        f"| its rows alone, plain sqlite3 | {_n(turn['plain_rows']['p50_ms'], 2)} |"
        f" {_n(turn['plain_rows']['p99_ms'], 2)} |",
    ]
    for engine in ("sqlite", "postgres"):
        if engine in graph:
            for name, label in (
                ("as_of", "as_of_turn, 2,000 nodes"),
                ("nearest_10", "nearest 10"),
                ("nearest_10_after_change", "nearest 10, first query after a change"),
            ):
                run = graph[engine].get(name)
                if run is None:
                    continue
                lines.append(
                    f"| {label}, {engine} | {_n(run['p50_ms'], 2)} | {_n(run['p99_ms'], 2)} |"
                )
    return lines


def _repository_table(facts: dict[str, Any], size_name: str) -> list[str]:
    repo = facts["repository"]
    ours = repo.get(f"sqlite@{size_name}", {})
    plain = repo.get(f"plain-sqlite3@{size_name}", {})
    spec = repo.get(f"per-operation@{size_name}", {})
    postgres = repo.get(f"postgres@{size_name}", {})
    lines = [
        "| operation | SessionRepository p50 / p99 µs | ops/s | plain sqlite3 p50 / p99 µs |"
        " ratio (p50), separate runs | connection-per-operation p50 µs | speed-up"
        " | PostgreSQL p50 / p99 µs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for operation in OPERATIONS:
        if operation not in ours:
            continue
        mine, base = ours[operation], plain.get(operation)
        sketch, pg = spec.get(operation), postgres.get(operation)
        cells = [
            operation,
            _pair(mine),
            _n(mine["ops_per_s"]),
            _pair(base),
            f"{mine['p50_us'] / base['p50_us']:.2f}x" if base else "n/a",
            _n(sketch["p50_us"]) if sketch else "n/a",
            f"{sketch['p50_us'] / mine['p50_us']:.1f}x" if sketch else "n/a",
            _pair(pg),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"| mix ({MIX_LABEL}) | ops/s | p50 µs | p99 µs | failed calls |")
    lines.append("|---|---|---|---|---|")
    for label, source, key in (
        ("SessionRepository, 64 concurrent tasks", ours, "concurrent_mix"),
        ("plain sqlite3, one call at a time", plain, "sequential_mix"),
        ("connection-per-operation, 64 concurrent tasks", spec, "concurrent_mix"),
        ("PostgreSQL repository, 64 concurrent tasks", postgres, "concurrent_mix"),
    ):
        if key in source:
            mix = source[key]
            lines.append(
                f"| {label} | {_n(mix['ops_per_s'])} | {_n(mix['p50_us'])} | {_n(mix['p99_us'])}"
                f" | {_n(mix.get('failed', 0.0))} |"
            )
    lines += ["", f"| {TURN_LABEL} | turns/s | p50 µs | p99 µs |", "|---|---|---|---|"]
    for label, source, key in (
        ("SessionRepository, 64 interviews at once", ours, "concurrent_turns"),
        ("plain sqlite3, one turn at a time", plain, "sequential_turns"),
        ("plain sqlite3, turn by turn with the history row", plain, "turn_with_history"),
        ("plain sqlite3, the same without the history row", plain, "turn_without_history"),
        ("PostgreSQL repository, 64 interviews at once", postgres, "concurrent_turns"),
    ):
        if key in source:
            run = source[key]
            lines.append(
                f"| {label} | {_n(run['ops_per_s'])} | {_n(run['p50_us'])} | {_n(run['p99_us'])} |"
            )
    normal = repo.get(f"sqlite-normal@{size_name}")
    if normal:
        lines += [
            "",
            "With `DATABASE_SYNCHRONOUS=normal` (no fsync per commit in WAL mode):",
            "",
            "| operation | p50 / p99 µs, normal | p50 / p99 µs, full (default) | full / normal |",
            "|---|---|---|---|",
        ]
        for operation in (*WRITE_OPERATIONS, "concurrent_mix"):
            if operation in normal and operation in ours:
                ratio = ours[operation]["p50_us"] / normal[operation]["p50_us"]
                lines.append(
                    f"| {operation} | {_pair(normal[operation])} | {_pair(ours[operation])}"
                    f" | {ratio:.1f}x |"
                )
    lines.append("")
    rss = [
        f"{name}: {_n(repo[f'{name}@{size_name}']['peak_rss_mib'], 1)} MiB"
        for name in ("sqlite", "plain-sqlite3", "per-operation", "postgres")
        if f"{name}@{size_name}" in repo
    ]
    lines.append("Peak RSS of each measuring process: " + ", ".join(rss) + ".")
    return lines


def _http_table(run: dict[str, Any]) -> list[str]:
    lines = [
        "| scenario | connections | req/s | p50 ms | p99 ms | non-2xx | socket errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, values in run["scenarios"].items():
        scenario, connections = key.split("@")
        lines.append(
            f"| {scenario} | {connections} | {_n(values['req_per_s'])}"
            f" | {_n(values['p50_us'] / 1000, 2)} | {_n(values['p99_us'] / 1000, 2)}"
            f" | {_n(values['non_2xx'])} | {_n(values['socket_errors'])} |"
        )
    lines.append("")
    lines.append(
        f"Server start-up (process start to first healthy answer): {run['startup_s']:.2f} s;"
        f" peak server RSS: {run['peak_rss_mib']:.1f} MiB;"
        f" server errors in its log: {run['server_errors']}."
    )
    return lines


def _export_table(export: dict[str, Any]) -> list[str]:
    lengths = export["utterances"]
    rows = [
        "## Export",
        "",
        "One completed session exported with `interview-system export`'s code to `/dev/null`,"
        " each run in a process of its own; peak RSS is the process's VmHWM. The reader"
        " connection's page cache (8 MiB at most) fills as the transcript is read, so the"
        " peak grows until the cache is full and then stays flat.",
        "",
        "| format | utterances | time (s) | utterances/s | peak RSS (MiB) |",
        "|---|---|---|---|---|",
    ]
    for key, run in export["runs"].items():
        export_format, length = key.split("@")
        count = lengths[length]
        rows.append(
            f"| {export_format} | {count:,} | {_n(run['elapsed_s'], 2)} |"
            f" {_n(count / run['elapsed_s'])} | {_n(run['peak_rss_mib'], 1)} |"
        )
    return rows


def _scale_targets(scale: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """A transcript page and a search on the large store (bench/scale.py)."""
    large = scale.get("large")
    if not large:
        return []
    return [
        (
            f"{name} p99 at the large store",
            f"{figures['p99_ms']:.2f} ms",
            "< 20 ms",
            figures["p99_ms"] < 20,
        )
        for name, figures in (
            ("transcript page", large["transcript_page"]),
            ("search (the mix, first page)", large["search"]["mix"]),
        )
    ]


def _scale_lines(scale: dict[str, Any], large: str) -> list[str]:
    sizes = {"small": "1,000", "large": large}
    lines = [
        "## Reads at scale",
        "",
        "`bench.scale`, on the SQLite stores of the repository's figures, where each session"
        f" holds {UTTERANCES_PER_SESSION} utterances (two a turn) of the made-up speech of"
        " `bench.search`:"
        f" a transcript page (`list_utterances`, {UTTERANCES_PER_SESSION} utterances) of a"
        " random session, and the first page of"
        " each search of `bench.search`, in a shuffled order.",
        "",
        "| sessions | utterances | transcript page p50 / p99 ms | search, the mix, p50 / p99 ms"
        " | search, word 1%, p50 / p99 ms |",
        "|---|---|---|---|---|",
    ]
    for size_name, run in scale.items():
        sessions = sizes[size_name]
        utterances = f"{int(sessions.replace(',', '')) * UTTERANCES_PER_SESSION:,}"
        page, mix = run["transcript_page"], run["search"]["mix"]
        word = run["search"]["kinds"]["word 1%"]
        lines.append(
            f"| {sessions} | {utterances} | {_n(page['p50_ms'], 2)} / {_n(page['p99_ms'], 2)}"
            f" | {_n(mix['p50_ms'], 1)} / {_n(mix['p99_ms'], 1)}"
            f" | {_n(word['p50_ms'], 1)} / {_n(word['p99_ms'], 1)} |"
        )
    return [*lines, ""]


def _search_targets(search: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """Search over 1,000,000 utterances (bench/search.py)."""
    rows: list[tuple[str, str, str, bool]] = []
    for engine, name, limit in (("sqlite", "SQLite", 20), ("postgres", "PostgreSQL", 50)):
        if engine in search:
            run = search[engine]
            p99 = run["mix"]["p99_ms"]
            rows.append(
                (
                    f"search p99, first page, the mix over {run['utterances']:,.0f}"
                    f" utterances ({name})",
                    f"{p99:.1f} ms",
                    f"< {limit} ms",
                    p99 < limit,
                )
            )
    turn = search.get("sqlite", {}).get("turn")
    if turn:
        ratio = turn["with_search"]["p50_us"] / turn["without_search"]["p50_us"]
        rows.append(
            (
                "turn p50 with the search index vs without (plain sqlite3, same SQL)",
                f"{ratio:.2f}x",
                "<= 1.25x",
                ratio <= 1.25,
            )
        )
    return rows


def _search_lines(search: dict[str, Any]) -> list[str]:
    engines = [engine for engine in ("sqlite", "postgres") if engine in search]
    run = search[engines[0]]
    lines = [
        "## Search",
        "",
        f"`bench.search`: {run['utterances']:,.0f} utterances in sessions of 40 turns spread"
        " over 50 studies, loaded in bulk through the schema's own index upkeep (SQLite's"
        " triggers, PostgreSQL's generated column), built in "
        + " and ".join(f"{search[engine]['build_s']:.0f} s ({engine})" for engine in engines)
        + ". Each utterance is 12 words drawn from 20,000 made-up ones with Zipf frequencies,"
        " as speech has them. Each query is the first page (50 hits) of the repository's"
        " `search`, the call behind `GET /search`; each kind is 8 queries of about the same"
        " frequency, the study filter a study of 1/50th of the sessions, all of them run"
        " in a shuffled order. *hits* is how many utterances a query matches in all (the"
        " median of the kind). The mix is every kind but the 10% word.",
        "",
        "| query | hits | " + " | ".join(f"{engine} p50 / p99 ms" for engine in engines) + " |",
        "|---|---|" + "---|" * len(engines),
    ]
    for kind, measured in run["kinds"].items():
        cells = [kind, _n(measured["hits"])]
        for engine in engines:
            each = search[engine]["kinds"][kind]
            cells.append(f"{_n(each['p50_ms'], 1)} / {_n(each['p99_ms'], 1)}")
        lines.append("| " + " | ".join(cells) + " |")
    mix = [
        f"{_n(search[e]['mix']['p50_ms'], 1)} / {_n(search[e]['mix']['p99_ms'], 1)}"
        for e in engines
    ]
    lines.append("| **the mix** | | " + " | ".join(mix) + " |")
    turn = run.get("turn")
    if turn:
        lines += [
            "",
            "A turn (2 utterances, a 4 KiB state patch and a record, in one transaction)"
            " written with plain sqlite3, on this store and on a copy of it"
            " without the search index's insert trigger, calls interleaved: p50 / p99"
            f" {_n(turn['with_search']['p50_us'])} / {_n(turn['with_search']['p99_us'])} µs"
            " with the index's upkeep,"
            f" {_n(turn['without_search']['p50_us'])} / {_n(turn['without_search']['p99_us'])}"
            " µs without.",
        ]
    return [*lines, ""]


def _study_export_targets(study: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """A whole study's export (bench/study_export.py): flat memory in the number of sessions."""
    runs = study.get("runs", {})
    sizes = study.get("sessions", {})
    rows: list[tuple[str, str, str, bool]] = []
    for label, formats in (("qdpx", ("qdpx",)), ("csv and jsonl, the worse", ("csv", "jsonl"))):
        ratios = [
            runs[f"{f}@large"]["peak_rss_mib"] / runs[f"{f}@small"]["peak_rss_mib"]
            for f in formats
            if f"{f}@large" in runs and f"{f}@small" in runs
        ]
        if ratios:
            worst = max(ratios)
            rows.append(
                (
                    f"study export peak RSS, {sizes['large']:,} sessions vs {sizes['small']:,}"
                    f" ({label})",
                    f"{worst:.2f}x",
                    "<= 1.1x",
                    worst <= 1.1,
                )
            )
    return rows


def _study_export_table(study: dict[str, Any]) -> list[str]:
    sizes = study["sessions"]
    rows = [
        "## Study export",
        "",
        "`bench.study_export`: a study whose sessions each hold 20 turns (two utterances, a"
        " record and a graph change of 3 nodes and 2 edges citing the answer, so 60 codings"
        " a session in the qdpx project); one session recorded through the repository, its"
        " rows copied in bulk for the others, each with a participant of its own and one"
        " node label in three its own (the code book grows with the study). The whole study"
        " exported with `export_study_to` (the code behind `interview-system export --study`"
        " and `GET /studies/{id}/export`) to `/dev/null`, each run in a process of its own;"
        " peak RSS is the process's VmHWM. The store's two reading connections keep page"
        " caches (the reader's of up to 8 MiB, the inline reader's of up to 2 MiB) that"
        " fill as the export reads more of the store: the peak grows until both are full.",
        "",
        "| format | sessions | time (s) | sessions/s | MiB written | peak RSS (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for key, run in study["runs"].items():
        export_format, size = key.split("@")
        count = sizes[size]
        rows.append(
            f"| {export_format} | {count:,} | {_n(run['elapsed_s'], 2)} |"
            f" {_n(count / run['elapsed_s'])} | {_n(run['mib_written'], 1)} |"
            f" {_n(run['peak_rss_mib'], 1)} |"
        )
    return rows


def _erasure_targets(facts: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    return [
        (
            f"erasure of 50 sessions of 40 turns, {engine}",
            f"{run['total_s'] * 1000:.0f} ms",
            "< 1000 ms",
            run["total_s"] < 1.0,
        )
        for engine, run in facts.get("erasure", {}).items()
    ]


def _erasure_lines(facts: dict[str, Any]) -> list[str]:
    lines = ["## Erasure", ""]
    for engine, run in facts.get("erasure", {}).items():
        parts = ""
        if "purge_s" in run:
            parts = (
                f" (the transaction {run['transaction_s'] * 1000:.0f} ms; merging the search"
                f" index and checkpointing the log after it {run['purge_s'] * 1000:.0f} ms)"
            )
        lines.append(
            f"- {engine}: a participant with 50 sessions of 40 turns (4,000 utterances, 2,000"
            f" records, their history and state) among {run['background_utterances']:,} other"
            f" utterances, erased in {run['total_s'] * 1000:.0f} ms{parts}."
        )
    return [*lines, ""]


def _event_lines(events: dict[str, Any]) -> list[str]:
    lines = [
        "## Events",
        "",
        "`bench.events`: 64 clients record turns as fast as the server answers (each on a"
        " keep-alive connection of its own, written and read raw, so that the client's cost"
        " stays small beside the server's), first with no subscriber, then with 200 streams"
        " on `GET /events` (190 read and discarded, 10 timed), in 5 alternating rounds of"
        " 4 s. The servers run on core 0, every client on core 1. On PostgreSQL the writes"
        " go to one server and the subscribers listen on a second one, so every event"
        " crosses servers by LISTEN/NOTIFY. The ratio is the median of the rounds' ratios;"
        " delivery is from a write's answer to a timed subscriber reading its event.",
        "",
        "| engine | turns/s, none | turns/s, 200 streams | ratio (rounds)"
        " | delivery p50 / p99 ms |",
        "|---|---|---|---|---|",
    ]
    for engine, run in events.items():
        rounds = ", ".join(f"{ratio:.2f}" for ratio in run.get("throughput_ratios", []))
        lines.append(
            f"| {engine} | {_n(run['writes_per_s_without'])} | {_n(run['writes_per_s_with'])}"
            f" | {run['throughput_ratio']:.2f}x ({rounds}) | {run['delivery_p50_ms']:.1f} /"
            f" {run['delivery_p99_ms']:.1f} |"
        )
    return [*lines, ""]


def render(facts: dict[str, Any]) -> str:
    m = facts["machine"]
    large = "1,000,000" if not facts["quick"] else "20,000"
    out = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (`python -m bench`) in one run; every figure is the median of"
        f" {facts['repetitions']} repetitions, with the targets measured against baselines"
        " from the same run, repetitions interleaved so that the machine's noise falls on all.",
        "",
    ]
    if facts["quick"]:
        out += ["**Quick run (`--quick`): small stores and short runs; not figures to quote.**", ""]
    out += [
        f"Machine: {m['cores']} cores, {m['cpu']}; Python {m['python']}; SQLite {m['sqlite']};"
        f" PostgreSQL {m.get('postgres') or 'not reachable'}; load average"
        f" {', '.join(f'{x:.2f}' for x in m['load_average'])} at the start and"
        f" {', '.join(f'{x:.2f}' for x in m['load_average_after'])} at the end; {m['date']};"
        f" the whole run took {facts['elapsed_s'] / 60:.1f} minutes.",
        "",
        "## Targets",
        "",
        "| target | measured | limit | |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {name} | {value} | {limit} | {_verdict(met)} |"
        for name, value, limit, met in _targets(facts)
        + _erasure_targets(facts)
        + _search_targets(facts.get("search", {}))
        + _scale_targets(facts.get("scale", {}))
        + _study_export_targets(facts.get("study_export", {}))
    ]
    out += [
        "",
        "## Repository",
        "",
        "Sequential calls, one at a time, on stores loaded in bulk (one `executemany`"
        " transaction for SQLite, `COPY` for PostgreSQL; "
        + ", ".join(f"{k}: {v:.0f} s" for k, v in facts["loads_s"].items())
        + "). Every write is durable: WAL with `synchronous=FULL` on SQLite, the default"
        " `synchronous_commit=on` on PostgreSQL. *plain sqlite3* is the in-process limit:"
        " one long-lived `sqlite3` connection, the same schema, PRAGMAs and statements (every"
        " write's history row and event included), one transaction per operation, rows"
        " returned as they come with no model built."
        " *connection-per-operation* is the spec's sketch as written (a new aiosqlite"
        " connection, so a new thread, per call) plus the commit it lacks; its list reads"
        " every active session, as the sketch's `list_active` does. List pages start from"
        " random keys deep in the listing.",
        "",
        "### 1,000 sessions",
        "",
        *_repository_table(facts, "small"),
        "",
        *_paired_table(facts),
        "",
        f"### {large} sessions",
        "",
        *_repository_table(facts, "large"),
        "",
        *_postgres_table(facts),
        "",
        "## HTTP",
        "",
        "The real server process (`bench.server`: the app exactly as `interview-system serve`"
        " runs it, asyncio and httptools, plus a `/bench/floor` route answering a fixed session"
        " body without touching the database) pinned to core 0; wrk (one thread, Lua scripts in"
        " `bench/wrk/`) pinned to core 1; each run"
        f" {2 if facts['quick'] else 10} s. *mix* is 80% GET by id, 15% state update, 5% create;"
        " *turn* records a whole turn (two utterances, a 4 KiB state patch and a record) on a"
        " random session.",
        "",
    ]
    if "export" in facts:
        out += [*_export_table(facts["export"]), ""]
    if "study_export" in facts:
        out += [*_study_export_table(facts["study_export"]), ""]
    if facts.get("graph"):
        out += [*_graph_table(facts["graph"]), ""]
    for name, run in facts["http"].items():
        engine, size_name = name.split("@")
        size = "1,000" if size_name == "small" else large
        out += [f"### {engine}, {size} sessions", "", *_http_table(run), ""]
    pair = facts.get("two_processes")
    if pair:
        out += [
            "### Two API processes on one PostgreSQL database",
            "",
            "Both servers on core 0, two wrk processes (32 connections each, the mix) on core 1:"
            f" {_n(pair['req_per_s'])} req/s in all, worst p99 {_n(pair['p99_us'] / 1000, 2)} ms,"
            f" {_n(pair['non_2xx'])} non-2xx, {_n(pair['socket_errors'])} socket errors,"
            f" {pair['server_errors']} server errors. With two cores for everything, this shows"
            " that the processes share one store correctly under load, not how they scale.",
            "",
        ]
    if facts.get("events"):
        out += _event_lines(facts["events"])
    out += _erasure_lines(facts)
    if facts.get("search"):
        out += _search_lines(facts["search"])
    if facts.get("scale"):
        out += _scale_lines(facts["scale"], large)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    # Re-render a report from the JSON a run left beside it.
    import json
    import sys
    from pathlib import Path

    source = Path(sys.argv[1])
    source.with_suffix(".md").write_text(render(json.loads(source.read_text())))
