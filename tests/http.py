"""Running the app in process for tests, with its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager

from src.core.config import Settings
from src.main import create_app


@asynccontextmanager
async def serve_in_process(settings: Settings | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on an app whose lifespan has run, as a server would run it."""
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as http,
    ):
        yield http
