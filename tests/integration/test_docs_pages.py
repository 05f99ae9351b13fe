"""/docs and /redoc of a real server, in a real browser, with nothing loaded from outside."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser

from tests.browser import loopback_page, server_with_key

pytestmark = pytest.mark.sqlite

KEY = "d" * 24
# Operations every version of the API has; the pages must list them.
OPERATIONS = [
    ("post", "/sessions"),
    ("get", "/sessions"),
    ("get", "/sessions/{session_id}"),
    ("put", "/sessions/{session_id}/state"),
    ("post", "/sessions/{session_id}/turns"),
    ("delete", "/sessions/{session_id}"),
    ("get", "/health"),
]


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server with an API key, so that the pages must load without one."""
    with server_with_key(tmp_path_factory, "docs", KEY) as url:
        yield url


def test_swagger_ui_lists_the_operations_and_takes_the_key(
    browser: Browser, locked_server: str
) -> None:
    with loopback_page(browser) as (page, guard):
        page.goto(f"{locked_server}/docs")
        page.wait_for_selector(".opblock-summary", timeout=30_000)
        listed = {
            (
                block.get_attribute("class").split("opblock-", 1)[1].split()[0],  # type: ignore[union-attr]
                block.locator(".opblock-summary-path").get_attribute("data-path"),
            )
            for block in page.locator(".opblock").all()
        }
        assert set(OPERATIONS) <= listed

        # The key goes in through the Authorize button, then a request carries it.
        page.click("button.authorize")
        page.fill(".auth-container input", KEY)
        page.click(".auth-btn-wrapper button.authorize")
        page.click("button.btn-done")
        operation = page.locator("#operations-sessions-list_sessions_sessions_get")
        operation.locator(".opblock-summary").click()
        operation.locator("button.try-out__btn").click()
        operation.locator("button.execute").click()
        status = operation.locator(".live-responses-table tr.response .response-col_status").first
        status.wait_for(timeout=30_000)
        assert status.inner_text().strip() == "200"

    assert guard.blocked == []
    assert guard.requested and all(url.startswith(locked_server) for url in guard.requested)


def test_redoc_lists_the_operations(browser: Browser, locked_server: str) -> None:
    with loopback_page(browser) as (page, guard):
        page.goto(f"{locked_server}/redoc")
        page.wait_for_selector("[data-section-id^='operation/']", timeout=30_000)
        text = page.inner_text("body")
        assert "Start a new interview session" in text
        sections = page.locator("[data-section-id^='operation/']").count()
        schema = httpx.get(f"{locked_server}/openapi.json").json()
        operations = sum(len(methods) for methods in schema["paths"].values())
        assert sections == operations

    assert guard.blocked == []
    assert all(url.startswith(locked_server) for url in guard.requested)


def test_the_schema_declares_the_bearer_scheme_and_health_stays_open(locked_server: str) -> None:
    schema = httpx.get(f"{locked_server}/openapi.json").json()

    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A key from API_KEYS, or the server's API_KEY.",
    }
    assert schema["paths"]["/sessions"]["post"]["security"] == [{"bearerAuth": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []


def test_the_pages_and_their_assets_need_no_key_but_the_api_does(locked_server: str) -> None:
    root = httpx.get(f"{locked_server}/")
    assert (root.status_code, root.headers["location"]) == (307, "/console")
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"):
        assert httpx.get(f"{locked_server}{path}").status_code == 200, path
    # Only the files the pages use are open, not whatever a path under them names.
    assert httpx.get(f"{locked_server}/docs/assets/other.js").status_code == 401
    assert httpx.get(f"{locked_server}/sessions").status_code == 401
