"""Debian's headless chromium, driven by Playwright, for tests of pages."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from tests.servers import running_server

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# CI sets this: there, a page test that finds no browser is a failure, not a skip.
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"
# Without these, chromium reaches out to Google's hosts at start on its own.
_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """A headless chromium; skips (fails when REQUIRE_BROWSER=1) where there is none."""
    if shutil.which(CHROMIUM) is None:
        message = f"no chromium at {CHROMIUM}; apt-get install chromium to run the page tests"
        if REQUIRE_BROWSER:
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def server_with_key(tmp_path_factory: pytest.TempPathFactory, name: str, key: str) -> Iterator[str]:
    """A real server on a SQLite file of its own, with an API key; yields its URL."""
    folder = tmp_path_factory.mktemp(name)
    env = {"DATABASE_PATH": str(folder / f"{name}.db"), "DATABASE_URL": "", "API_KEY": key}
    with running_server(folder, env) as url:
        yield url


def api_with_key(server: str, key: str) -> httpx.Client:
    """A client of `server`'s JSON API that sends `key`."""
    return httpx.Client(base_url=server, headers={"Authorization": f"Bearer {key}"}, timeout=10)


@dataclass
class LoopbackOnly:
    """Lets a page reach 127.0.0.1 only; records every request and blocks the rest."""

    requested: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def handle(self, route: Route) -> None:
        url = route.request.url
        self.requested.append(url)
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


@contextmanager
def loopback_page(browser: Browser) -> Iterator[tuple[Page, LoopbackOnly]]:
    """A page in a fresh context whose every request (workers' too) goes through LoopbackOnly."""
    guard = LoopbackOnly()
    context = browser.new_context(service_workers="block")
    context.route("**/*", guard.handle)
    try:
        yield context.new_page(), guard
    finally:
        context.close()
