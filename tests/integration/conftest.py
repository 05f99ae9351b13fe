from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from tests.backends import PostgresBackend, SqliteBackend
from tests.browser import headless_chromium
from tests.http import serve_in_process


@pytest.fixture
async def client(backend: SqliteBackend | PostgresBackend) -> AsyncIterator[httpx.AsyncClient]:
    """The API on each backend in turn."""
    async with serve_in_process(backend.settings()) as http:
        yield http


@pytest.fixture
async def sqlite_client(sqlite_backend: SqliteBackend) -> AsyncIterator[httpx.AsyncClient]:
    """The API on a SQLite file, for checks on the file itself."""
    async with serve_in_process(sqlite_backend.settings()) as http:
        yield http


@pytest.fixture
def sqlite_backend_elsewhere(tmp_path: Path) -> SqliteBackend:
    """A second SQLite store, with a key of its own."""
    return SqliteBackend(tmp_path / "elsewhere" / "sessions.db")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless chromium, shared by a module's page tests."""
    with headless_chromium() as chromium:
        yield chromium
