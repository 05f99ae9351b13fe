"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import TypedDict

from fastapi import FastAPI

from src.api.api_key import ApiKeyMiddleware
from src.api.body_limit import BodySizeLimitMiddleware
from src.api.errors import install_error_handlers
from src.api.path_guard import TrailingNewlineGuard
from src.api.routes import health, history, sessions, studies, transcript
from src.core.config import Settings, get_settings
from src.persistence.repositories.factory import create_repository
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.retention import keep_sweeping

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = 64 * 1024


class AppState(TypedDict):
    """What the lifespan hands to every request."""

    repository: SessionRepositoryProtocol


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API; it opens its repository on start-up and closes it on shutdown.

    When retention is configured, a background task sweeps while the app runs.

    Without `settings`, they are read from the environment when the app starts.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[AppState]:
        resolved = settings or get_settings()
        # Entering the repository connects and migrates, so a database that
        # cannot be opened stops start-up instead of failing the first request.
        async with create_repository(resolved) as repository:
            if not resolved.retention_enabled:
                yield {"repository": repository}
                return
            sweeper = asyncio.create_task(keep_sweeping(repository, resolved))
            try:
                yield {"repository": repository}
            finally:
                sweeper.cancel()
                with suppress(asyncio.CancelledError):
                    await sweeper

    app = FastAPI(
        title="Interview session store",
        summary="Sessions of AI-led qualitative research interviews (MEC laddering, ZMET).",
        version="0.1.0",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(ApiKeyMiddleware, settings=lambda: settings or get_settings())
    app.add_middleware(TrailingNewlineGuard)
    app.include_router(sessions.router)
    app.include_router(transcript.router)
    app.include_router(history.router)
    app.include_router(studies.router)
    app.include_router(health.router)
    return app
