"""Serving an app over HTTP: the one place that configures uvicorn."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from src.core.config import Settings

__all__ = ["serve"]


def serve(app: FastAPI, settings: Settings) -> None:
    """Serve `app` on the settings' host and port until SIGINT or SIGTERM."""
    # uvloop and httptools are dependencies, so "auto" picks both.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="auto",
        http="auto",
        log_config=None,
    )
