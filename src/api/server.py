"""Serving an app over HTTP: the one place that configures uvicorn."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

from src.api.http_protocol import GuardedHttpToolsProtocol
from src.core.config import Settings

__all__ = ["serve"]


# The event loop thread is busy whenever requests are; at the default 5 ms
# switch interval, aiosqlite's connection thread could wait that long for the
# GIL on every hop. Measured under load on one core (see docs/benchmarks.md).
_GIL_SWITCH_INTERVAL_S = 0.0002


def serve(app: FastAPI, settings: Settings) -> None:
    """Serve `app` on the settings' host and port until SIGINT or SIGTERM."""
    sys.setswitchinterval(_GIL_SWITCH_INTERVAL_S)
    # uvloop is a dependency, so "auto" picks it.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="auto",
        # httptools, with timeouts for requests that never finish and a header size cap.
        http=GuardedHttpToolsProtocol,
        log_config=None,
    )
