"""The conversation graph in the repository: versions per turn, refusals, nearest nodes."""

from __future__ import annotations

import math
import random
import struct
from typing import Any

import pytest
from pydantic import ValidationError

from src.core.errors import (
    GraphTurnPassedError,
    InvalidGraphError,
    NodeNotFoundError,
    NodeWithoutEmbeddingError,
    SessionEndedError,
    SessionNotFoundError,
)
from src.domain.models.graph import Graph, GraphChange
from src.domain.models.utterance import NewUtterance
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.backends import PostgresBackend
from tests.builders import new_session, state_of

ANSWER = "I drink coffee because it keeps me awake and I like the taste"


def change(**fields: Any) -> GraphChange:
    return GraphChange.model_validate(fields)


def node(node_id: str, turn: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": fields.pop("type", "attribute"),
        "label": fields.pop("label", node_id),
        "provenance": [{"turn_number": turn, "speaker": "respondent", "start": 0, "end": 5}],
        **fields,
    }


def edge(edge_id: str, source: str, target: str) -> dict[str, Any]:
    return {"id": edge_id, "source": source, "target": target, "type": "leads_to"}


def utterances(turn: int) -> list[NewUtterance]:
    return [
        NewUtterance(turn_number=turn, speaker="interviewer", text=f"Question {turn}?"),
        NewUtterance(turn_number=turn, speaker="respondent", text=f"{ANSWER} ({turn})"),
    ]


async def started(repo: SessionRepositoryProtocol) -> str:
    session = await repo.create(new_session())
    return session.id


async def turn(
    repo: SessionRepositoryProtocol, session_id: str, number: int, graph: GraphChange | None
) -> None:
    session = await repo.get(session_id)
    assert session is not None
    await repo.record_turn(
        session_id, utterances(number), state_of(session, turn_count=number), graph=graph
    )


def shape(graph: Graph) -> dict[str, Any]:
    return {
        "nodes": {n.id: n.model_dump(mode="json") for n in graph.nodes},
        "edges": {e.id: e.model_dump(mode="json") for e in graph.edges},
    }


# Ten turns: the graph grows, merges a duplicate into another node (supersession,
# then removal), replaces nodes, removes an edge and adds embeddings.
REPLAY: list[dict[str, Any]] = [
    {"nodes": [node("taste", 1)]},
    {"nodes": [node("awake", 2), node("energy", 2)], "edges": [edge("e1", "awake", "energy")]},
    {"nodes": [node("taste", 3, label="good taste", confidence=0.8)]},
    {"nodes": [node("awake", 4, superseded_by="energy")]},
    {"remove_nodes": ["awake"]},
    {"nodes": [node("work", 6), node("focus", 6)], "edges": [edge("e2", "energy", "work")]},
    {"edges": [edge("e3", "work", "focus"), edge("e2", "focus", "work")]},
    {"remove_edges": ["e3"], "nodes": [node("value", 8, type="value")]},
    {"nodes": [node("focus", 9, embedding=[1.0, 0.0]), node("work", 9, embedding=[0.5, 0.5])]},
    {"edges": [edge("e4", "work", "value")], "nodes": [node("taste", 10, properties={"k": 1})]},
]


