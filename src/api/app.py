"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import TypedDict

from fastapi import FastAPI

from src.api import metrics
from src.api.api_key import OPEN_PATHS, ApiKeyMiddleware
from src.api.console.routes import FORM_PATHS, install_console
from src.api.docs import install_docs
from src.api.errors import install_error_handlers
from src.api.head import HeadAsGet
from src.api.observability import RequestObserver
from src.api.path_guard import TrailingNewlineGuard
from src.api.request_body import RequestBodyGuard
from src.api.routes import health, history, search, sessions, studies, transcript
from src.api.routes.graph import router as graph_router
from src.core.config import Settings, get_settings
from src.persistence.repositories.factory import create_repository
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.retention import keep_sweeping

__all__ = ["create_app"]


class AppState(TypedDict):
    """What the lifespan hands to every request."""

    repository: SessionRepositoryProtocol
    settings: Settings


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
                yield {"repository": repository, "settings": resolved}
                return
            sweeper = asyncio.create_task(keep_sweeping(repository, resolved))
            try:
                yield {"repository": repository, "settings": resolved}
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
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(HeadAsGet)
    app.add_middleware(
        RequestBodyGuard, settings=lambda: settings or get_settings(), form_paths=FORM_PATHS
    )
    app.add_middleware(ApiKeyMiddleware, settings=lambda: settings or get_settings())
    app.add_middleware(TrailingNewlineGuard)
    # Outermost, so that every answer is logged and counted, a 401 or 413 too.
    app.add_middleware(RequestObserver)
    app.include_router(sessions.router)
    app.include_router(transcript.router)
    app.include_router(history.router)
    app.include_router(graph_router)
    app.include_router(studies.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    install_docs(app, lambda: settings or get_settings(), OPEN_PATHS)
    app.include_router(search.router)
    install_console(app)
    return app
