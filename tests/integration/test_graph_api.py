"""The conversation graph over HTTP: changes in a turn and on their own, reads, refusals."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.builders import NEW_SESSION_BODY

PROBLEM = "application/problem+json"


async def create(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/sessions", json=NEW_SESSION_BODY)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def said(turn: int) -> list[dict[str, Any]]:
    return [
        {"turn_number": turn, "speaker": "interviewer", "text": f"Why {turn}?"},
        {"turn_number": turn, "speaker": "respondent", "text": f"Because of taste {turn}"},
    ]


def node(node_id: str, turn: int, **fields: Any) -> dict[str, Any]:
    span = {"turn_number": turn, "speaker": "respondent", "start": 11, "end": 16}
    return {"id": node_id, "type": "attribute", "label": node_id, "provenance": [span], **fields}


async def turn(
    client: httpx.AsyncClient, session_id: str, number: int, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/sessions/{session_id}/turns",
        json={"utterances": said(number), "state_patch": {"turn_count": number}, **body},
    )


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    return body


async def test_a_turn_stores_its_graph_and_as_of_turn_reads_it_back(
    client: httpx.AsyncClient,
) -> None:
    session = await create(client)
    sid = session["id"]
    recorded = await turn(client, sid, 1, graph={"nodes": [node("taste", 1)]})
    assert recorded.status_code == 201, recorded.text
    second = await turn(
        client,
        sid,
        2,
        graph={
            "nodes": [
                node("awake", 2, embedding=[1.0, 0.0]),
                node("taste", 2, embedding=[0.6, 0.8]),
            ],
            "edges": [{"id": "e", "source": "awake", "target": "taste", "type": "leads_to"}],
        },
    )
    assert second.status_code == 201, second.text
    first = (await client.get(f"/sessions/{sid}/graph", params={"as_of_turn": 1})).json()
    assert [n["id"] for n in first["nodes"]] == ["taste"] and first["edges"] == []
    assert first["nodes"][0]["first_turn"] == 1 and first["nodes"][0]["embedding"] is None
    now = (await client.get(f"/sessions/{sid}/graph")).json()
    assert [n["id"] for n in now["nodes"]] == ["awake", "taste"]
    assert now["edges"] == [
        {
            "id": "e",
            "source": "awake",
            "target": "taste",
            "type": "leads_to",
            "confidence": 1.0,
            "properties": {},
            "provenance": [],
        }
    ]
    similar = await client.get(f"/sessions/{sid}/graph/similar", params={"node": "awake", "k": 5})
    assert similar.json() == [{"node": "taste", "score": pytest.approx(0.6)}]


async def test_a_change_on_its_own_answers_the_session_and_heeds_if_match(
    client: httpx.AsyncClient,
) -> None:
    sid = (await create(client))["id"]
    stale = await client.post(
        f"/sessions/{sid}/graph", json={"nodes": []}, headers={"If-Match": '"7"'}
    )
    problem(stale, 412)
    changed = await client.post(
        f"/sessions/{sid}/graph",
        json={"nodes": [{"id": "n", "type": "t", "label": "l"}]},
        headers={"If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2 and changed.headers["etag"] == '"2"'
    versions = (await client.get(f"/sessions/{sid}/versions")).json()
    assert versions[-1]["change"] == "graph"


async def test_bad_changes_are_refused_with_a_4xx_and_nothing_stored(
    client: httpx.AsyncClient,
) -> None:
    sid = (await create(client))["id"]
    assert (await turn(client, sid, 1, graph={"nodes": [node("a", 1)]})).status_code == 201
    missing_end = await turn(
        client,
        sid,
        2,
        graph={"edges": [{"id": "e", "source": "a", "target": "gone", "type": "t"}]},
    )
    assert "edges.0.target" in {e["field"] for e in problem(missing_end, 422)["errors"]}
    too_long = await client.post(
        f"/sessions/{sid}/graph",
        json={
            "nodes": [
                {
                    **node("b", 1),
                    "provenance": [
                        {"turn_number": 1, "speaker": "respondent", "start": 0, "end": 999}
                    ],
                }
            ]
        },
    )
    problem(too_long, 422)
    not_finite = await client.post(
        f"/sessions/{sid}/graph",
        content=b'{"nodes": [{"id": "b", "type": "t", "label": "l", "embedding": [1e999]}]}',
        headers={"Content-Type": "application/json"},
    )
    problem(not_finite, 422)
    graph = (await client.get(f"/sessions/{sid}/graph")).json()
    assert [n["id"] for n in graph["nodes"]] == ["a"]
    turns = (await client.get(f"/sessions/{sid}/turns")).json()
    assert [t["turn_number"] for t in turns] == [1]
    assert (await client.post(f"/sessions/{sid}/complete")).status_code == 200
    ended = await client.post(f"/sessions/{sid}/graph", json={"nodes": [node("c", 1)]})
    assert problem(ended, 409)["code"] == "session_ended"


async def test_unknown_things_are_404_and_bad_queries_422(client: httpx.AsyncClient) -> None:
    sid = (await create(client))["id"]
    problem(await client.get("/sessions/nope/graph"), 404)
    problem(await client.get(f"/sessions/{sid}/graph", params={"as_of_turn": -1}), 422)
    problem(await client.get(f"/sessions/{sid}/graph/similar", params={"node": "x"}), 404)
    problem(await client.get(f"/sessions/{sid}/graph/similar", params={"node": "x", "k": 0}), 422)
    await client.post(
        f"/sessions/{sid}/graph", json={"nodes": [{"id": "x", "type": "t", "label": "l"}]}
    )
    bare = await client.get(f"/sessions/{sid}/graph/similar", params={"node": "x"})
    assert problem(bare, 422)["code"] == "node_without_embedding"
