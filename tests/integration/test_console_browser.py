"""The console in a real browser, against a real server: key, filters, transcript, escaping."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, Route, ViewportSize

from tests.browser import LoopbackOnly, api_with_key, loopback_page, server_with_key

pytestmark = pytest.mark.sqlite

KEY = "c" * 24
HOSTILE = "<script>alert(1)</script>"
PHONE = ViewportSize(width=375, height=740)
DESKTOP = ViewportSize(width=1280, height=800)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server with an API key, so that the console must ask for it."""
    with server_with_key(tmp_path_factory, "console", KEY) as url:
        yield url


def api(server: str) -> httpx.Client:
    return api_with_key(server, KEY)


def new_session(server: str, concept_id: str, methodology: str, concept_name: str) -> str:
    with api(server) as http:
        created = http.post(
            "/sessions",
            json={
                "methodology": methodology,
                "concept_id": concept_id,
                "concept_name": concept_name,
            },
        )
    assert created.status_code == 201, created.text
    session_id: str = created.json()["id"]
    return session_id


def record_turn(server: str, session_id: str, number: int, asked: str, answered: str) -> None:
    with api(server) as http:
        session = http.get(f"/sessions/{session_id}").json()
        recorded = http.post(
            f"/sessions/{session_id}/turns",
            json={
                "utterances": [
                    {"turn_number": number, "speaker": "interviewer", "text": asked},
                    {"turn_number": number, "speaker": "respondent", "text": answered},
                ],
                "state": {**session["state"], "turn_count": number},
            },
        )
    assert recorded.status_code == 201, recorded.text


def enter_key(page: Page, server: str, path: str = "/console") -> None:
    page.goto(f"{server}{path}")
    assert page.url.startswith(f"{server}/console/key?next=")
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Open the console").click()
    page.wait_for_url(f"{server}{path}")


def refuse(dialog: Dialog, seen: list[str]) -> None:
    seen.append(dialog.message)
    dialog.dismiss()


def assert_only_the_server_was_asked(guard: LoopbackOnly, server: str) -> None:
    assert guard.blocked == []
    assert guard.requested
    assert all(url.startswith(f"{server}/") for url in guard.requested), guard.requested


def test_a_researcher_enters_the_key_filters_sessions_and_reads_a_transcript(
    browser: Browser, server: str, tmp_path: Path
) -> None:
    coffee = new_session(server, "coffee-filter", "mec", "Filter coffee")
    record_turn(server, coffee, 1, "What do you look for in a coffee?", "Something strong.")
    record_turn(server, coffee, 2, "Why does that matter?", "I start work early.")
    tea = new_session(server, "tea-filter", "zmet", "Green tea")

    with loopback_page(browser) as (page, guard):
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.set_viewport_size(DESKTOP)
        enter_key(page, server)
        assert page.get_by_role("link", name="Green tea").is_visible()

        page.get_by_label("Methodology").fill("mec")
        page.get_by_label("Concept id").fill("coffee-filter")
        page.get_by_label("Status").select_option("all")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(
            "**/console?status=all&methodology=mec&concept_id=coffee-filter&study_id=*"
        )

        rows = page.locator("table.sessions tbody tr")
        assert rows.count() == 1
        assert page.get_by_role("link", name="Green tea").count() == 0
        page.get_by_role("link", name="Filter coffee").click()
        page.wait_for_url(f"{server}/console/sessions/{coffee}")

        assert page.get_by_role("heading", level=1).inner_text() == "Filter coffee"
        assert coffee in page.locator("dl.facts").first.inner_text()
        said = page.locator("#transcript li")
        assert said.locator(".utterance__text").all_inner_texts() == [
            "What do you look for in a coffee?",
            "Something strong.",
            "Why does that matter?",
            "I start work early.",
        ]
        assert (
            said.locator(".utterance__speaker").all_inner_texts()
            == [
                "Interviewer",
                "Respondent",
            ]
            * 2
        )

        # An export link works with the key the cookie keeps.
        with page.expect_download() as download:
            page.get_by_role("link", name="CSV").click()
        saved = tmp_path / "export.csv"
        download.value.save_as(saved)
        assert "I start work early." in saved.read_text()
        assert errors == []

    assert tea not in "".join(guard.requested)
    assert_only_the_server_was_asked(guard, server)


