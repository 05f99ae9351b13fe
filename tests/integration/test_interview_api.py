"""Studies, labels, open state, turn records, history and forks over HTTP: the refusals."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.backends import PostgresBackend, SqliteBackend
from tests.builders import NEW_SESSION_BODY

PROBLEM = "application/problem+json"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    return body


def fields(problem: dict[str, Any]) -> set[str]:
    return {error["field"] for error in problem.get("errors", [])}


async def create(client: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    response = await client.post("/sessions", json={**NEW_SESSION_BODY, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def said(turn: int) -> list[dict[str, Any]]:
    return [
        {"turn_number": turn, "speaker": "interviewer", "text": f"q{turn}"},
        {"turn_number": turn, "speaker": "respondent", "text": f"a{turn}"},
    ]


RECORD = {
    "strategy": "ladder",
    "scores": {"depth": 0.5},
    "signals": {"model": "m"},
    "usage": {"input_tokens": 10, "output_tokens": 2, "cost_usd": 0.01, "latency_ms": 5},
}


async def turn(
    client: httpx.AsyncClient, session_id: str, number: int, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/sessions/{session_id}/turns",
        json={"utterances": said(number), "state_patch": {"turn_count": number}, **body},
    )


class TestCreateLimits:
    @pytest.mark.parametrize(
        ("extra", "field"),
        [
            ({"study_id": ""}, "study_id"),
            ({"study_id": "x" * 129}, "study_id"),
            ({"study_id": "a\nb"}, "study_id"),
            ({"participant_id": "x" * 129}, "participant_id"),
            ({"labels": {"bad key": "v"}}, "labels.bad key.[key]"),
            ({"labels": {"k": "v" * 257}}, "labels.k"),
            ({"labels": {f"k{n}": "v" for n in range(33)}}, "labels"),
            ({"labels": {"k": 1}}, "labels.k"),
            ({"config": []}, "config"),
        ],
    )
    async def test_a_new_field_past_its_limit_is_422_naming_it(
        self, client: httpx.AsyncClient, extra: dict[str, Any], field: str
    ) -> None:
        problem = assert_problem(
            await client.post("/sessions", json={**NEW_SESSION_BODY, **extra}), 422
        )
        assert field in fields(problem)

    async def test_fields_at_their_limits_are_kept(self, client: httpx.AsyncClient) -> None:
        labels = {f"k{n}": "v" * 256 for n in range(32)}
        body = await create(client, study_id="s" * 128, participant_id="p" * 128, labels=labels)
        read = (await client.get(f"/sessions/{body['id']}")).json()
        assert (read["study_id"], read["participant_id"], read["labels"]) == (
            "s" * 128,
            "p" * 128,
            labels,
        )

    async def test_an_old_body_gets_the_defaults(self, client: httpx.AsyncClient) -> None:
        body = await create(client)
        assert body["study_id"] is None
        assert body["participant_id"] is None
        assert (body["labels"], body["config"], body["forked_from"]) == ({}, {}, None)
        assert body["usage"] == {
            "turns": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": 0.0,
            "latency_ms": 0.0,
        }
        assert body["state"]["data"] == {}


class TestStatePatch:
    async def test_a_merge_patch_changes_only_what_it_names(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create(client)
        data = {"mode": "exploratory", "tracker": {"v": 3, "nodes": {"a": 1}}, "n": 1.0}
        put = await client.put(
            f"/sessions/{session['id']}/state",
            json={**session["state"], "data": data, "turn_count": 2},
        )
        assert put.status_code == 200, put.text
        patched = await client.patch(
            f"/sessions/{session['id']}/state",
            content=json.dumps(
                {
                    "data": {"tracker": {"nodes": {"b": 2, "a": None}}, "mode": None},
                    "last_strategy": "probe",
                    "turn_count": None,
                }
            ),
            headers={**MERGE_PATCH, "If-Match": '"2"'},
        )
        assert patched.status_code == 200, patched.text
        assert patched.headers["etag"] == '"3"'
        state = patched.json()["state"]
        assert state["data"] == {"tracker": {"v": 3, "nodes": {"b": 2}}, "n": 1.0}
        assert state["last_strategy"] == "probe"
        assert state["turn_count"] == 0  # removed: back to its default
        assert (await client.get(f"/sessions/{session['id']}")).json() == patched.json()

    async def test_another_content_type_is_415(self, client: httpx.AsyncClient) -> None:
        session = await create(client)
        response = await client.patch(f"/sessions/{session['id']}/state", json={"turn_count": 1})
        assert_problem(response, 415)
        assert (await client.get(f"/sessions/{session['id']}")).json()["version"] == 1

    @pytest.mark.parametrize(
        "patch", [{"methodology": "zmet"}, {"concept_id": "other"}, {"concept_name": None}]
    )
    async def test_a_patch_changing_methodology_or_concept_is_409(
        self, client: httpx.AsyncClient, patch: dict[str, Any]
    ) -> None:
        session = await create(client)
        response = await client.patch(
            f"/sessions/{session['id']}/state", content=json.dumps(patch), headers=MERGE_PATCH
        )
        assert_problem(response, 409)

    @pytest.mark.parametrize(
        ("patch", "field"),
        [
            ({"turn_count": -1}, "turn_count"),
            ({"coverage_score": 2}, "coverage_score"),
            ({"data": [1]}, "data"),
            ({"surprise": 1}, "surprise"),
        ],
    )
    async def test_a_patch_leaving_an_invalid_state_is_422_and_stores_nothing(
        self, client: httpx.AsyncClient, patch: dict[str, Any], field: str
    ) -> None:
        session = await create(client)
        response = await client.patch(
            f"/sessions/{session['id']}/state", content=json.dumps(patch), headers=MERGE_PATCH
        )
        problem = assert_problem(response, 422)
        assert field in fields(problem)
        assert (await client.get(f"/sessions/{session['id']}")).json() == session

    async def test_a_stale_if_match_is_412(self, client: httpx.AsyncClient) -> None:
        session = await create(client)
        response = await client.patch(
            f"/sessions/{session['id']}/state",
            content=b'{"turn_count": 1}',
            headers={**MERGE_PATCH, "If-Match": '"7"'},
        )
        assert_problem(response, 412)

    async def test_data_is_kept_exactly(self, client: httpx.AsyncClient) -> None:
        session = await create(client)
        data: dict[str, Any] = {
            "int": 12345678901234567890,
            "float": 0.1,
            "one": 1.0,
            "true": True,
            "null": None,
            "text": "ünï\u2028\"'\\",
            "nested": {"list": [1, 1.5, "x", None, {"deep": []}]},
        }
        # A merge patch cannot set a member to null, so the whole state is sent.
        put = await client.put(
            f"/sessions/{session['id']}/state", json={**session["state"], "data": data}
        )
        assert put.status_code == 200, put.text
        assert put.json()["state"]["data"] == data
        read = await client.get(f"/sessions/{session['id']}")
        assert json.loads(read.text)["state"]["data"] == data
        assert '"one":1.0' in read.text
        assert '"int":12345678901234567890' in read.text


class TestSessionPatch:
    async def test_labels_merge_and_participant_changes(self, client: httpx.AsyncClient) -> None:
        session = await create(client, labels={"a": "1", "b": "2"})
        response = await client.patch(
            f"/sessions/{session['id']}",
            content=json.dumps({"labels": {"a": None, "c": "3"}, "participant_id": "p-1"}),
            headers={**MERGE_PATCH, "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["labels"], body["participant_id"], body["version"]) == (
            {"b": "2", "c": "3"},
            "p-1",
            2,
        )

    @pytest.mark.parametrize(
        ("patch", "field"),
        [
            ({"study_id": "s"}, "study_id"),
            ({"config": {}}, "config"),
            ({"labels": {"bad key": "x"}}, "labels.bad key.[key]"),
            ({"participant_id": ""}, "participant_id"),
        ],
    )
    async def test_any_other_field_or_a_bad_value_is_422(
        self, client: httpx.AsyncClient, patch: dict[str, Any], field: str
    ) -> None:
        session = await create(client)
        response = await client.patch(f"/sessions/{session['id']}", json=patch)
        assert field in fields(assert_problem(response, 422))

    async def test_more_than_32_labels_after_the_merge_is_422(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create(client, labels={f"k{n}": "v" for n in range(32)})
        response = await client.patch(f"/sessions/{session['id']}", json={"labels": {"x": "y"}})
        assert "labels" in fields(assert_problem(response, 422))

    async def test_a_stale_if_match_is_412(self, client: httpx.AsyncClient) -> None:
        session = await create(client)
        response = await client.patch(
            f"/sessions/{session['id']}", json={"participant_id": "p"}, headers={"If-Match": '"2"'}
        )
        assert_problem(response, 412)


class TestTurns:
    async def test_a_second_record_for_a_turn_is_409_and_stores_nothing(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create(client)
        assert (await turn(client, session["id"], 1, record=RECORD)).status_code == 201
        before = (await client.get(f"/sessions/{session['id']}")).json()
        again = await client.post(
            f"/sessions/{session['id']}/turns",
            json={
                "utterances": [{"turn_number": 1, "speaker": "interviewer", "text": "more"}],
                "state_patch": {"data": {"x": 1}},
                "record": RECORD,
            },
        )
        assert assert_problem(again, 409)["code"] != "session_ended"
        # An interviewer utterance already exists in turn 1, but even with a fresh
        # speaker slot, the record alone refuses the turn.
        assert (await client.get(f"/sessions/{session['id']}")).json() == before

    async def test_a_second_record_alone_is_409_turn_record_exists(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create(client)
        first = await client.post(
            f"/sessions/{session['id']}/turns",
            json={
                "utterances": [{"turn_number": 1, "speaker": "interviewer", "text": "q"}],
                "state_patch": {},
                "record": RECORD,
            },
        )
        assert first.status_code == 201, first.text
        before = (await client.get(f"/sessions/{session['id']}")).json()
        second = await client.post(
            f"/sessions/{session['id']}/turns",
            json={
                "utterances": [{"turn_number": 1, "speaker": "respondent", "text": "a"}],
                "state_patch": {"data": {"x": 1}},
                "record": RECORD,
            },
        )
        assert assert_problem(second, 409)["code"] == "turn_record_exists"
        assert (await client.get(f"/sessions/{session['id']}")).json() == before
        utterances = (await client.get(f"/sessions/{session['id']}/utterances")).json()
        assert [u["speaker"] for u in utterances] == ["interviewer"]

    async def test_a_record_for_an_ended_session_is_409_session_ended(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create(client)
        await client.post(f"/sessions/{session['id']}/complete")
        response = await turn(client, session["id"], 1, record=RECORD)
        assert assert_problem(response, 409)["code"] == "session_ended"
        assert (await client.get(f"/sessions/{session['id']}/turns")).json() == []

    async def test_utterances_naming_two_turns_are_422(self, client: httpx.AsyncClient) -> None:
        session = await create(client)
        response = await client.post(
            f"/sessions/{session['id']}/turns",
            json={"utterances": [*said(1)[:1], *said(2)[1:]], "state_patch": {}},
        )
        assert "utterances" in fields(assert_problem(response, 422))
        assert (await client.get(f"/sessions/{session['id']}/utterances")).json() == []

    @pytest.mark.parametrize("state", [{}, {"state": None}, {"state_patch": {}, "state": "both"}])
    async def test_exactly_one_of_state_and_state_patch(
        self, client: httpx.AsyncClient, state: dict[str, Any]
    ) -> None:
        session = await create(client)
        body: dict[str, Any] = {"utterances": said(1), **state}
        if body.get("state") == "both":
            body["state"] = session["state"]
        assert_problem(await client.post(f"/sessions/{session['id']}/turns", json=body), 422)

    @pytest.mark.parametrize(
        ("record", "field"),
        [
            ({"scores": {f"s{n}": 0.0 for n in range(65)}}, "record.scores"),
            ({"scores": {"x": "NaN"}}, "record.scores.x"),
            ({"scores": {"x": True}}, "record.scores.x"),
            ({"usage": {"input_tokens": -1}}, "record.usage.input_tokens"),
            ({"usage": {"input_tokens": 1.5}}, "record.usage.input_tokens"),
            ({"usage": {"output_tokens": "3"}}, "record.usage.output_tokens"),
            ({"usage": {"cost_usd": -0.01}}, "record.usage.cost_usd"),
            ({"usage": {"latency_ms": "fast"}}, "record.usage.latency_ms"),
            ({"strategy": "x" * 65}, "record.strategy"),
            ({"surprise": 1}, "record.surprise"),
        ],
    )
    async def test_a_record_past_its_limits_is_422_naming_the_field(
        self, client: httpx.AsyncClient, record: dict[str, Any], field: str
    ) -> None:
        session = await create(client)
        problem = assert_problem(await turn(client, session["id"], 1, record=record), 422)
        assert field in fields(problem)

    async def test_the_old_turn_body_still_works(self, client: httpx.AsyncClient) -> None:
        session = await create(client)
        response = await client.post(
            f"/sessions/{session['id']}/turns",
            json={"utterances": said(1), "state": {**session["state"], "turn_count": 1}},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert [u["text"] for u in body["utterances"]] == ["q1", "a1"]
        assert body["turn"]["record"] is None
        assert body["session"]["usage"]["turns"] == 0

    async def test_turns_page_with_appended_utterances_and_no_record(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create(client)
        for number in (1, 2, 3):
            assert (await turn(client, session["id"], number)).status_code == 201
        appended = await client.post(
            f"/sessions/{session['id']}/utterances",
            json={"turn_number": 4, "speaker": "interviewer", "text": "q4"},
        )
        assert appended.status_code == 201
        first = await client.get(f"/sessions/{session['id']}/turns?limit=2")
        assert [t["turn_number"] for t in first.json()] == [1, 2]
        assert first.links["next"]["url"].endswith("after_turn=2")
        rest = await client.get(f"/sessions/{session['id']}/turns?after_turn=2")
        assert "next" not in rest.links
        assert [(t["turn_number"], t["version"], t["record"]) for t in rest.json()] == [
            (3, 4, None),
            (4, 4, None),
        ]
        assert_problem(await client.get("/sessions/nobody/turns"), 404)


class TestListingFilters:
    async def test_filters_by_study_participant_labels_and_time(
        self, client: httpx.AsyncClient
    ) -> None:
        study = f"study-{uuid.uuid4()}"
        a = await create(
            client, study_id=study, participant_id="p1", labels={"run": "1", "x": "a:b"}
        )
        b = await create(client, study_id=study, participant_id="p2", labels={"run": "2"})
        c = await create(client, study_id=study, participant_id="p1", labels={"run": "1"})
        await client.post(f"/sessions/{c['id']}/complete")

        async def ids(query: str) -> list[str]:
            response = await client.get(f"/sessions?study_id={study}&{query}")
            assert response.status_code == 200, response.text
            return [s["id"] for s in response.json()]

        assert await ids("") == [b["id"], a["id"]]
        assert await ids("status=all") == [c["id"], b["id"], a["id"]]
        assert await ids("status=all&participant_id=p1") == [c["id"], a["id"]]
        assert await ids("status=all&label=run:1") == [c["id"], a["id"]]
        assert await ids("label=run:1&label=x:a:b") == [a["id"]]
        assert await ids("label=run:1&label=run:2") == []
        after_a = quote(a["created_at"].replace("Z", "+00:00"))
        assert await ids(f"status=all&created_after={after_a}") == [c["id"], b["id"]]
        before_c = quote(c["created_at"].replace("Z", "+00:00"))
        assert await ids(f"status=all&created_before={before_c}") == [b["id"], a["id"]]
        elsewhere = datetime.fromisoformat(a["created_at"]).astimezone(timezone(timedelta(hours=5)))
        assert await ids(f"status=all&created_after={quote(elsewhere.isoformat())}") == [
            c["id"],
            b["id"],
        ]
        counted = await client.get(
            f"/sessions?study_id={study}&status=all&limit=1&include_total=true"
        )
        assert counted.headers["x-total-count"] == "3"
        assert len(counted.json()) == 1
        assert "x-total-count" not in (await client.get(f"/sessions?study_id={study}")).headers

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("label=nocolon", "label.0"),
            ("created_after=2026-01-01T00:00:00", "created_after"),
            ("created_before=yesterday", "created_before"),
            ("status=everything", "status"),
            ("study_id=", "study_id"),
        ],
    )
    async def test_bad_filters_are_422(
        self, client: httpx.AsyncClient, query: str, field: str
    ) -> None:
        problem = assert_problem(await client.get(f"/sessions?{query}"), 422)
        assert field in fields(problem)


class TestStudies:
    async def test_an_unknown_study_is_404(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get(f"/studies/none-{uuid.uuid4()}"), 404)

    async def test_a_study_counts_its_sessions(self, client: httpx.AsyncClient) -> None:
        study = f"study-{uuid.uuid4()}"
        first = await create(client, study_id=study)
        await create(client, study_id=study)
        await turn(client, first["id"], 1, record=RECORD)
        summary = (await client.get(f"/studies/{study}")).json()
        assert summary["sessions"] == {"active": 2}
        assert summary["usage"]["input_tokens"] == 10
        assert summary["first_created_at"] == first["created_at"]


class TestHistoryAndFork:
    async def test_every_write_makes_a_version_and_an_utterance_does_not(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create(client)
        sid = session["id"]
        await turn(client, sid, 1)
        await client.post(
            f"/sessions/{sid}/utterances",
            json={"turn_number": 2, "speaker": "interviewer", "text": "q"},
        )
        await client.patch(f"/sessions/{sid}", json={"labels": {"a": "b"}})
        await client.post(f"/sessions/{sid}/pause")
        await client.put(f"/sessions/{sid}/state", json={**session["state"], "turn_count": 5})
        versions = (await client.get(f"/sessions/{sid}/versions")).json()
        assert [(v["version"], v["change"], v["turn_number"]) for v in versions] == [
            (1, "created", None),
            (2, "turn", 1),
            (3, "labels", None),
            (4, "transition", None),
            (5, "state", None),
        ]
        assert versions[3]["status"] == "paused"
        assert_problem(await client.get(f"/sessions/{sid}/versions/6"), 404)
        assert_problem(await client.get("/sessions/nobody/versions/1"), 404)
        assert_problem(await client.get("/sessions/nobody/versions"), 404)

    async def test_fork_refusals(self, client: httpx.AsyncClient) -> None:
        session = await create(client)
        await turn(client, session["id"], 1)
        past = await client.post(f"/sessions/{session['id']}/fork", json={"at_turn": 2})
        assert assert_problem(past, 409)["last_turn"] == 1
        assert_problem(
            await client.post(f"/sessions/{session['id']}/fork", json={"at_turn": -1}), 422
        )
        assert_problem(await client.post("/sessions/nobody/fork", json={"at_turn": 0}), 404)
        taken = await client.post(
            f"/sessions/{session['id']}/fork", json={"at_turn": 0, "id": session["id"]}
        )
        assert_problem(taken, 409)

    async def test_a_fork_at_turn_0_starts_from_the_state_as_created(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create(client, labels={"k": "v"})
        await turn(client, session["id"], 1, record=RECORD)
        await client.post(f"/sessions/{session['id']}/abandon")
        fork_id = f"fork-{uuid.uuid4()}"
        response = await client.post(
            f"/sessions/{session['id']}/fork", json={"at_turn": 0, "id": fork_id}
        )
        assert response.status_code == 201, response.text
        fork = response.json()
        assert fork["id"] == fork_id
        assert response.headers["location"] == f"/sessions/{fork_id}"
        assert fork["state"] == session["state"]
        assert fork["labels"] == {"k": "v"}
        assert fork["usage"]["turns"] == 0
        assert (await client.get(f"/sessions/{fork_id}/utterances")).json() == []
        assert [
            v["change"] for v in (await client.get(f"/sessions/{fork_id}/versions")).json()
        ] == ["created"]


async def test_deleting_a_session_deletes_its_history_records_and_data(
    client: httpx.AsyncClient, backend: SqliteBackend | PostgresBackend
) -> None:
    session = await create(client)
    await client.patch(
        f"/sessions/{session['id']}/state", content=b'{"data": {"a": 1}}', headers=MERGE_PATCH
    )
    await turn(client, session["id"], 1, record=RECORD)
    assert (await client.delete(f"/sessions/{session['id']}")).status_code == 204
    for table in ("state_data", "turn_records", "session_versions"):
        row = await backend.fetch_one(
            f"SELECT count(*) AS n FROM {table} WHERE session_id = '{session['id']}'"
        )
        assert row == {"n": 0}


@pytest.mark.parametrize("key", ['a"b', "a'b", "$.x", "a]b", "", "-x", "k" * 64, "a\\b", "ü"])
async def test_a_label_filter_with_a_key_no_label_can_have_is_422(
    client: httpx.AsyncClient, key: str
) -> None:
    response = await client.get("/sessions", params={"label": f"{key}:v"})
    problem = assert_problem(response, 422)
    assert "label.0" in fields(problem)
