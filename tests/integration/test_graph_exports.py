"""The graph in exports: GraphML read back by networkx, REFI-QDA projects validated
against Project.xsd and read back, Markdown with quotes, and whole-study exports."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import httpx
import networkx as nx  # type: ignore[import-untyped]
import pytest

from tests.builders import NEW_SESSION_BODY
from tests.qdpx_reader import read_qdpx

ANSWERS = {
    1: "I want coffee that tastes good — « très bon » 😀 really",
    2: "It keeps me awake,\nso I can focus at work",
    3: 'Being <productive> & "calm" matters',
}
QUOTES = {  # node id: (type, label, turn, quote)
    "taste": ("attribute", "Good taste", 1, "tastes good"),
    "bon": ("attribute", "Très bon 😀", 1, "« très bon » 😀"),
    "awake": ("consequence", "Stay awake", 2, "keeps me awake"),
    "focus": ("consequence", "Focus", 2, "I can focus"),
    "productive": ("value", "Productivity", 3, '<productive> & "calm"'),
}


def span(turn: int, quote: str) -> dict[str, Any]:
    start = ANSWERS[turn].index(quote)
    return {"turn_number": turn, "speaker": "respondent", "start": start, "end": start + len(quote)}


def node(node_id: str, **extra: Any) -> dict[str, Any]:
    kind, label, turn, quote = QUOTES[node_id]
    return {"id": node_id, "type": kind, "label": label, "provenance": [span(turn, quote)], **extra}


async def interview(client: httpx.AsyncClient, study: str, participant: str) -> str:
    created = await client.post(
        "/sessions",
        json={
            **NEW_SESSION_BODY,
            "study_id": study,
            "participant_id": participant,
            "labels": {"wave": "1", "site": "lyon"},
        },
    )
    assert created.status_code == 201, created.text
    sid: str = created.json()["id"]
    graphs: dict[int, dict[str, Any]] = {
        1: {"nodes": [node("taste", properties={"note": "ü\u0085 <x>"}), node("bon")]},
        2: {
            "nodes": [node("awake", embedding=[0.1, 0.2, 0.3]), node("focus")],
            "edges": [
                {
                    "id": "e1",
                    "source": "awake",
                    "target": "focus",
                    "type": "leads_to",
                    "properties": {"w": 1},
                    "provenance": [span(2, "so I can")],
                }
            ],
        },
        3: {
            "nodes": [node("productive", superseded_by="focus")],
            "edges": [
                {"id": "e2", "source": "focus", "target": "productive", "type": "leads_to"},
                {"id": "e3", "source": "taste", "target": "focus", "type": "x", "confidence": 0.5},
            ],
        },
    }
    for turn, answer in ANSWERS.items():
        recorded = await client.post(
            f"/sessions/{sid}/turns",
            json={
                "utterances": [
                    {"turn_number": turn, "speaker": "interviewer", "text": f"Why? ({turn})"},
                    {"turn_number": turn, "speaker": "respondent", "text": answer},
                ],
                "state_patch": {"turn_count": turn},
                "graph": graphs[turn],
            },
        )
        assert recorded.status_code == 201, recorded.text
    return sid


def expected_codings() -> list[tuple[tuple[str, str], str]]:
    return sorted(((kind, label), quote) for kind, label, _turn, quote in QUOTES.values())


async def test_graphml_loads_in_networkx_with_every_node_edge_and_attribute(
    client: httpx.AsyncClient,
) -> None:
    sid = await interview(client, f"study-{uuid.uuid4()}", "p1")
    response = await client.get(f"/sessions/{sid}/export", params={"format": "graphml"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/graphml+xml")
    graph = nx.read_graphml(io.BytesIO(response.content))
    stored = (await client.get(f"/sessions/{sid}/graph")).json()
    assert set(graph.nodes) == {n["id"] for n in stored["nodes"]}
    for n in stored["nodes"]:
        data = graph.nodes[n["id"]]
        assert data["type"] == n["type"] and data["label"] == n["label"]
        assert data["confidence"] == n["confidence"]
        assert json.loads(data["properties"]) == n["properties"]
        assert json.loads(data["provenance"]) == n["provenance"]
        assert (data["first_turn"], data["last_turn"]) == (n["first_turn"], n["last_turn"])
        assert data.get("superseded_by") == n["superseded_by"]
        assert (json.loads(data["embedding"]) if "embedding" in data else None) == n["embedding"]
    edges = {data["id"]: (u, v, data) for u, v, data in graph.edges(data=True)}
    assert set(edges) == {e["id"] for e in stored["edges"]}
    for e in stored["edges"]:
        u, v, data = edges[e["id"]]
        assert (u, v, data["type"], data["confidence"]) == (
            e["source"],
            e["target"],
            e["type"],
            e["confidence"],
        )
        assert json.loads(data["properties"]) == e["properties"]
        assert json.loads(data["provenance"]) == e["provenance"]


async def test_a_session_qdpx_validates_and_codes_each_quote_at_its_offsets(
    client: httpx.AsyncClient,
) -> None:
    study = f"study-{uuid.uuid4()}"
    sid = await interview(client, study, "p1")
    response = await client.get(f"/sessions/{sid}/export", params={"format": "qdpx"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    project = read_qdpx(response.content)
    assert project["codes"] == {(kind, label) for kind, label, _t, _q in QUOTES.values()}
    source = project["sources"][sid]
    assert sorted(source["codings"]) == expected_codings()
    assert source["text"].startswith("Turn 1\nInterviewer: Why? (1)\nRespondent: I want coffee")
    assert "Respondent: It keeps me awake,\nso I can focus at work\n\nTurn 3\n" in source["text"]
    assert source["variables"] == {
        "study": study,
        "participant": "p1",
        "session": sid,
        "methodology": "mec",
        "concept": NEW_SESSION_BODY["concept_name"],
        "label:site": "lyon",
        "label:wave": "1",
    }
    assert list(project["cases"]) == ["p1"]


async def test_a_study_exports_to_one_qdpx_csv_and_jsonl(client: httpx.AsyncClient) -> None:
    study = f"study-{uuid.uuid4()}"
    sids = [await interview(client, study, participant) for participant in ("p1", "p2", "p1")]
    await interview(client, f"other-{uuid.uuid4()}", "p3")
    response = await client.get(f"/studies/{study}/export", params={"format": "qdpx"})
    assert response.status_code == 200, response.text
    project = read_qdpx(response.content)
    assert set(project["sources"]) == set(sids)
    assert sum(name.startswith("Sources/") for name in project["files"]) == 3
    for sid in sids:
        assert sorted(project["sources"][sid]["codings"]) == expected_codings()
    assert sorted(project["cases"]) == ["p1", "p2"] and len(project["cases"]["p1"]) == 2
    lines = (await client.get(f"/studies/{study}/export", params={"format": "jsonl"})).text
    exported = [json.loads(line) for line in lines.splitlines()]
    assert [item["session"]["id"] for item in exported] == sids
    csv_text = (await client.get(f"/studies/{study}/export", params={"format": "csv"})).text
    rows = csv_text.splitlines()
    assert rows[0].startswith("session_id,") and sum(r.startswith("session_id,") for r in rows) == 1
    missing = await client.get(f"/studies/{uuid.uuid4()}/export", params={"format": "qdpx"})
    assert missing.status_code == 404


async def test_markdown_lists_nodes_after_the_transcript_with_their_quotes(
    client: httpx.AsyncClient,
) -> None:
    sid = await interview(client, f"study-{uuid.uuid4()}", "p1")
    text = (await client.get(f"/sessions/{sid}/export", params={"format": "markdown"})).text
    transcript_end = text.index("### Turn 3")
    graph = text[text.index("## Graph") :]
    assert text.index("## Graph") > transcript_end
    assert "**Productivity** (value; id productive" in graph
    assert "superseded by focus" in graph
    assert '“\\<productive\\> \\& "calm"”' in graph
    assert "“keeps me awake”" in graph


@pytest.mark.parametrize("backend", ["sqlite_backend"], indirect=True)
async def test_export_formats_of_a_session_without_graph_still_work(
    client: httpx.AsyncClient,
) -> None:
    sid = (await client.post("/sessions", json=NEW_SESSION_BODY)).json()["id"]
    for export_format in ("graphml", "qdpx", "markdown"):
        response = await client.get(f"/sessions/{sid}/export", params={"format": export_format})
        assert response.status_code == 200
    assert (
        nx.read_graphml(
            io.BytesIO(
                (await client.get(f"/sessions/{sid}/export", params={"format": "graphml"})).content
            )
        ).number_of_nodes()
        == 0
    )
