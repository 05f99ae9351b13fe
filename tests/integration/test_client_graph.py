"""The Python clients' graph routes against a real server process."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from src.client import AsyncClient, Client
from src.core.errors import (
    GraphTurnPassedError,
    InvalidGraphError,
    NodeNotFoundError,
    NodeWithoutEmbeddingError,
    SessionEndedError,
)
from src.domain.models.graph import GraphChange
from src.domain.models.utterance import NewUtterance
from tests.servers import running_server

pytestmark = pytest.mark.sqlite

COFFEE: dict[str, Any] = {"methodology": "mec", "concept_id": "coffee-01", "concept_name": "Coffee"}
SAID = [NewUtterance(turn_number=1, speaker="respondent", text="It keeps me awake")]


def change(**fields: object) -> GraphChange:
    return GraphChange.model_validate(fields)


AWAKE = {
    "id": "awake",
    "type": "consequence",
    "label": "Awake",
    "embedding": [1.0, 0.0],
    "provenance": [{"turn_number": 1, "speaker": "respondent", "start": 3, "end": 17}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("client-graph")
    with running_server(folder, {"DATABASE_PATH": str(folder / "c.db"), "DATABASE_URL": ""}) as url:
        yield url


async def test_the_async_client_writes_reads_and_compares_the_graph(server: str) -> None:
    async with AsyncClient(server) as client:
        session = await client.create_session(**COFFEE)
        recorded = await client.record_turn(
            session.id, SAID, session.state, graph=change(nodes=[AWAKE])
        )
        changed = await client.change_graph(
            session.id,
            change(
                nodes=[
                    {
                        "id": "alert",
                        "type": "consequence",
                        "label": "Alert",
                        "embedding": [0.8, 0.6],
                    },
                    {"id": "bare", "type": "t", "label": "b"},
                ]
            ),
            expected_version=recorded.session.version,
        )
        assert changed.version == recorded.session.version + 1
        graph = await client.get_graph(session.id)
        assert [node.id for node in graph.nodes] == ["alert", "awake", "bare"]
        assert [n.id for n in (await client.get_graph(session.id, as_of_turn=0)).nodes] == []
        hits = await client.similar_nodes(session.id, "awake", k=5)
        assert [(hit.node, round(hit.score, 6)) for hit in hits] == [("alert", 0.8)]
        with pytest.raises(NodeNotFoundError):
            await client.similar_nodes(session.id, "nobody")
        with pytest.raises(NodeWithoutEmbeddingError):
            await client.similar_nodes(session.id, "bare")
        with pytest.raises(InvalidGraphError) as refused:
            await client.change_graph(
                session.id,
                change(edges=[{"id": "e", "source": "awake", "target": "x", "type": "t"}]),
            )
        assert refused.value.errors[0]["field"] == "edges.0.target"
        await client.complete(session.id)
        with pytest.raises(SessionEndedError):
            await client.change_graph(session.id, change(nodes=[AWAKE]))


def test_the_sync_client_does_the_same_and_exports_qdpx(server: str) -> None:
    with Client(server) as client:
        session = client.create_session(**COFFEE)
        client.record_turn(
            session.id,
            [NewUtterance(turn_number=3, speaker="respondent", text="It keeps me awake")],
            session.state,
            graph=change(nodes=[{**AWAKE, "provenance": []}]),
        )
        with pytest.raises(GraphTurnPassedError):
            client.record_turn(session.id, SAID, session.state, graph=change(nodes=[AWAKE]))
        client.change_graph(session.id, change(remove_nodes=["awake"]))
        assert client.get_graph(session.id).nodes == []
        assert [n.id for n in client.get_graph(session.id, as_of_turn=2).nodes] == []
        with pytest.raises(NodeNotFoundError):
            client.similar_nodes(session.id, "awake")
        exported = b"".join(client.export_session(session.id, "qdpx"))
        assert "project.qde" in zipfile.ZipFile(io.BytesIO(exported)).namelist()
