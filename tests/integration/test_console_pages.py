"""The console's pages over HTTP, with no API key set: lists, filters, a session, escaping, 404."""

from __future__ import annotations

import html
import io
import re
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from src.api.console.routes import SESSIONS_PAGE_SIZE
from src.core.config import Settings
from src.domain.export import ExportFormat
from src.persistence.pagination import MAX_PAGE_SIZE
from tests.backends import SqliteBackend
from tests.http import serve_in_process

pytestmark = pytest.mark.sqlite

HOSTILE = "<script>alert(1)</script>"
STATE = {"methodology": "mec", "concept_id": "coffee-01", "concept_name": "Coffee"}


@pytest.fixture
async def console(sqlite_backend: SqliteBackend) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(sqlite_backend.settings()) as http:
        yield http


async def create(
    client: httpx.AsyncClient, concept_id: str = "coffee-01", methodology: str = "mec", **more: str
) -> str:
    body = {"methodology": methodology, "concept_id": concept_id, "concept_name": "Coffee", **more}
    created = await client.post("/sessions", json=body)
    assert created.status_code == 201, created.text
    session_id: str = created.json()["id"]
    return session_id


def linked_sessions(page: str) -> list[str]:
    return re.findall(r'href="/console/sessions/([^"]+)"', page)


def first_turn_quoting(said: str, quote: str, *, label: str) -> dict[str, Any]:
    """A turn 1 whose respondent says `said`, and a node `a` citing `quote` in it."""
    start = said.index(quote)
    span = {"turn_number": 1, "speaker": "respondent", "start": start, "end": start + len(quote)}
    node = {"id": "a", "type": "attribute", "label": label, "provenance": [span]}
    return {
        "utterances": [{"turn_number": 1, "speaker": "respondent", "text": said}],
        "state_patch": {"turn_count": 1},
        "graph": {"nodes": [node]},
    }


async def test_the_root_leads_to_the_console(console: httpx.AsyncClient) -> None:
    root = await console.get("/")

    assert (root.status_code, root.headers["location"]) == (307, "/console")


async def test_the_sessions_page_filters_by_status_methodology_and_concept(
    console: httpx.AsyncClient,
) -> None:
    coffee = await create(console, "coffee-01", "mec")
    tea = await create(console, "tea-01", "zmet")
    paused = await create(console, "coffee-01", "mec")
    assert (await console.post(f"/sessions/{paused}/pause")).status_code == 200

    everything = await console.get("/console")
    active = await console.get("/console", params={"status": "active"})
    by_methodology = await console.get("/console", params={"status": "all", "methodology": "zmet"})
    by_concept = await console.get(
        "/console", params={"status": "all", "methodology": "", "concept_id": "coffee-01"}
    )

    assert everything.status_code == 200
    assert everything.headers["content-type"] == "text/html; charset=utf-8"
    assert linked_sessions(everything.text) == [paused, tea, coffee]
    assert linked_sessions(active.text) == [tea, coffee]
    assert linked_sessions(by_methodology.text) == [tea]
    assert linked_sessions(by_concept.text) == [paused, coffee]
    # The form shows the filters in force.
    assert '<option value="all" selected>' in by_concept.text
    assert 'value="coffee-01"' in by_concept.text


async def test_the_sessions_page_walks_the_listing_with_its_cursors(
    console: httpx.AsyncClient,
) -> None:
    created = [await create(console, "paged") for _ in range(SESSIONS_PAGE_SIZE + 3)]

    first = await console.get("/console", params={"concept_id": "paged"})
    next_link = re.search(r'<a rel="next" href="\?([^"]+)"', first.text)
    assert next_link is not None
    second = await console.get(f"/console?{html.unescape(next_link.group(1))}")

    assert second.status_code == 200
    assert linked_sessions(first.text) + linked_sessions(second.text) == created[::-1]
    assert 'rel="next"' not in second.text
    assert 'href="?status=all&amp;concept_id=paged">First page' in second.text


@pytest.mark.parametrize(
    "query",
    [
        {"status": "finished"},
        {"colour": "blue"},
        {"cursor": "not-a-cursor"},
        {"methodology": "m" * 65},
    ],
)
async def test_a_bad_or_unknown_filter_is_a_422(
    console: httpx.AsyncClient, query: dict[str, str]
) -> None:
    refused = await console.get("/console", params=query)

    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"


