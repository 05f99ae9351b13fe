"""The console's session page grows live, in a real browser, from the real event stream."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser

from tests.browser import api_with_key, loopback_page, server_with_key

pytestmark = pytest.mark.sqlite

KEY = "l" * 24
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with server_with_key(tmp_path_factory, "console-live", KEY) as url:
        yield url


def api(server: str) -> httpx.Client:
    return api_with_key(server, KEY)


def test_a_turn_recorded_through_the_api_appears_on_the_open_session_page(
    browser: Browser, server: str
) -> None:
    with api(server) as http:
        created = http.post(
            "/sessions", json={"methodology": "mec", "concept_id": "c", "concept_name": "Live"}
        )
        session_id = created.json()["id"]
        http.post(
            f"/sessions/{session_id}/utterances",
            json={"turn_number": 1, "speaker": "interviewer", "text": "What matters?"},
        )

    with loopback_page(browser) as (page, guard):
        page.goto(f"{server}/console/sessions/{session_id}")
        page.get_by_label("API key").fill(KEY)
        page.get_by_role("button", name="Open the console").click()
        page.wait_for_url(f"{server}/console/sessions/{session_id}")
        texts = page.locator("#transcript .utterance__text")
        assert texts.all_inner_texts() == ["What matters?"]
        # The page's stream is open before the turn is written.
        deadline = time.monotonic() + 10
        while not any("/events?" in url for url in guard.requested):
            assert time.monotonic() < deadline, guard.requested
            page.wait_for_timeout(50)
        page.wait_for_timeout(300)

        with api(server) as http:
            recorded = http.post(
                f"/sessions/{session_id}/turns",
                json={
                    "utterances": [
                        {"turn_number": 2, "speaker": "interviewer", "text": "Why?"},
                        {"turn_number": 2, "speaker": "respondent", "text": HOSTILE},
                    ],
                    "state_patch": {"turn_count": 2},
                },
            )
            assert recorded.status_code == 201, recorded.text
        written = time.monotonic()
        texts.nth(2).wait_for(timeout=2_000)
        assert time.monotonic() - written < 2

        assert texts.all_inner_texts() == ["What matters?", "Why?", HOSTILE]
        assert page.locator("#transcript script").count() == 0
        assert guard.blocked == []
