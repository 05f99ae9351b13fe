"""GET /search over HTTP, on every backend: pages, refusals, and no 500 for any text."""

from __future__ import annotations

import asyncio
import re
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.backends import PostgresBackend, SqliteBackend
from tests.http import serve_in_process
from tests.integration.test_search import HOSTILE_QUERIES
from tests.integration.test_sessions_api import assert_problem, create

_NEXT = re.compile(r'<([^>]+)>; rel="next"')


async def say(client: httpx.AsyncClient, session: dict[str, Any], *texts: str) -> None:
    for number, text in enumerate(texts, start=1):
        response = await client.post(
            f"/sessions/{session['id']}/utterances",
            json={"turn_number": number, "speaker": "respondent", "text": text},
        )
        assert response.status_code == 201, response.text


async def test_search_answers_hits_with_marked_snippets(client: httpx.AsyncClient) -> None:
    session = await create(client)
    await say(client, session, "I love a Café au lait", "tea, please")

    response = await client.get("/search", params={"q": "CAFE"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert "link" not in response.headers
    (hit,) = response.json()
    assert hit == {
        "session_id": session["id"],
        "study_id": None,
        "participant_id": None,
        "turn_number": 1,
        "speaker": "respondent",
        "snippet": "I love a <mark>Café</mark> au lait",
        "rank": hit["rank"],
    }
    assert isinstance(hit["rank"], float) and hit["rank"] > 0


async def test_the_link_header_walks_every_hit_once(client: httpx.AsyncClient) -> None:
    session = await create(client)
    await say(client, session, *[f"coffee number {n} {'more ' * (n % 4)}" for n in range(12)])

    turns: list[int] = []
    url: str | None = "/search?q=coffee&limit=5&speaker=respondent"
    pages = 0
    while url is not None:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        turns += [hit["turn_number"] for hit in response.json()]
        link = _NEXT.search(response.headers.get("link", ""))
        url = link.group(1) if link else None
        pages += 1

    assert pages == 3
    assert sorted(turns) == list(range(1, 13))


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({}, "q", "Field required"),
        ({"q": ""}, "q", "at least 1 character"),
        ({"q": "   "}, "q", "blank"),
        ({"q": "x" * 501}, "q", "at most 500 characters"),
        ({"q": '"'}, "q", "no word to look for"),
        ({"q": "( - * : ^ )"}, "q", "no word to look for"),
        ({"q": "coffee", "limit": "0"}, "limit", "greater than or equal to 1"),
        ({"q": "coffee", "speaker": "narrator"}, "speaker", "interviewer"),
        ({"q": "coffee", "cursor": "forged.cursor"}, "cursor", "not valid"),
    ],
)
async def test_bad_searches_are_a_422_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, str], field: str, reason: str
) -> None:
    body = assert_problem(await client.get("/search", params=params), 422)

    (error,) = body["errors"]
    assert error["field"] == field
    assert reason in error["reason"]


@pytest.mark.parametrize("query", [query for query in HOSTILE_QUERIES if "\ud800" not in query])
async def test_hostile_queries_answer_200_or_422(client: httpx.AsyncClient, query: str) -> None:
    session = await create(client)
    await say(client, session, "strong coffee, NEAR the text: 2 ^ 3 - 1 = 7 'quoted'")

    response = await client.get("/search", params={"q": query})

    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert "no word to look for" in response.json()["detail"]


def test_any_text_searched_for_is_never_a_500(backend: SqliteBackend | PostgresBackend) -> None:
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        client = runner.run(stack.enter_async_context(serve_in_process(backend.settings())))
        try:
            session = runner.run(create(client))
            runner.run(say(client, session, "strong coffee, NEAR the text: 2 ^ 3 - 1 'q' café"))

            @settings(
                max_examples=150,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture],
            )
            @given(
                st.text(max_size=80) | st.text(alphabet="\"*-:^()NEAR ,+|&!<>\\'~a", max_size=30)
            )
            def search_for(text: str) -> None:
                response = runner.run(client.get("/search", params={"q": text}))
                assert response.status_code in (200, 422), (text, response.text)

            search_for()
        finally:
            runner.run(stack.aclose())