async def test_a_session_page_shows_the_session_its_state_transcript_and_exports(
    console: httpx.AsyncClient,
) -> None:
    session_id = await create(console, "coffee-01")
    turn = {
        "utterances": [
            {"turn_number": 1, "speaker": "interviewer", "text": "What do you look for?"},
            {"turn_number": 1, "speaker": "respondent", "text": "Something to wake me up."},
        ],
        "state": {
            "methodology": "mec",
            "concept_id": "coffee-01",
            "concept_name": "Coffee",
            "turn_count": 1,
            "coverage_score": 0.35,
            "last_strategy": "ladder_up",
        },
    }
    assert (await console.post(f"/sessions/{session_id}/turns", json=turn)).status_code == 201

    page = await console.get(f"/console/sessions/{session_id}")

    assert page.status_code == 200
    text = page.text
    assert f"<code>{session_id}</code>" in text
    assert '<span class="status status--active">active</span>' in text
    assert "<dt>Version</dt><dd>2</dd>" in text
    for label, value in [
        ("Turn count", "1"),
        ("Coverage score", "0.35"),
        ("Last strategy", "ladder_up"),
    ]:
        assert re.search(rf"<dt>{label}</dt>\s*<dd>{re.escape(value)}</dd>", text), label
    assert text.index("What do you look for?") < text.index("Something to wake me up.")
    assert '<span class="utterance__speaker">Interviewer</span> · turn 1' in text
    assert '<span class="utterance__speaker">Respondent</span> · turn 1' in text
    for export_format in ExportFormat:
        link = f'href="/sessions/{session_id}/export?format={export_format.value}"'
        assert link in text, export_format
    assert f'data-events="/events?session_id={session_id}"' in text


async def test_every_export_link_on_a_session_page_answers(console: httpx.AsyncClient) -> None:
    session_id = await create(console)
    said = {"turn_number": 1, "speaker": "respondent", "text": "Strong and black."}
    assert (await console.post(f"/sessions/{session_id}/utterances", json=said)).status_code == 201
    page = await console.get(f"/console/sessions/{session_id}")
    links = re.findall(r'href="(/sessions/[^"]+/export[^"]*)"', page.text)

    assert len(links) == len(ExportFormat)
    for link in links:
        exported = await console.get(html.unescape(link))
        assert exported.status_code == 200, link
        text = exported.text
        if link.endswith("format=qdpx"):  # a zip: its project and its text source
            archive = zipfile.ZipFile(io.BytesIO(exported.content))
            text = "".join(archive.read(name).decode() for name in archive.namelist())
        assert session_id in text
        if not link.endswith("format=graphml"):  # the graph alone, with no graph yet
            assert "Strong and black." in text


async def test_pseudonymised_exports_are_offered_when_the_server_has_a_pseudonym_key(
    sqlite_backend: SqliteBackend,
) -> None:
    settings = Settings(
        database_path=sqlite_backend.path, database_url=None, pseudonym_key="p" * 32
    )
    async with serve_in_process(settings) as client:
        session_id = await create(client)
        page = await client.get(f"/console/sessions/{session_id}")

    for export_format in ExportFormat:
        link = f"/sessions/{session_id}/export?format={export_format.value}&amp;pseudonymize=true"
        assert f'href="{link}"' in page.text


async def test_everything_a_client_wrote_is_escaped(console: httpx.AsyncClient) -> None:
    session_id = await create(console, concept_id=HOSTILE, concept_name=HOSTILE)
    appended = await console.post(
        f"/sessions/{session_id}/utterances",
        json={"turn_number": 1, "speaker": "respondent", "text": HOSTILE},
    )
    assert appended.status_code == 201

    listing = await console.get("/console")
    page = await console.get(f"/console/sessions/{session_id}")

    escaped = html.escape(HOSTILE, quote=False)
    for shown in (listing.text, page.text):
        assert HOSTILE not in shown
        assert escaped in shown
    assert f'<p class="utterance__text">{escaped}</p>' in page.text


async def test_a_final_session_is_not_watched_live(console: httpx.AsyncClient) -> None:
    session_id = await create(console)
    assert (await console.post(f"/sessions/{session_id}/complete")).status_code == 200

    page = await console.get(f"/console/sessions/{session_id}")

    assert page.status_code == 200
    assert "data-events" not in page.text
    assert "live.js" not in page.text


async def test_an_unknown_session_is_a_404_page(console: httpx.AsyncClient) -> None:
    missing = await console.get("/console/sessions/no-such-session")

    assert missing.status_code == 404
    assert missing.headers["content-type"] == "text/html; charset=utf-8"
    assert "<code>no-such-session</code>" in missing.text


