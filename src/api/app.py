"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import TypedDict

from fastapi import FastAPI

from src.api import metrics
from src.api.api_key import OPEN_PATHS, ApiKeyMiddleware
from src.api.audit import AuditRecorder
from src.api.console.routes import FORM_PATHS, install_console
from src.api.docs import install_docs
from src.api.errors import install_error_handlers
from src.api.event_hub import EventHub
from src.api.head import HeadAsGet
from src.api.observability import RequestObserver
from src.api.path_guard import TrailingNewlineGuard
from src.api.request_body import RequestBodyGuard
from src.api.routes import (
    audit,
    events,
    health,
    history,
    participants,
    search,
    sessions,
    studies,
    transcript,
)
from src.api.routes.graph import router as graph_router
from src.core.config import Settings, get_settings
from src.persistence.repositories.factory import create_repository
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.retention import keep_sweeping, keep_trimming_events

__all__ = ["create_app"]


class AppState(TypedDict):
    """What the lifespan hands to every request."""

    repository: SessionRepositoryProtocol
    settings: Settings
    events: EventHub
    event_heartbeat_seconds: float
    event_stall_seconds: float


def create_app(
    settings: Settings | None = None,
    *,
    event_heartbeat_seconds: float = 15.0,
    event_stall_seconds: float = 10.0,
) -> FastAPI:
    """Build the API; it opens its repository on start-up and closes it on shutdown.

    A background task trims the event log; when retention is configured,
    another sweeps idle sessions while the app runs.

    Without `settings`, they are read from the environment when the app starts.
    `event_heartbeat_seconds`: how long an idle event stream waits between
    heartbeats (CONTRACT: at most 15 s; shorter only for tests);
    `event_stall_seconds`: how long a stream that fell behind may wait on a client
    that reads nothing before its connection is closed.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[AppState]:
        resolved = settings or get_settings()
        # Entering the repository connects and migrates, so a database that
        # cannot be opened stops start-up instead of failing the first request.
        async with create_repository(resolved) as repository:
            hub = EventHub(repository)
            tasks = [asyncio.create_task(keep_trimming_events(repository, resolved))]
            if resolved.retention_enabled:
                tasks.append(asyncio.create_task(keep_sweeping(repository, resolved)))
            try:
                yield {
                    "repository": repository,
                    "settings": resolved,
                    "events": hub,
                    "event_heartbeat_seconds": event_heartbeat_seconds,
                    "event_stall_seconds": event_stall_seconds,
                }
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with suppress(asyncio.CancelledError):
                        await task
                await hub.stop()

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
    app.add_middleware(AuditRecorder)  # outside the key check: it records its 401s and 403s
    app.add_middleware(TrailingNewlineGuard)
    # Outermost, so that every answer is logged and counted, a 401 or 413 too.
    app.add_middleware(RequestObserver)
    # First: FastAPI prepares each router's routes when a request is first matched
    # against them, and the health check that tells start-up is over waits for none.
    app.include_router(health.router)
    app.include_router(sessions.router)
    app.include_router(transcript.router)
    app.include_router(history.router)
    app.include_router(graph_router)
    app.include_router(studies.router)
    app.include_router(metrics.router)
    install_docs(app, lambda: settings or get_settings(), OPEN_PATHS)
    app.include_router(search.router)
    app.include_router(events.router)
    install_console(app)
    app.include_router(audit.router)
    app.include_router(participants.router)
    return app
