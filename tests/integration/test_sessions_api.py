"""The HTTP API of CONTRACT.md section 4, through create_app and a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from src.core.config import Settings
from tests.backends import PostgresBackend, SqliteBackend, drop_session_tables
from tests.builders import NEW_SESSION_BODY

MAX_BODY_BYTES = Settings.model_fields["max_body_bytes"].default
PROBLEM = "application/problem+json"


async def create(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/sessions", json={**NEW_SESSION_BODY, **overrides})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def state_body(session: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {**session["state"], **overrides}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    assert "Traceback" not in response.text
    return body


class TestCreate:
    async def test_create_answers_201_with_the_session_location_and_etag(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post("/sessions", json=NEW_SESSION_BODY)

        assert response.status_code == 201
        body = response.json()
        assert body["status"] == "active"
        assert body["version"] == 1
        assert body["ended_at"] is None
        assert body["state"] == {
            **NEW_SESSION_BODY,
            "turn_count": 0,
            "coverage_score": 0.0,
            "last_strategy": None,
            "data": {},
        }
        assert response.headers["location"] == f"/sessions/{body['id']}"
        assert response.headers["etag"] == '"1"'
        assert body["created_at"].endswith("Z")

    async def test_the_trailing_slash_form_answers_without_redirect(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post("/sessions/", json=NEW_SESSION_BODY)

        assert response.status_code == 201

    async def test_each_create_gets_a_new_id(self, client: httpx.AsyncClient) -> None:
        ids = {(await create(client))["id"] for _ in range(5)}

        assert len(ids) == 5

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"concept_id": "c", "concept_name": "n"}, "methodology"),
            ({**NEW_SESSION_BODY, "concept_name": "   "}, "concept_name"),
            ({**NEW_SESSION_BODY, "methodology": "m" * 65}, "methodology"),
            ({**NEW_SESSION_BODY, "concept_id": 12}, "concept_id"),
            ({**NEW_SESSION_BODY, "concept_name": "a\x00b"}, "concept_name"),
            ({**NEW_SESSION_BODY, "id": "chosen-by-client"}, "id"),
        ],
    )
    async def test_invalid_bodies_get_422_naming_the_field(
        self, client: httpx.AsyncClient, body: dict[str, Any], field: str
    ) -> None:
        response = await client.post("/sessions", json=body)

        problem = assert_problem(response, 422)
        assert field in {error["field"] for error in problem["errors"]}
        assert all(error["reason"] for error in problem["errors"])

    @pytest.mark.parametrize(
        "content", [b"{", b"not json", b"[]", b"null", b"", "\ufeff{}".encode()]
    )
    async def test_malformed_json_gets_422(self, client: httpx.AsyncClient, content: bytes) -> None:
        response = await client.post(
            "/sessions", content=content, headers={"content-type": "application/json"}
        )

        assert_problem(response, 422)

    async def test_a_body_over_the_limit_gets_413(self, client: httpx.AsyncClient) -> None:
        padding = "x" * MAX_BODY_BYTES
        response = await client.post("/sessions", json={**NEW_SESSION_BODY, "padding": padding})

        assert_problem(response, 413)

    async def test_a_streamed_body_over_the_limit_gets_413(self, client: httpx.AsyncClient) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(MAX_BODY_BYTES // 8192 + 1):
                yield b" " * 8192

        response = await client.post(
            "/sessions", content=chunks(), headers={"content-type": "application/json"}
        )

        assert_problem(response, 413)

    async def test_a_body_just_under_the_limit_is_read(self, client: httpx.AsyncClient) -> None:
        content = b'{"methodology":"mec","concept_id":"c","concept_name":"n"}'
        content += b" " * (MAX_BODY_BYTES - len(content))

        response = await client.post(
            "/sessions", content=content, headers={"content-type": "application/json"}
        )

        assert response.status_code == 201


class TestGet:
    async def test_get_returns_the_session_with_its_version_as_etag(
        self, client: httpx.AsyncClient
    ) -> None:
        created = await create(client)

        response = await client.get(f"/sessions/{created['id']}")

        assert response.status_code == 200
        assert response.json() == created
        assert response.headers["etag"] == '"1"'
        assert response.headers["content-type"] == "application/json"

    async def test_get_missing_gets_404(self, client: httpx.AsyncClient) -> None:
        problem = assert_problem(await client.get("/sessions/nope"), 404)

        assert problem["session_id"] == "nope"
        assert problem["code"] == "session_not_found"

    @pytest.mark.parametrize(
        "path",
        ["/sessions/" + "x" * 129, "/sessions/%00", "/sessions/'%20OR%201=1--", "/sessions/☕"],
    )
    async def test_odd_ids_get_a_4xx_problem(self, client: httpx.AsyncClient, path: str) -> None:
        response = await client.get(path)

        assert response.status_code in (404, 422)
        assert response.headers["content-type"] == PROBLEM


class TestList:
    async def test_list_returns_active_sessions_newest_first(
        self, client: httpx.AsyncClient
    ) -> None:
        first, second, paused = [await create(client) for _ in range(3)]
        await client.post(f"/sessions/{paused['id']}/pause")

        response = await client.get("/sessions")

        assert response.status_code == 200
        assert [s["id"] for s in response.json()] == [second["id"], first["id"]]
        assert "link" not in response.headers

    async def test_list_filters_by_status_methodology_and_concept(
        self, client: httpx.AsyncClient
    ) -> None:
        wanted = await create(client, methodology="zmet", concept_id="tea")
        await create(client, methodology="zmet")
        await client.post(f"/sessions/{wanted['id']}/pause")

        response = await client.get(
            "/sessions/", params={"status": "paused", "methodology": "zmet", "concept_id": "tea"}
        )

        assert [s["id"] for s in response.json()] == [wanted["id"]]

    async def test_pages_are_linked_until_the_last(self, client: httpx.AsyncClient) -> None:
        created = [(await create(client))["id"] for _ in range(7)]

        seen: list[str] = []
        url: str | None = "/sessions?limit=3"
        while url is not None:
            response = await client.get(url)
            assert response.status_code == 200
            page = [s["id"] for s in response.json()]
            assert len(page) <= 3
            seen += page
            link = response.headers.get("link")
            url = None
            if link is not None:
                target, relation = link.split(";")
                assert relation.strip() == 'rel="next"'
                url = target.strip().removeprefix("<").removesuffix(">")
                assert "limit=3" in url

        assert seen == list(reversed(created))

    @pytest.mark.parametrize(
        "query",
        [
            "status=bogus",
            "status=",
            "limit=0",
            "limit=501",
            "limit=ten",
            "limit=1e3",
            "cursor=garbage",
            "cursor=",
            "methodology=",
        ],
    )
    async def test_bad_query_values_get_422(self, client: httpx.AsyncClient, query: str) -> None:
        problem = assert_problem(await client.get(f"/sessions?{query}"), 422)

        assert problem["errors"][0]["field"] == query.split("=")[0]

    async def test_a_limit_of_500_is_accepted(self, client: httpx.AsyncClient) -> None:
        await create(client)

        assert (await client.get("/sessions?limit=500")).status_code == 200


class TestUpdateState:
    async def test_put_state_stores_it_and_bumps_the_etag(self, client: httpx.AsyncClient) -> None:
        created = await create(client)
        new_state = state_body(created, turn_count=4, coverage_score=0.75, last_strategy="ladder")

        response = await client.put(f"/sessions/{created['id']}/state", json=new_state)

        assert response.status_code == 200
        assert response.json()["state"] == new_state
        assert response.headers["etag"] == '"2"'
        assert (await client.get(f"/sessions/{created['id']}")).json() == response.json()

    async def test_put_state_with_a_matching_if_match_succeeds(
        self, client: httpx.AsyncClient
    ) -> None:
        created = await create(client)

        response = await client.put(
            f"/sessions/{created['id']}/state",
            json=state_body(created, turn_count=1),
            headers={"If-Match": '"1"'},
        )

        assert response.status_code == 200

    @pytest.mark.parametrize("if_match", ['"1"', 'W/"2"', '"2-x"', "2", '"1", "3"'])
    async def test_put_state_with_a_stale_or_unusable_if_match_gets_412(
        self, client: httpx.AsyncClient, if_match: str
    ) -> None:
        created = await create(client)
        await client.put(f"/sessions/{created['id']}/state", json=state_body(created))

        response = await client.put(
            f"/sessions/{created['id']}/state",
            json=state_body(created, turn_count=9),
            headers={"If-Match": if_match},
        )

        assert_problem(response, 412)
        current = (await client.get(f"/sessions/{created['id']}")).json()
        assert (current["version"], current["state"]["turn_count"]) == (2, 0)

    @pytest.mark.parametrize("if_match", ["*", '"7", "2"'])
    async def test_if_match_star_or_a_list_naming_the_current_version_succeeds(
        self, client: httpx.AsyncClient, if_match: str
    ) -> None:
        created = await create(client)
        await client.put(f"/sessions/{created['id']}/state", json=state_body(created))

        response = await client.put(
            f"/sessions/{created['id']}/state",
            json=state_body(created, turn_count=3),
            headers={"If-Match": if_match},
        )

        assert response.status_code == 200
        assert response.headers["etag"] == '"3"'

    async def test_put_state_naming_another_concept_gets_409(
        self, client: httpx.AsyncClient
    ) -> None:
        created = await create(client)

        response = await client.put(
            f"/sessions/{created['id']}/state", json=state_body(created, concept_id="tea")
        )

        problem = assert_problem(response, 409)
        assert problem["code"] == "session_mismatch"

    async def test_put_state_on_a_missing_session_gets_404(self, client: httpx.AsyncClient) -> None:
        response = await client.put(
            "/sessions/ghost/state", json=state_body({"state": NEW_SESSION_BODY})
        )

        assert_problem(response, 404)

    @pytest.mark.parametrize(
        "overrides",
        [
            {"turn_count": -1},
            {"turn_count": "many"},
            {"coverage_score": 1.5},
            {"coverage_score": "NaN"},
            {"last_strategy": "s" * 65},
            {"unexpected": True},
        ],
    )
    async def test_put_state_with_bad_values_gets_422(
        self, client: httpx.AsyncClient, overrides: dict[str, Any]
    ) -> None:
        created = await create(client)

        response = await client.put(
            f"/sessions/{created['id']}/state", json=state_body(created, **overrides)
        )

        assert_problem(response, 422)


class TestLifecycle:
    async def test_pause_resume_complete_then_nothing_more(self, client: httpx.AsyncClient) -> None:
        created = await create(client)
        path = f"/sessions/{created['id']}"

        paused = await client.post(f"{path}/pause")
        resumed = await client.post(f"{path}/resume")
        completed = await client.post(f"{path}/complete")
        again = await client.post(f"{path}/resume")

        assert [r.status_code for r in (paused, resumed, completed)] == [200, 200, 200]
        assert [r.json()["status"] for r in (paused, resumed, completed)] == [
            "paused",
            "active",
            "completed",
        ]
        assert completed.headers["etag"] == '"4"'
        assert completed.json()["ended_at"] == completed.json()["updated_at"]
        problem = assert_problem(again, 409)
        assert (problem["from_status"], problem["to_status"]) == ("completed", "active")

    async def test_abandon_is_final(self, client: httpx.AsyncClient) -> None:
        created = await create(client)

        abandoned = await client.post(f"/sessions/{created['id']}/abandon")
        completed = await client.post(f"/sessions/{created['id']}/complete")

        assert abandoned.json()["status"] == "abandoned"
        assert_problem(completed, 409)

    @pytest.mark.parametrize("action", ["pause", "resume", "complete", "abandon"])
    async def test_actions_on_a_missing_session_get_404(
        self, client: httpx.AsyncClient, action: str
    ) -> None:
        assert_problem(await client.post(f"/sessions/ghost/{action}"), 404)

    async def test_a_stale_if_match_gets_412(self, client: httpx.AsyncClient) -> None:
        created = await create(client)
        await client.post(f"/sessions/{created['id']}/pause")

        response = await client.post(
            f"/sessions/{created['id']}/resume", headers={"If-Match": '"1"'}
        )

        problem = assert_problem(response, 412)
        assert (problem["expected_version"], problem["actual_version"]) == (1, 2)

    async def test_a_current_if_match_is_accepted(self, client: httpx.AsyncClient) -> None:
        created = await create(client)

        response = await client.post(
            f"/sessions/{created['id']}/pause", headers={"If-Match": '"1"'}
        )

        assert response.status_code == 200


class TestDelete:
    async def test_delete_answers_204_then_the_session_is_gone(
        self, client: httpx.AsyncClient
    ) -> None:
        created = await create(client)

        response = await client.delete(f"/sessions/{created['id']}")

        assert response.status_code == 204
        assert response.content == b""
        assert_problem(await client.get(f"/sessions/{created['id']}"), 404)
        assert_problem(await client.delete(f"/sessions/{created['id']}"), 404)


class TestHealthAndErrors:
    async def test_health_is_ok_while_the_database_can_be_read(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/health")

        assert response.status_code == 200
        assert response.json()["status"] == "ok"

    async def test_health_is_503_when_the_sessions_table_is_gone(
        self, client: httpx.AsyncClient, backend: SqliteBackend | PostgresBackend
    ) -> None:
        await drop_session_tables(backend)

        response = await client.get("/health")

        assert_problem(response, 503)
        assert response.headers["retry-after"] == "1"

    @pytest.mark.sqlite
    async def test_health_is_503_when_the_database_file_is_gone(
        self, sqlite_client: httpx.AsyncClient, db_path: Path
    ) -> None:
        client = sqlite_client
        db_path.unlink()

        response = await client.get("/health")

        problem = assert_problem(response, 503)
        assert response.headers["retry-after"] == "1"
        assert str(db_path) not in response.text
        assert problem["detail"] == "The database file is missing."

    @pytest.mark.sqlite
    async def test_health_is_503_when_the_database_file_is_damaged(
        self, sqlite_client: httpx.AsyncClient, db_path: Path
    ) -> None:
        client = sqlite_client
        await create(client)
        size = db_path.stat().st_size
        db_path.write_bytes(b"\x00garbage" * (size // 8 + 1))
        for suffix in ("-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)

        response = await client.get("/health")

        assert_problem(response, 503)
        assert "sqlite" not in response.text.lower()

    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [
            ("GET", "/nowhere", 404),
            ("PATCH", "/sessions", 405),
            ("DELETE", "/sessions", 405),
            ("GET", "/sessions/x/pause", 405),
        ],
    )
    async def test_router_errors_are_problems_too(
        self, client: httpx.AsyncClient, method: str, path: str, status: int
    ) -> None:
        assert_problem(await client.request(method, path), status)

    @pytest.mark.parametrize(
        ("path", "allowed"),
        [
            ("/sessions", "GET, HEAD, POST"),
            ("/sessions/x", "DELETE, GET, HEAD, PATCH"),
            ("/sessions/x/pause", "POST"),
        ],
    )
    async def test_405_allows_every_method_the_path_serves(
        self, client: httpx.AsyncClient, path: str, allowed: str
    ) -> None:
        response = await client.request("PUT", path)

        assert_problem(response, 405)
        assert response.headers["allow"] == allowed

    async def test_openapi_lists_every_route_with_its_problem_responses(
        self, client: httpx.AsyncClient
    ) -> None:
        schema = (await client.get("/openapi.json")).json()

        paths = schema["paths"]
        assert set(paths) == {
            "/sessions",
            "/sessions/{session_id}",
            "/sessions/{session_id}/state",
            "/sessions/{session_id}/pause",
            "/sessions/{session_id}/resume",
            "/sessions/{session_id}/complete",
            "/sessions/{session_id}/abandon",
            "/sessions/{session_id}/utterances",
            "/sessions/{session_id}/turns",
            "/sessions/{session_id}/export",
            "/sessions/{session_id}/versions",
            "/sessions/{session_id}/versions/{version}",
            "/sessions/{session_id}/fork",
            "/sessions/{session_id}/graph",
            "/sessions/{session_id}/graph/similar",
            "/studies/{study_id}",
            "/studies/{study_id}/export",
            "/health",
            "/search",
            "/audit",
            "/events",
            "/participants/{participant_id}",
        }
        assert set(paths["/sessions/{session_id}/resume"]) == {"get", "post"}
        put_state = paths["/sessions/{session_id}/state"]["put"]["responses"]
        assert {"200", "404", "409", "412", "422"} <= put_state.keys()
        assert PROBLEM in put_state["412"]["content"]
        assert (await client.get("/docs")).status_code == 200

    async def test_sessions_written_through_http_are_in_the_database(
        self, client: httpx.AsyncClient, backend: SqliteBackend | PostgresBackend
    ) -> None:
        created = await create(client)

        row = await backend.fetch_one(
            f"SELECT status, version FROM sessions WHERE id = '{created['id']}'"
        )

        assert row == {"status": "active", "version": 1}