async def test_pages_load_nothing_from_elsewhere_and_are_not_cached(
    console: httpx.AsyncClient,
) -> None:
    session_id = await create(console)
    for path in ("/console", f"/console/sessions/{session_id}", "/console/sessions/missing"):
        page = await console.get(path)
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src 'self';" in policy
        assert "unsafe-inline" not in policy
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-content-type-options"] == "nosniff"
        assets = re.findall(r'(?:href|src)="(/console/static/[^"]+)"', page.text)
        assert assets, path
        for asset in assets:
            assert (await console.get(asset)).status_code == 200, asset
        assert not re.search(r'(?:href|src)="(?:https?:)?//', page.text)


async def test_head_answers_like_get_on_the_pages(console: httpx.AsyncClient) -> None:
    session_id = await create(console)

    for path in ("/console", f"/console/sessions/{session_id}"):
        got = await console.get(path)
        head = await console.head(path)
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-length"] == got.headers["content-length"]


async def test_a_long_transcript_is_read_a_page_at_a_time(console: httpx.AsyncClient) -> None:
    session_id = await create(console)
    for number in range(1, MAX_PAGE_SIZE // 2 + 2):
        said = [
            {"turn_number": number, "speaker": speaker, "text": f"{speaker} {number}"}
            for speaker in ("interviewer", "respondent")
        ]
        appended = await console.post(
            f"/sessions/{session_id}/turns",
            json={"utterances": said, "state": {**STATE, "turn_count": number}},
        )
        assert appended.status_code == 201

    first = await console.get(f"/console/sessions/{session_id}")
    later = re.search(r'<a rel="next" href="\?([^"]+)">Later turns', first.text)
    assert later is not None
    second = await console.get(f"/console/sessions/{session_id}?{html.unescape(later.group(1))}")

    said_first = re.findall(r'<p class="utterance__text">([^<]+)</p>', first.text)
    said_second = re.findall(r'<p class="utterance__text">([^<]+)</p>', second.text)
    assert len(said_first) == MAX_PAGE_SIZE
    assert said_first[-1] == f"respondent {MAX_PAGE_SIZE // 2}"
    assert said_second == [
        f"{speaker} {MAX_PAGE_SIZE // 2 + 1}" for speaker in ("interviewer", "respondent")
    ]
    # Only the last page grows live, and a later page leads back to the first.
    assert "data-events" not in first.text
    assert "data-events" in second.text
    assert f'href="/console/sessions/{session_id}">From the first turn' in second.text
    assert 'rel="next"' not in second.text


async def test_the_sessions_page_answers_with_a_trailing_slash(console: httpx.AsyncClient) -> None:
    session_id = await create(console)

    page = await console.get("/console/")

    assert page.status_code == 200
    assert linked_sessions(page.text) == [session_id]


async def test_the_sessions_page_shows_studies_and_filters_by_study_label_and_day(
    console: httpx.AsyncClient,
) -> None:
    first = await create(console, study_id="study-a", participant_id="p-1")
    second = await create(console, study_id="study-b", labels={"run": "synthetic"})  # type: ignore[arg-type]
    await create(console)
    turn = await console.post(
        f"/sessions/{first}/turns",
        json={
            "utterances": [{"turn_number": 1, "speaker": "respondent", "text": "Fine."}],
            "state_patch": {"turn_count": 1},
            "record": {"usage": {"input_tokens": 120, "output_tokens": 30}},
        },
    )
    assert turn.status_code == 201, turn.text

    page = (await console.get("/console")).text
    studies = page[page.index('id="studies-heading"') : page.index("</section>")]
    assert "study-a" in studies and "study-b" in studies
    assert "120 / 30" in studies
    assert "/studies/study-a/export?format=qdpx" in studies

    by_study = (await console.get("/console", params={"study_id": "study-a"})).text
    assert linked_sessions(by_study) == [first]
    by_label = (await console.get("/console", params={"label": "run:synthetic"})).text
    assert linked_sessions(by_label) == [second]
    today = (await console.get(f"/sessions/{first}")).json()["created_at"][:10]
    same_day = await console.get("/console", params={"created_from": today, "created_to": today})
    assert len(linked_sessions(same_day.text)) == 3
    before = await console.get("/console", params={"created_to": "2000-01-01"})
    assert linked_sessions(before.text) == []


@pytest.mark.parametrize(
    "params",
    [{"label": "no-colon"}, {"created_from": "yesterday"}, {"study_id": "x" * 129}],
)
async def test_a_bad_filter_is_a_422(console: httpx.AsyncClient, params: dict[str, str]) -> None:
    assert (await console.get("/console", params=params)).status_code == 422


async def test_the_session_page_shows_participant_usage_history_and_graph_with_quotes(
    console: httpx.AsyncClient,
) -> None:
    session_id = await create(
        console,
        study_id="study-a",
        participant_id="p-1",
        labels={"wave": HOSTILE},  # type: ignore[arg-type]
    )
    quote = "keeps me awake"
    body = first_turn_quoting("It keeps me awake at night.", quote, label=HOSTILE)
    body["record"] = {"usage": {"input_tokens": 7, "output_tokens": 3}}
    body["graph"]["nodes"].append({"id": "c", "type": "consequence", "label": "rested"})
    body["graph"]["edges"] = [{"id": "e", "source": "a", "target": "c", "type": "leads_to"}]
    turn = await console.post(f"/sessions/{session_id}/turns", json=body)
    assert turn.status_code == 201, turn.text

    page = (await console.get(f"/console/sessions/{session_id}")).text

    assert HOSTILE not in page
    assert html.escape(HOSTILE, quote=False) in page
    assert "p-1" in page and "7 / 3" in page
    history = page[page.index('id="history-heading"') :]
    assert "created" in history and "turn recorded, turn 1" in history
    assert f"<q>{quote}</q>" in page
    assert page.count('class="graph-edge"') == 1 and page.count("<circle") == 2
    assert "leads_to" in page


async def test_the_session_page_shows_the_start_of_a_long_quote(
    console: httpx.AsyncClient,
) -> None:
    # A node may cite a long answer many times: the page shows each quote's start.
    session_id = await create(console)
    said = "coffee " * 2800
    body = first_turn_quoting(said, said.strip(), label="long")
    body["graph"]["nodes"][0]["provenance"] *= 50
    turn = await console.post(f"/sessions/{session_id}/turns", json=body)
    assert turn.status_code == 201, turn.text

    page = (await console.get(f"/console/sessions/{session_id}")).text

    assert page.count(f"<q>{said[:300]}…</q>") == 50
    assert len(page) < 2 * len(said) + 100_000


async def test_the_search_page_finds_what_was_said_and_marks_it_safely(
    console: httpx.AsyncClient,
) -> None:
    session_id = await create(console, study_id="study-a")
    said = f"Coffee keeps me awake {HOSTILE}"
    appended = await console.post(
        f"/sessions/{session_id}/utterances",
        json={"turn_number": 1, "speaker": "respondent", "text": said},
    )
    assert appended.status_code == 201, appended.text

    empty = await console.get("/console/search")
    found = await console.get("/console/search", params={"q": "awake", "study_id": "study-a"})
    elsewhere = await console.get("/console/search", params={"q": "awake", "study_id": "other"})
    blank = await console.get("/console/search", params={"q": '"'})

    assert empty.status_code == 200 and 'id="q"' in empty.text
    assert found.status_code == 200
    assert linked_sessions(found.text) == [session_id]
    assert "<mark>awake</mark>" in found.text
    assert HOSTILE not in found.text and html.escape(HOSTILE, quote=False) in found.text
    assert linked_sessions(elsewhere.text) == [] and "Nothing said matches." in elsewhere.text
    assert blank.status_code == 422 and 'role="alert"' in blank.text


async def test_quotes_are_found_beyond_the_transcript_page_shown(
    console: httpx.AsyncClient,
) -> None:
    session_id = await create(console)
    quote = "crema"
    body = first_turn_quoting("The crema matters most.", quote, label="crema")
    turn = await console.post(f"/sessions/{session_id}/turns", json=body)
    assert turn.status_code == 201, turn.text
    for number in range(2, 2 + MAX_PAGE_SIZE):
        said_later = {"turn_number": number, "speaker": "respondent", "text": f"More {number}."}
        assert (
            await console.post(f"/sessions/{session_id}/utterances", json=said_later)
        ).is_success

    first = (await console.get(f"/console/sessions/{session_id}")).text
    later_link = re.search(r'rel="next" href="([^"]+)"', first)
    assert later_link is not None
    later = (
        await console.get(f"/console/sessions/{session_id}{html.unescape(later_link.group(1))}")
    ).text

    assert f"<q>{quote}</q>" in first and f"<q>{quote}</q>" in later