@pytest.mark.parametrize("backend", ["sqlite_backend", "postgres_backend"], indirect=True)
class TestReplay:
    async def test_as_of_turn_gives_each_turn_what_was_written_then(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session_id = await started(repo)
        seen: list[dict[str, Any]] = [shape(await repo.get_graph(session_id))]
        for number, graph in enumerate(REPLAY, start=1):
            await turn(repo, session_id, number, change(**graph))
            seen.append(shape(await repo.get_graph(session_id)))
        for number, expected in enumerate(seen):
            assert shape(await repo.get_graph(session_id, as_of_turn=number)) == expected
        assert seen[0] == {"nodes": {}, "edges": {}}
        assert sorted(seen[4]["nodes"]) == ["awake", "energy", "taste"]
        assert seen[4]["nodes"]["awake"]["superseded_by"] == "energy"
        assert "awake" not in seen[5]["nodes"] and "e1" not in seen[5]["edges"]
        assert seen[7]["edges"]["e2"]["source"] == "focus"
        assert "e3" not in seen[8]["edges"] and "e3" in seen[7]["edges"]
        taste = seen[10]["nodes"]["taste"]
        assert (taste["first_turn"], taste["last_turn"], taste["label"]) == (1, 10, "taste")
        assert seen[9]["nodes"]["taste"]["label"] == "good taste"
        assert seen[3]["nodes"]["taste"]["confidence"] == 0.8
        assert seen[2]["nodes"]["taste"]["confidence"] == 1.0
        assert seen[10]["nodes"]["focus"]["embedding"] == [1.0, 0.0]
        assert shape(await repo.get_graph(session_id, as_of_turn=99)) == seen[10]

    async def test_a_fork_copies_the_graph_up_to_its_turn(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session_id = await started(repo)
        for number, graph in enumerate(REPLAY, start=1):
            await turn(repo, session_id, number, change(**graph))
        forked = await repo.fork(session_id, 6)
        for number in range(7):
            assert shape(await repo.get_graph(forked.id, as_of_turn=number)) == shape(
                await repo.get_graph(session_id, as_of_turn=number)
            )
        assert shape(await repo.get_graph(forked.id)) == shape(
            await repo.get_graph(session_id, as_of_turn=6)
        )

    async def test_deleting_a_session_deletes_its_graph(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session_id = await started(repo)
        await turn(repo, session_id, 1, change(**REPLAY[0]))
        assert await repo.delete(session_id)
        with pytest.raises(SessionNotFoundError):
            await repo.get_graph(session_id)
        await repo.create(new_session(id=session_id))
        assert (await repo.get_graph(session_id)).nodes == []

    async def test_a_change_on_its_own_belongs_to_the_highest_turn_and_makes_a_version(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session_id = await started(repo)
        created = await repo.change_graph(
            session_id, change(nodes=[{"id": "n0", "type": "t", "label": "before"}])
        )
        assert created.version == 2
        assert [n.first_turn for n in (await repo.get_graph(session_id, as_of_turn=0)).nodes] == [0]
        await turn(repo, session_id, 1, None)
        await turn(repo, session_id, 2, None)
        after = await repo.change_graph(
            session_id, change(nodes=[node("n2", 2)]), expected_version=created.version + 2
        )
        assert after.version == created.version + 3
        history = await repo.list_versions(session_id)
        assert [(v.change.value, v.turn_number) for v in history.items][-1] == ("graph", None)
        assert [n.id for n in (await repo.get_graph(session_id, as_of_turn=1)).nodes] == ["n0"]
        assert [n.id for n in (await repo.get_graph(session_id, as_of_turn=2)).nodes] == [
            "n0",
            "n2",
        ]

    async def test_a_span_may_point_at_an_utterance_of_its_own_turn(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session_id = await started(repo)
        span = {"turn_number": 1, "speaker": "respondent", "start": 0, "end": len(ANSWER) + 4}
        await turn(repo, session_id, 1, change(nodes=[{**node("a", 1), "provenance": [span]}]))
        (stored,) = (await repo.get_graph(session_id)).nodes
        assert stored.provenance[0].end == len(ANSWER) + 4


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("edge to a missing node", {"edges": [edge("e", "taste", "nowhere")]}, "edges.0.target"),
    (
        "span past its utterance",
        {
            "nodes": [
                {
                    **node("x", 1),
                    "provenance": [
                        {"turn_number": 1, "speaker": "respondent", "start": 0, "end": 500}
                    ],
                }
            ]
        },
        "nodes.0.provenance.0",
    ),
    (
        "span on an utterance not stored",
        {
            "nodes": [
                {
                    **node("x", 1),
                    "provenance": [
                        {"turn_number": 7, "speaker": "respondent", "start": 0, "end": 1}
                    ],
                }
            ]
        },
        "nodes.0.provenance.0",
    ),
    (
        "embedding of another length",
        {"nodes": [node("x", 1, embedding=[1.0, 2.0, 3.0])]},
        "nodes.0.embedding",
    ),
    (
        "supersession cycle",
        {"nodes": [node("a", 1, superseded_by="b"), node("b", 1, superseded_by="a")]},
        "nodes.0.superseded_by",
    ),
    ("superseded by itself", {"nodes": [node("x", 1, superseded_by="x")]}, "nodes.0.superseded_by"),
    (
        "superseded by a missing node",
        {"nodes": [node("x", 1, superseded_by="nowhere")]},
        "nodes.0.superseded_by",
    ),
]


@pytest.mark.parametrize("backend", ["sqlite_backend", "postgres_backend"], indirect=True)
class TestRefusals:
    @pytest.mark.parametrize(("name", "bad", "field"), REFUSED, ids=[r[0] for r in REFUSED])
    async def test_a_bad_change_is_refused_and_nothing_of_it_stored(
        self, repo: SessionRepositoryProtocol, name: str, bad: dict[str, Any], field: str
    ) -> None:
        session_id = await started(repo)
        await turn(repo, session_id, 1, change(nodes=[node("taste", 1, embedding=[1.0, 1.0])]))
        before = await repo.get(session_id)
        graph_before = shape(await repo.get_graph(session_id))
        assert before is not None
        good_and_bad = {**bad, "nodes": [node("fine", 1), *bad.get("nodes", [])]}
        if "edges" not in bad:
            field = field.replace("nodes.0", "nodes.1")
        with pytest.raises(InvalidGraphError) as refused:
            await repo.change_graph(session_id, change(**good_and_bad))
        assert field in [error["field"] for error in refused.value.errors]
        with pytest.raises(InvalidGraphError):
            await turn(repo, session_id, 2, change(**good_and_bad))
        assert shape(await repo.get_graph(session_id)) == graph_before
        assert await repo.get(session_id) == before
        assert (await repo.list_utterances(session_id)).items[-1].turn_number == 1

    async def test_a_change_to_an_ended_session_is_refused(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session_id = await started(repo)
        await repo.transition(session_id, "completed")
        with pytest.raises(SessionEndedError):
            await repo.change_graph(
                session_id, change(nodes=[{"id": "a", "type": "t", "label": "l"}])
            )
        assert (await repo.get_graph(session_id)).nodes == []

    async def test_a_change_for_a_turn_before_the_graphs_last_is_refused(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session_id = await started(repo)
        await turn(repo, session_id, 3, change(nodes=[{"id": "a", "type": "t", "label": "l"}]))
        with pytest.raises(GraphTurnPassedError):
            await turn(repo, session_id, 2, change(nodes=[{"id": "b", "type": "t", "label": "l"}]))
        assert [n.id for n in (await repo.get_graph(session_id)).nodes] == ["a"]

    async def test_a_removal_is_a_change_of_its_turn_too(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session_id = await started(repo)
        await turn(repo, session_id, 2, change(nodes=[node("a", 2), node("b", 2)]))
        await turn(repo, session_id, 4, change(remove_nodes=["a"], remove_edges=["none"]))
        with pytest.raises(GraphTurnPassedError) as refused:
            await turn(repo, session_id, 3, change(nodes=[node("c", 3)]))
        assert refused.value.last_turn == 4
        assert [n.id for n in (await repo.get_graph(session_id)).nodes] == ["b"]

    async def test_a_node_another_is_superseded_by_is_not_removed_alone(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session_id = await started(repo)
        merged = [node("a", 1), node("b", 1, superseded_by="a"), node("c", 1)]
        await turn(repo, session_id, 1, change(nodes=merged))
        with pytest.raises(InvalidGraphError) as refused:
            await repo.change_graph(session_id, change(remove_nodes=["c", "a"]))
        assert [error["field"] for error in refused.value.errors] == ["remove_nodes.1"]
        assert "'b'" in refused.value.errors[0]["reason"]
        assert [n.id for n in (await repo.get_graph(session_id)).nodes] == ["a", "b", "c"]

        # A node this change makes superseded by it is refused once, for its own field.
        with pytest.raises(InvalidGraphError) as refused:
            await repo.change_graph(
                session_id, change(remove_nodes=["c"], nodes=[node("d", 1, superseded_by="c")])
            )
        assert [error["field"] for error in refused.value.errors] == ["nodes.0.superseded_by"]

        # Gone together, or with b no longer superseded, it goes.
        await repo.change_graph(session_id, change(remove_nodes=["a"], nodes=[node("b", 1)]))
        await repo.change_graph(session_id, change(remove_nodes=["c"]))
        (left,) = (await repo.get_graph(session_id)).nodes
        assert (left.id, left.superseded_by) == ("b", None)

    async def test_an_edge_to_a_node_the_same_change_removes_is_refused(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session_id = await started(repo)
        await turn(repo, session_id, 1, change(nodes=[node("a", 1), node("b", 1)]))
        with pytest.raises(InvalidGraphError) as refused:
            await repo.change_graph(
                session_id, change(remove_nodes=["b"], edges=[edge("e", "a", "b")])
            )
        assert [error["field"] for error in refused.value.errors] == ["edges.0.target"]
        assert [n.id for n in (await repo.get_graph(session_id)).nodes] == ["a", "b"]


@pytest.mark.parametrize("backend", ["sqlite_backend", "postgres_backend"], indirect=True)
async def test_upserts_within_a_change_and_across_turns_keep_each_version(
    repo: SessionRepositoryProtocol,
) -> None:
    session_id = await started(repo)
    await turn(
        repo,
        session_id,
        1,
        change(
            nodes=[node("a", 1), node("b", 1), node("c", 1)],
            edges=[edge("e", "a", "b"), edge("e", "a", "c")],
        ),
    )
    await turn(
        repo,
        session_id,
        2,
        change(
            nodes=[node("a", 2, label="a again"), node("a", 2, label="a at last")],
            edges=[edge("e", "b", "c"), edge("f", "c", "a")],
        ),
    )
    first = await repo.get_graph(session_id, as_of_turn=1)
    assert [(e.id, e.source, e.target) for e in first.edges] == [("e", "a", "c")]
    assert [(n.id, n.label) for n in first.nodes] == [("a", "a"), ("b", "b"), ("c", "c")]
    now = await repo.get_graph(session_id)
    assert [(e.id, e.source, e.target) for e in now.edges] == [("e", "b", "c"), ("f", "c", "a")]
    assert [(n.id, n.label, n.first_turn, n.last_turn) for n in now.nodes] == [
        ("a", "a at last", 1, 2),
        ("b", "b", 1, 1),
        ("c", "c", 1, 1),
    ]


@pytest.mark.parametrize("backend", ["sqlite_backend", "postgres_backend"], indirect=True)
class TestSimilar:
    async def test_nearest_nodes_by_cosine_best_first(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session_id = await started(repo)
        vectors = {
            "a": [1.0, 0.0, 0.0],
            "b": [0.9, 0.1, 0.0],
            "c": [0.0, 1.0, 0.0],
            "d": [-1.0, 0.0, 0.0],
            "e": [0.5, 0.5, 0.0],
        }
        nodes = [{"id": k, "type": "t", "label": k, "embedding": v} for k, v in vectors.items()]
        await repo.change_graph(
            session_id, change(nodes=[*nodes, {"id": "bare", "type": "t", "label": "x"}])
        )
        hits = await repo.similar_nodes(session_id, "a", k=3)
        assert [hit.node for hit in hits] == ["b", "e", "c"]
        assert hits[0].score == pytest.approx(0.9 / math.hypot(0.9, 0.1))
        everything = await repo.similar_nodes(session_id, "a", k=100)
        assert [hit.node for hit in everything] == ["b", "e", "c", "d"]
        assert everything[-1].score == pytest.approx(-1.0)
        with pytest.raises(NodeNotFoundError):
            await repo.similar_nodes(session_id, "nowhere")
        with pytest.raises(NodeWithoutEmbeddingError):
            await repo.similar_nodes(session_id, "bare")
        with pytest.raises(SessionNotFoundError):
            await repo.similar_nodes("no-such-session", "a")

    async def test_the_next_query_sees_every_write_to_the_graph_or_its_session(
        self, backend: Any, repo: SessionRepositoryProtocol
    ) -> None:
        session_id = await started(repo)
        vectors = {"a": [1.0, 0.0], "b": [0.8, 0.6], "c": [0.0, 1.0]}
        nodes = [{"id": k, "type": "t", "label": k, "embedding": v} for k, v in vectors.items()]
        await repo.change_graph(session_id, change(nodes=nodes))
        assert [hit.node for hit in await repo.similar_nodes(session_id, "a")] == ["b", "c"]

        async with backend.open() as other:
            # Another server on the same store deletes the session and makes another under
            # its id, which reaches the same version.
            await other.delete(session_id)
            await other.create(new_session(id=session_id))
            again = {"a": [0.0, 1.0], "c": [0.0, 3.0], "d": [1.0, 0.0]}
            nodes = [{"id": k, "type": "t", "label": k, "embedding": v} for k, v in again.items()]
            await other.change_graph(session_id, change(nodes=nodes))
            hits = await repo.similar_nodes(session_id, "a")
            assert [hit.node for hit in hits] == ["c", "d"]

            # ...then changes its graph.
            twin = {"id": "twin", "type": "t", "label": "twin", "embedding": [0.0, 2.0]}
            await other.change_graph(session_id, change(nodes=[twin], remove_nodes=["c"]))
            hits = await repo.similar_nodes(session_id, "a")
            assert [hit.node for hit in hits] == ["twin", "d"]
            assert [hit.score for hit in hits] == pytest.approx([1.0, 0.0])

    async def test_equal_embeddings_tie_and_go_by_id(self, repo: SessionRepositoryProtocol) -> None:
        session_id = await started(repo)
        rng = random.Random(3)
        shared = [rng.gauss(0, 1) for _ in range(384)]
        probe = [rng.gauss(0, 1) for _ in range(384)]
        nodes = [{"id": k, "type": "t", "label": k, "embedding": shared} for k in "edcba"]
        nodes.append({"id": "z", "type": "t", "label": "z", "embedding": probe})
        await repo.change_graph(session_id, change(nodes=nodes))

        hits = await repo.similar_nodes(session_id, "z")

        assert [hit.node for hit in hits] == ["a", "b", "c", "d", "e"]
        assert len({round(hit.score, 12) for hit in hits}) == 1

    async def test_huge_and_tiny_magnitudes_give_true_cosines(
        self, repo: SessionRepositoryProtocol
    ) -> None:
        session_id = await started(repo)
        vectors = {
            "probe": [1.0, 0.0],
            "huge": [1e200, 0.0],
            "huge-diagonal": [1e200, 1e200],
            "tiny": [1e-200, 0.0],
            "subnormal": [0.0, 5e-324],
        }
        nodes = [{"id": k, "type": "t", "label": k, "embedding": v} for k, v in vectors.items()]
        await repo.change_graph(session_id, change(nodes=nodes))

        hits = {hit.node: hit.score for hit in await repo.similar_nodes(session_id, "probe")}

        assert hits == pytest.approx(
            {"huge": 1.0, "tiny": 1.0, "huge-diagonal": math.sqrt(0.5), "subnormal": 0.0}
        )


@pytest.mark.postgres
async def test_older_data_reloaded_under_a_running_server_is_searched_afresh(
    postgres_backend: PostgresBackend,
) -> None:
    async with postgres_backend.open() as repo:
        session_id = await started(repo)
        vectors = {"a": [1.0, 0.0], "b": [0.0, 1.0]}
        nodes = [{"id": k, "type": "t", "label": k, "embedding": v} for k, v in vectors.items()]
        await repo.change_graph(session_id, change(nodes=nodes))
        assert (await repo.similar_nodes(session_id, "a"))[0].score == pytest.approx(0.0)

        # As pg_restore of an older dump would: other data under the same version.
        embedding = "\\x" + struct.pack("<2d", 1.0, 0.0).hex()
        await postgres_backend.execute(
            f"UPDATE graph_nodes SET embedding = '{embedding}'::bytea"
            f" WHERE session_id = '{session_id}' AND node_id = 'b';"
            f" UPDATE sessions SET version = version WHERE id = '{session_id}'"
        )

        assert (await repo.similar_nodes(session_id, "a"))[0].score == pytest.approx(1.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"nodes": [{"id": "a", "type": "t", "label": "l", "embedding": [math.nan]}]},
        {"nodes": [{"id": "a", "type": "t", "label": "l", "embedding": [math.inf, 1.0]}]},
        {"nodes": [{"id": "a", "type": "t", "label": "l", "embedding": [0.0, 0.0]}]},
        {"nodes": [{"id": "a", "type": "t", "label": "l", "embedding": []}]},
        {"nodes": [{"id": "a", "type": "t", "label": "l", "confidence": 1.5}]},
        {"nodes": [{"id": "a", "type": "t", "label": "l", "properties": {"x": "y" * 17000}}]},
        {
            "edges": [
                {
                    "id": "e",
                    "source": "a",
                    "target": "b",
                    "type": "t",
                    "provenance": [
                        {"turn_number": 1, "speaker": "respondent", "start": 3, "end": 3}
                    ],
                }
            ]
        },
    ],
)
def test_a_change_that_cannot_be_valid_is_refused_before_the_store(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        GraphChange.model_validate(bad)


@pytest.mark.parametrize("backend", ["sqlite_backend", "postgres_backend"], indirect=True)
async def test_removals_come_first_and_a_repeated_upsert_takes_the_last(
    repo: SessionRepositoryProtocol,
) -> None:
    session_id = await started(repo)
    await repo.change_graph(session_id, change(nodes=[{"id": "a", "type": "t", "label": "old"}]))
    await repo.change_graph(
        session_id,
        change(
            remove_nodes=["a", "a", "never-there"],
            nodes=[
                {"id": "a", "type": "t", "label": "new"},
                {"id": "a", "type": "t", "label": "newer"},
            ],
        ),
    )
    assert [(n.id, n.label) for n in (await repo.get_graph(session_id)).nodes] == [("a", "newer")]


@pytest.mark.parametrize("backend", ["sqlite_backend", "postgres_backend"], indirect=True)
async def test_every_value_reads_back_exactly(repo: SessionRepositoryProtocol) -> None:
    session_id = await started(repo)
    written = {
        "id": 'ü "quoted" \\ back',
        "type": "type ✓",
        "label": "line 'one' / « deux »",
        "confidence": 0.1234567890123456,
        "properties": {"é": 'line\nbreak "q"', "n": [1, 2.5, None, True, 10**20], "o": {}},
        "embedding": [0.1, -2.5e-300, 1e300, 3.0],
    }
    edge = {
        "id": "e ✓",
        "source": written["id"],
        "target": written["id"],
        "type": "self",
        "confidence": 1e-7,
        "properties": {"z": "\u2028"},
    }
    await repo.change_graph(session_id, change(nodes=[written], edges=[edge]))
    graph = await repo.get_graph(session_id)
    (node,) = graph.nodes
    assert (
        node.model_dump(exclude={"provenance", "superseded_by", "first_turn", "last_turn"})
        == written
    )
    assert graph.edges[0].model_dump(exclude={"provenance"}) == edge