def test_a_transcript_holding_a_script_shows_it_as_text_and_runs_nothing(
    browser: Browser, server: str
) -> None:
    session_id = new_session(server, "xss-check", "mec", HOSTILE)
    record_turn(server, session_id, 1, HOSTILE, f'<img src=x onerror="alert(2)">{HOSTILE}')

    with loopback_page(browser) as (page, guard):
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: refuse(dialog, dialogs))
        enter_key(page, server, f"/console/sessions/{session_id}")
        page.wait_for_load_state("networkidle")

        texts = page.locator("#transcript .utterance__text").all_inner_texts()
        assert texts == [HOSTILE, f'<img src=x onerror="alert(2)">{HOSTILE}']
        assert page.get_by_role("heading", level=1).inner_text() == HOSTILE
        assert page.locator("#transcript script, #transcript img").count() == 0
        sources = page.locator("script").evaluate_all("scripts => scripts.map(s => s.src)")
        assert sources == [f"{server}/console/static/live.js"]

        # The listing shows the concept's name as text too.
        page.goto(f"{server}/console?concept_id=xss-check")
        assert page.locator("table.sessions tbody a").inner_text() == HOSTILE
        assert page.locator("table.sessions script").count() == 0
        page.wait_for_load_state("networkidle")

    assert dialogs == []
    assert_only_the_server_was_asked(guard, server)


def test_the_live_transcript_appends_announced_utterances_as_text(
    browser: Browser, server: str
) -> None:
    """The event stream is stood in for here; the script reads the events' data as text."""
    session_id = new_session(server, "live", "mec", "Live coffee")
    record_turn(server, session_id, 1, "First question?", "First answer.")
    turn = {
        "type": "session.turn_recorded",
        "session_id": session_id,
        "data": {
            "utterances": [
                # Already on the page: not shown twice.
                {"turn_number": 1, "speaker": "respondent", "text": "First answer."},
                {"turn_number": 2, "speaker": "interviewer", "text": "And then?"},
                {"turn_number": 2, "speaker": "respondent", "text": HOSTILE},
            ]
        },
    }
    added = {
        "type": "session.utterance_added",
        "session_id": session_id,
        "data": {"turn_number": 3, "speaker": "interviewer", "text": "One more thing."},
    }
    stream = (
        "retry: 600000\n\n"
        f"id: 7\nevent: session.turn_recorded\ndata: {json.dumps(turn)}\n\n"
        f"id: 8\nevent: session.utterance_added\ndata: {json.dumps(added)}\n\n"
    )
    asked: list[str] = []

    def events(route: Route) -> None:
        asked.append(route.request.url)
        route.fulfill(status=200, content_type="text/event-stream", body=stream)

    with loopback_page(browser) as (page, guard):
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: refuse(dialog, dialogs))
        page.route("**/events?*", events)
        enter_key(page, server, f"/console/sessions/{session_id}")

        texts = page.locator("#transcript .utterance__text")
        texts.nth(4).wait_for(timeout=5_000)
        assert texts.all_inner_texts() == [
            "First question?",
            "First answer.",
            "And then?",
            HOSTILE,
            "One more thing.",
        ]
        assert page.locator("#transcript script").count() == 0

    assert asked == [f"{server}/events?session_id={session_id}"]
    assert dialogs == []
    assert_only_the_server_was_asked(guard, server)


def test_without_an_event_stream_the_session_page_stays_as_it_was(
    browser: Browser, server: str
) -> None:
    session_id = new_session(server, "quiet", "mec", "Quiet coffee")
    record_turn(server, session_id, 1, "Anything else?", "No.")

    with loopback_page(browser) as (page, guard):
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        enter_key(page, server, f"/console/sessions/{session_id}")
        page.wait_for_load_state("networkidle")

        assert page.locator("#transcript .utterance__text").all_inner_texts() == [
            "Anything else?",
            "No.",
        ]
        assert errors == []

    assert f"{server}/events?session_id={session_id}" in guard.requested
    assert_only_the_server_was_asked(guard, server)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["375px", "1280px"])
