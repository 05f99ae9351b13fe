"""Utterances, turns, resume and export over HTTP, on every backend."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest

from src.domain.export import CSV_COLUMNS, EXPORT_FORMAT_VERSION, parse_json_export
from tests.integration.test_sessions_api import assert_problem, create, state_body


def utterance(turn: int, speaker: str, text: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"turn_number": turn, "speaker": speaker, "text": text or f"{speaker} {turn}", **extra}


async def turn(
    client: httpx.AsyncClient,
    session: dict[str, Any],
    number: int,
    question: str,
    answer: str,
    **state: Any,
) -> httpx.Response:
    body = {
        "utterances": [
            utterance(number, "interviewer", question),
            utterance(number, "respondent", answer),
        ],
        "state": state_body(session, turn_count=number, **state),
    }
    return await client.post(
        f"/sessions/{session['id']}/turns",
        json=body,
        headers={"If-Match": f'"{session["version"]}"'},
    )


async def test_a_scripted_interview_from_start_to_export(client: httpx.AsyncClient) -> None:
    session = await create(client)
    script = [
        ("What do you look for in a coffee?", "Something strong, to wake me up."),
        ("Why does waking up matter to you?", "I start work early.\nMy team counts on me."),
        ("What does being counted on give you?", "A sense of belonging, I'd say."),
        ("And why is belonging important?", "It's what makes the effort worth it."),
        ("Anything else about coffee?", 'Only that "good" coffee is personal; 🎉'),
    ]
    expected: list[tuple[int, str, str]] = []

    for number, (question, answer) in enumerate(script[:2], start=1):
        response = await turn(client, session, number, question, answer, coverage_score=number / 10)
        assert response.status_code == 201, response.text
        session = response.json()["session"]
        assert response.headers["etag"] == f'"{session["version"]}"'
        expected += [(number, "interviewer", question), (number, "respondent", answer)]

    session = (await client.post(f"/sessions/{session['id']}/pause")).json()
    assert session["status"] == "paused"
    context = (await client.get(f"/sessions/{session['id']}/resume", params={"last": 3})).json()
    assert context["session"] == session
    assert [(u["turn_number"], u["speaker"], u["text"]) for u in context["utterances"]] == expected[
        -3:
    ]
    session = (await client.post(f"/sessions/{session['id']}/resume")).json()
    assert session["status"] == "active"

    for number, (question, answer) in enumerate(script[2:], start=3):
        response = await turn(client, session, number, question, answer, last_strategy="ladder_up")
        assert response.status_code == 201, response.text
        session = response.json()["session"]
        expected += [(number, "interviewer", question), (number, "respondent", answer)]
    session = (await client.post(f"/sessions/{session['id']}/complete")).json()
    assert session["status"] == "completed"
    assert session["state"]["turn_count"] == len(script)

    exported = await client.get(f"/sessions/{session['id']}/export", params={"format": "json"})
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/json"
    document = exported.json()
    assert document["format_version"] == EXPORT_FORMAT_VERSION
    stored_session, utterances = parse_json_export(exported.text)
    assert stored_session.model_dump(mode="json") == session
    assert [(u.turn_number, u.speaker.value, u.text) for u in utterances] == expected

    as_csv = await client.get(f"/sessions/{session['id']}/export", params={"format": "csv"})
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(int(r["turn_number"]), r["speaker"], r["text"]) for r in rows] == expected
    assert {r["session_id"] for r in rows} == {session["id"]}
    assert {r["status"] for r in rows} == {"completed"}
    assert {r["session_ended_at"] for r in rows} != {""}

    as_markdown = await client.get(
        f"/sessions/{session['id']}/export", params={"format": "markdown"}
    )
    assert as_markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    markdown = as_markdown.text
    assert markdown.startswith(f"# Interview session {session['id']}\n")
    position = 0
    for number, speaker, text in expected:
        if speaker == "interviewer":
            position = markdown.index(f"### Turn {number}\n", position)
        first_line = text.splitlines()[0]
        position = markdown.index(f"**{speaker.capitalize()}:** {first_line}", position)
    assert "My team counts on me." in markdown

    refused = await client.post(
        f"/sessions/{session['id']}/utterances", json=utterance(6, "interviewer")
    )
    assert assert_problem(refused, 409)["code"] == "session_ended"


class TestUtterances:
    async def test_append_then_list_with_pages(self, client: httpx.AsyncClient) -> None:
        session = await create(client)
        for number in range(1, 4):
            for speaker in ("interviewer", "respondent"):
                response = await client.post(
                    f"/sessions/{session['id']}/utterances", json=utterance(number, speaker)
                )
                assert response.status_code == 201, response.text

        first = await client.get(f"/sessions/{session['id']}/utterances", params={"limit": 4})
        link = first.headers["link"]
        assert link.endswith('>; rel="next"')
        second = await client.get(link[1 : link.index(">")])

        texts = [u["text"] for u in first.json() + second.json()]
        assert texts == [f"{s} {n}" for n in range(1, 4) for s in ("interviewer", "respondent")]
        assert "link" not in second.headers

    async def test_after_turn(self, client: httpx.AsyncClient) -> None:
        session = await create(client)
        for number in range(3):
            await client.post(
                f"/sessions/{session['id']}/utterances", json=utterance(number, "respondent")
            )

        listed = await client.get(f"/sessions/{session['id']}/utterances", params={"after_turn": 0})

        assert [u["turn_number"] for u in listed.json()] == [1, 2]

    async def test_a_duplicate_is_409(self, client: httpx.AsyncClient) -> None:
        session = await create(client)
        path = f"/sessions/{session['id']}/utterances"
        await client.post(path, json=utterance(1, "respondent"))

        problem = assert_problem(await client.post(path, json=utterance(1, "respondent")), 409)

        assert problem["code"] == "utterance_exists"
        assert (problem["turn_number"], problem["speaker"]) == (1, "respondent")

    @pytest.mark.parametrize(
        "body",
        [
            utterance(1, "narrator"),
            utterance(-1, "respondent"),
            {"turn_number": 1, "speaker": "respondent", "text": ""},
            {"turn_number": 1, "speaker": "respondent", "text": "x" * 20_001},
            utterance(1, "respondent", metadata={"big": "x" * 16_400}),
            utterance(1, "respondent", extra_field=True),
        ],
    )
    async def test_bad_utterances_are_422(
        self, client: httpx.AsyncClient, body: dict[str, Any]
    ) -> None:
        session = await create(client)

        response = await client.post(f"/sessions/{session['id']}/utterances", json=body)

        assert_problem(response, 422)

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/sessions/nobody/utterances"),
            ("GET", "/sessions/nobody/utterances"),
            ("POST", "/sessions/nobody/turns"),
            ("GET", "/sessions/nobody/resume"),
            ("GET", "/sessions/nobody/export"),
        ],
    )
    async def test_a_missing_session_is_404(
        self, client: httpx.AsyncClient, method: str, path: str
    ) -> None:
        session = await create(client)
        body = None
        if path.endswith("/utterances"):
            body = utterance(1, "respondent")
        elif path.endswith("/turns"):
            body = {"utterances": [utterance(1, "respondent")], "state": state_body(session)}

        response = await client.request(method, path, json=body)

        assert_problem(response, 404)


class TestTurns:
    async def test_a_stale_if_match_is_412_and_stores_nothing(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create(client)
        session["version"] = 7

        response = await turn(client, session, 1, "Q?", "A.")

        assert_problem(response, 412)
        assert (await client.get(f"/sessions/{session['id']}/utterances")).json() == []

    async def test_a_state_for_another_concept_is_409_and_stores_nothing(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create(client)
        body = {
            "utterances": [utterance(1, "respondent")],
            "state": state_body(session, concept_id="tea"),
        }

        response = await client.post(f"/sessions/{session['id']}/turns", json=body)

        assert assert_problem(response, 409)["code"] == "session_mismatch"
        assert (await client.get(f"/sessions/{session['id']}/utterances")).json() == []

    @pytest.mark.parametrize("count", [0, 11])
    async def test_a_turn_has_one_to_ten_utterances(
        self, client: httpx.AsyncClient, count: int
    ) -> None:
        session = await create(client)
        body = {
            "utterances": [utterance(n, "respondent") for n in range(count)],
            "state": state_body(session),
        }

        assert_problem(await client.post(f"/sessions/{session['id']}/turns", json=body), 422)


class TestExport:
    @pytest.mark.parametrize("export_format", ["json", "markdown", "csv"])
    async def test_an_empty_transcript_exports(
        self, client: httpx.AsyncClient, export_format: str
    ) -> None:
        session = await create(client)

        response = await client.get(
            f"/sessions/{session['id']}/export", params={"format": export_format}
        )

        assert response.status_code == 200
        assert response.headers["content-disposition"].startswith("attachment; filename=")
        if export_format == "json":
            assert parse_json_export(response.text)[1] == []
        elif export_format == "csv":
            assert list(csv.reader(io.StringIO(response.text))) == [list(CSV_COLUMNS)]
        else:
            assert "No utterances were recorded" in response.text

    async def test_an_unknown_format_is_422(self, client: httpx.AsyncClient) -> None:
        session = await create(client)

        response = await client.get(f"/sessions/{session['id']}/export", params={"format": "pdf"})

        assert_problem(response, 422)

    async def test_hostile_text_survives_every_format(self, client: httpx.AsyncClient) -> None:
        session = await create(client)
        text = 'Line one,\n"quoted", with; commas\r\nand **bold** # not a heading\u2028🎉'
        await client.post(
            f"/sessions/{session['id']}/utterances", json=utterance(1, "respondent", text)
        )

        as_json = await client.get(f"/sessions/{session['id']}/export")
        as_csv = await client.get(f"/sessions/{session['id']}/export", params={"format": "csv"})

        assert parse_json_export(as_json.text)[1][0].text == text
        (row,) = csv.DictReader(io.StringIO(as_csv.text, newline=""))
        assert row["text"] == text


async def test_markdown_export_keeps_said_words_from_becoming_markup(
    client: httpx.AsyncClient,
) -> None:
    session = await create(client)
    text = "Why?\n# Because\n- I said so\n2. twice\n> quoted"
    await client.post(
        f"/sessions/{session['id']}/utterances", json=utterance(1, "respondent", text)
    )

    markdown = (
        await client.get(f"/sessions/{session['id']}/export", params={"format": "markdown"})
    ).text

    lines = markdown.splitlines()
    start = lines.index("**Respondent:** Why?\\")
    assert lines[start + 1 : start + 5] == [
        "\\# Because\\",
        "\\- I said so\\",
        "2\\. twice\\",
        "\\> quoted",
    ]
