"""A realistic 12-turn interview, in the interview engine's own shapes, replayed over HTTP."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import httpx

from src.domain.export import markdown_text, parse_json_export, read_json_export
from src.domain.merge_patch import apply_merge_patch

TURNS = 12
FORK_AT = 6
MAX_TURNS_CONFIG = {
    "max_turns": TURNS,
    "methodology": {"name": "mec", "ladder_depth": 4},
    "scorers": ["depth", "saturation", "novelty", "richness"],
    "temperature": 0.7,
}
SIGNAL_NAMES = ("emotion", "hedging", "specificity", "engagement", "contradiction", "topic_shift")


def first_state() -> dict[str, Any]:
    return {
        "methodology": "mec",
        "concept_id": "oat-milk",
        "concept_name": "Oat milk",
        "turn_count": 1,
        "coverage_score": 0.05,
        "last_strategy": "open",
        "data": {
            "mode": "exploratory",
            "velocity": {
                "surface_ewma": 0.0,
                "canonical_ewma": 0.0,
                "surface_peak": 0.0,
                "canonical_peak": 0.0,
            },
            "prev_node_counts": {"surface": 0, "canonical": 0},
            "focus_history": [{"turn": 1, "node_id": "n1", "label": "taste", "strategy": "open"}],
            "node_tracker": {
                "schema_version": 3,
                "nodes": {"n1": {"label": "taste", "visits": 1, "exhausted": False}},
                "edges": [],
            },
        },
    }


def mode_at(turn: int) -> str:
    return "exploratory" if turn < 5 else "focused" if turn < 10 else "closing"


def strategy_at(turn: int) -> str:
    return ["open", "ladder", "probe", "laddering-up", "contrast", "summarise"][turn % 6]


def state_patch(turn: int, focus_history: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "turn_count": turn,
        "coverage_score": round(min(1.0, turn / TURNS), 4),
        "last_strategy": strategy_at(turn),
        "data": {
            "mode": mode_at(turn),
            "velocity": {"surface_ewma": turn * 0.137, "canonical_ewma": turn * 0.091},
            "prev_node_counts": {"surface": turn * 3, "canonical": turn * 2},
            "focus_history": [
                *focus_history,
                {
                    "turn": turn,
                    "node_id": f"n{turn}",
                    "label": f"theme {turn}",
                    "strategy": strategy_at(turn),
                },
            ],
            "node_tracker": {
                "nodes": {
                    f"n{turn}": {"label": f"theme {turn}", "visits": 1, "exhausted": False},
                    f"n{turn - 1}": {"exhausted": True},
                },
                "edges": [[f"n{n}", f"n{n + 1}"] for n in range(1, turn)],
            },
        },
    }


def turn_record(turn: int) -> dict[str, Any]:
    return {
        "strategy": strategy_at(turn),
        "scores": {
            "depth": 0.1 * turn,
            "saturation": 1 / (turn + 1),
            "novelty": 0.95 - turn * 0.05,
            "richness": 0.333333333333,
            "strategy.ladder": -0.25,
        },
        "signals": {
            "model": "claude-haiku",
            "extraction_latency_ms": 812.5 + turn,
            "errors": [] if turn % 4 else ["signal timeout: hedging"],
            "signals": {
                name: {"value": turn % 3, "evidence": f"said in turn {turn}"}
                for name in SIGNAL_NAMES
            },
            "reasoning": f"Turn {turn}: respondent opened up about theme {turn}.",
            "scorer_details": {"depth": {"raw": turn, "weights": [0.5, 0.25, 0.25]}},
        },
        "usage": {
            "model": "claude-sonnet",
            "input_tokens": 1200 + 37 * turn,
            "output_tokens": 180 + turn,
            "cost_usd": 0.0031 * turn,
            "latency_ms": 950.25 + turn,
        },
    }


def utterances(turn: int) -> list[dict[str, Any]]:
    return [
        {
            "turn_number": turn,
            "speaker": "interviewer",
            "text": f"Question {turn}: why | does *that* matter?",
        },
        {
            "turn_number": turn,
            "speaker": "respondent",
            "text": f"# Answer {turn}\n- because it tastes better",
            "metadata": {"asr_confidence": 0.9},
        },
    ]


async def all_pages(client: httpx.AsyncClient, path: str) -> list[Any]:
    items: list[Any] = []
    while path:
        response = await client.get(path)
        assert response.status_code == 200, response.text
        items += response.json()
        link = response.links.get("next")
        path = link["url"] if link else ""
    return items


def summed_usage(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "turns": len(records),
        "input_tokens": sum(record["usage"]["input_tokens"] for record in records),
        "output_tokens": sum(record["usage"]["output_tokens"] for record in records),
        "cost_usd": sum(record["usage"]["cost_usd"] for record in records),
        "latency_ms": sum(record["usage"]["latency_ms"] for record in records),
    }


def assert_usage(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert {key: actual[key] for key in ("turns", "input_tokens", "output_tokens")} == {
        key: expected[key] for key in ("turns", "input_tokens", "output_tokens")
    }
    for key in ("cost_usd", "latency_ms"):
        assert abs(actual[key] - expected[key]) < 1e-9 * max(1.0, expected[key])


async def test_a_whole_interview_replays_over_http(client: httpx.AsyncClient) -> None:
    study_id = f"study-{uuid.uuid4()}"
    created = await client.post(
        "/sessions",
        json={
            "methodology": "mec",
            "concept_id": "oat-milk",
            "concept_name": "Oat milk",
            "study_id": study_id,
            "participant_id": "p-017",
            "labels": {"run": "synthetic-7", "model": "sonnet"},
            "config": MAX_TURNS_CONFIG,
        },
    )
    assert created.status_code == 201, created.text
    session = created.json()
    session_id = session["id"]
    assert session["config"] == MAX_TURNS_CONFIG
    written: dict[int, dict[str, Any]] = {1: session}
    changes: dict[int, tuple[str, int | None]] = {1: ("created", None)}
    records: list[dict[str, Any]] = []
    state = first_state()

    for turn in range(1, TURNS + 1):
        record = turn_record(turn)
        body: dict[str, Any] = {"utterances": utterances(turn), "record": record}
        if turn == 1:
            body["state"] = state
        else:
            patch = state_patch(turn, state["data"]["focus_history"])
            body["state_patch"] = patch
            state = apply_merge_patch(state, patch)
        response = await client.post(
            f"/sessions/{session_id}/turns",
            json=body,
            headers={"If-Match": f'"{session["version"]}"'},
        )
        assert response.status_code == 201, response.text
        session = response.json()["session"]
        assert response.json()["turn"]["record"] == record
        assert session["state"] == state
        records.append(record)
        written[session["version"]] = session
        changes[session["version"]] = ("turn", turn)
        if turn == 3:
            relabelled = await client.patch(
                f"/sessions/{session_id}",
                json={"labels": {"model": None, "reviewed": "yes"}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            assert relabelled.status_code == 200, relabelled.text
            session = relabelled.json()
            assert session["labels"] == {"run": "synthetic-7", "reviewed": "yes"}
            written[session["version"]] = session
            changes[session["version"]] = ("labels", None)

    # The session as the last write left it, read back.
    current = (await client.get(f"/sessions/{session_id}")).json()
    assert current == session
    assert current["state"]["data"]["mode"] == "closing"
    assert len(current["state"]["data"]["focus_history"]) == TURNS
    assert_usage(current["usage"], summed_usage(records))

    # The transcript, and every turn with its record, a page at a time.
    transcript = await all_pages(client, f"/sessions/{session_id}/utterances?limit=7")
    assert [(u["turn_number"], u["speaker"], u["text"]) for u in transcript] == [
        (u["turn_number"], u["speaker"], u["text"])
        for turn in range(1, TURNS + 1)
        for u in utterances(turn)
    ]
    turns = await all_pages(client, f"/sessions/{session_id}/turns?limit=5")
    assert [t["turn_number"] for t in turns] == list(range(1, TURNS + 1))
    assert [t["record"] for t in turns] == records
    turn_versions = {
        number: version for version, (kind, number) in changes.items() if kind == "turn"
    }
    assert [t["version"] for t in turns] == [turn_versions[n] for n in range(1, TURNS + 1)]
    assert all(len(t["utterances"]) == 2 for t in turns)

    # Every version, as listed and as read one by one.
    versions = await all_pages(client, f"/sessions/{session_id}/versions?limit=4")
    assert [v["version"] for v in versions] == sorted(written)
    for listed in versions:
        n = listed["version"]
        assert (listed["change"], listed["turn_number"]) == changes[n]
        assert listed["state"] == written[n]["state"]
        assert listed["labels"] == written[n]["labels"]
        assert listed["status"] == written[n]["status"]
        exact = await client.get(f"/sessions/{session_id}/versions/{n}")
        assert exact.status_code == 200
        assert exact.json() == written[n]
    assert (
        await client.get(f"/sessions/{session_id}/versions/{max(written) + 1}")
    ).status_code == 404

    # A fork at turn 6 holds exactly turns 1-6 and goes on by itself.
    forked = await client.post(
        f"/sessions/{session_id}/fork", json={"at_turn": FORK_AT, "labels": {"branch": "contrast"}}
    )
    assert forked.status_code == 201, forked.text
    fork = forked.json()
    fork_id = fork["id"]
    assert fork["version"] == 1
    assert fork["status"] == "active"
    assert fork["forked_from"] == {"session_id": session_id, "turn_number": FORK_AT}
    assert fork["labels"] == {"branch": "contrast"}
    assert (fork["study_id"], fork["participant_id"], fork["config"]) == (
        study_id,
        "p-017",
        MAX_TURNS_CONFIG,
    )
    assert fork["state"] == written[turn_versions[FORK_AT]]["state"]
    assert_usage(fork["usage"], summed_usage(records[:FORK_AT]))
    fork_turns = await all_pages(client, f"/sessions/{fork_id}/turns")
    assert [t["turn_number"] for t in fork_turns] == list(range(1, FORK_AT + 1))
    assert [t["record"] for t in fork_turns] == records[:FORK_AT]
    assert [[u["text"] for u in t["utterances"]] for t in fork_turns] == [
        [u["text"] for u in t["utterances"]] for t in turns[:FORK_AT]
    ]
    other = {**turn_record(FORK_AT + 1), "strategy": "contrast"}
    went_on = await client.post(
        f"/sessions/{fork_id}/turns",
        json={
            "utterances": utterances(FORK_AT + 1),
            "state_patch": {"last_strategy": "contrast", "data": {"mode": "focused"}},
            "record": other,
        },
    )
    assert went_on.status_code == 201, went_on.text
    assert_usage(went_on.json()["session"]["usage"], summed_usage([*records[:FORK_AT], other]))
    assert (await client.get(f"/sessions/{session_id}")).json() == session
    source_turns = await all_pages(client, f"/sessions/{session_id}/turns")
    assert source_turns[FORK_AT]["record"] == records[FORK_AT]

    # The study adds both up.
    completed = await client.post(f"/sessions/{session_id}/complete")
    assert completed.status_code == 200
    study = (await client.get(f"/studies/{study_id}")).json()
    assert study["study_id"] == study_id
    assert study["sessions"] == {"active": 1, "completed": 1}
    assert_usage(study["usage"], summed_usage([*records, *records[:FORK_AT], other]))
    in_study = await all_pages(client, f"/sessions?study_id={study_id}&status=all")
    assert {s["id"] for s in in_study} == {session_id, fork_id}

    # All three exports carry study, participant, labels, config and the turn records.
    exported = await client.get(f"/sessions/{session_id}/export?format=json")
    assert exported.status_code == 200
    document = json.loads(exported.text)
    assert document["format_version"] == 2
    back, back_utterances = parse_json_export(exported.text)
    assert back.model_dump(mode="json") == completed.json()
    assert len(back_utterances) == 2 * TURNS
    whole = read_json_export(exported.text)
    assert [r.model_dump(mode="json", exclude={"turn_number"}) for r in whole.records] == records
    assert [r.turn_number for r in whole.records] == list(range(1, TURNS + 1))

    markdown = (await client.get(f"/sessions/{session_id}/export?format=markdown")).text
    assert study_id in markdown
    assert "p-017" in markdown
    assert "synthetic-7" in markdown
    assert '"max\\_turns":12' in markdown  # Markdown escapes the underscore
    for turn in range(1, TURNS + 1):
        assert f"Strategy: {markdown_text(strategy_at(turn))}" in markdown

    rows = list(
        csv.DictReader(
            io.StringIO((await client.get(f"/sessions/{session_id}/export?format=csv")).text)
        )
    )
    assert len(rows) == 2 * TURNS
    assert {row["study_id"] for row in rows} == {study_id}
    assert {row["participant_id"] for row in rows} == {"p-017"}
    assert json.loads(rows[0]["labels"]) == {"run": "synthetic-7", "reviewed": "yes"}
    assert json.loads(rows[0]["config"]) == MAX_TURNS_CONFIG
    assert [row["record_strategy"] for row in rows[::2]] == [
        strategy_at(t) for t in range(1, TURNS + 1)
    ]
    assert [json.loads(row["record_scores"]) for row in rows[::2]] == [r["scores"] for r in records]