def test_the_pages_fit_the_screen_without_scrolling_sideways(
    browser: Browser, server: str, viewport: ViewportSize
) -> None:
    long_word = "x" * 300
    session_id = new_session(server, f"wide-{long_word[:100]}", "mec", f"Wide {long_word[:150]}")
    record_turn(server, session_id, 1, f"A long question {long_word}?", f"An answer {long_word}")

    with loopback_page(browser) as (page, guard):
        page.set_viewport_size(viewport)
        enter_key(page, server, f"/console/sessions/{session_id}")
        for path in ("/console", f"/console/sessions/{session_id}", "/console/key"):
            page.goto(f"{server}{path}")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (path, overflow)

    assert_only_the_server_was_asked(guard, server)


# Every element with its own text: its colour against the first opaque
# background behind it. WCAG's relative luminance and contrast ratio.
_LOW_CONTRAST = """
() => {
  const channel = (value) => {
    const c = value / 255;
    return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
  };
  const rgba = (text) => text.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      if (colour.length < 4 || colour[3] === 1) { return colour; }
    }
    return [255, 255, 255];
  };
  const failures = [];
  for (const element of document.querySelectorAll("body *")) {
    const ownText = [...element.childNodes].some(
      (node) => node.nodeType === Node.TEXT_NODE && node.textContent.trim()
    );
    if (!ownText || element.getClientRects().length === 0) { continue; }
    const style = getComputedStyle(element);
    if (style.visibility === "hidden") { continue; }
    const [fore, back] = [luminance(rgba(style.color)), luminance(background(element))];
    const ratio = (Math.max(fore, back) + 0.05) / (Math.min(fore, back) + 0.05);
    if (ratio < 4.5) {
      failures.push(`${element.tagName}.${element.className}: ${ratio.toFixed(2)}`);
    }
  }
  return failures;
}
"""


def test_the_pages_are_accessible(browser: Browser, server: str) -> None:
    """Labelled fields, landmarks, a skip link, a visible focus and text with enough contrast."""
    session_id = new_session(server, "a11y", "mec", "Accessible coffee")
    record_turn(server, session_id, 1, "How do you take it?", "With milk.")
    with api(server) as http:
        assert http.post(f"/sessions/{session_id}/pause").status_code == 200

    with loopback_page(browser) as (page, guard):
        page.goto(f"{server}/console/key")
        pages = ["/console/key", "/console", f"/console/sessions/{session_id}"]
        for number, path in enumerate(pages):
            if number == 1:
                enter_key(page, server)
            page.goto(f"{server}{path}")
            unlabelled = page.locator("input:not([type=hidden]), select, textarea").evaluate_all(
                "fields => fields.filter(f => f.labels.length === 0).map(f => f.name)"
            )
            assert unlabelled == [], path
            for role in ("banner", "navigation", "main", "contentinfo"):
                assert page.get_by_role(role).count() >= 1, (path, role)
            assert page.locator("h1").count() == 1, path
            assert page.evaluate("document.documentElement.lang") == "en"

            page.keyboard.press("Tab")
            focused = page.evaluate(
                "(() => { const e = document.activeElement; const s = getComputedStyle(e);"
                " return [e.textContent.trim(), e.getAttribute('href'), s.outlineStyle,"
                " parseFloat(s.outlineWidth), e.getBoundingClientRect().top >= 0]; })()"
            )
            assert focused == ["Skip to the content", "#main", "solid", 3.0, True], path
            page.keyboard.press("Enter")
            assert page.evaluate("document.activeElement.id") == "main", path

            assert page.evaluate(_LOW_CONTRAST) == [], path

    assert_only_the_server_was_asked(guard, server)
