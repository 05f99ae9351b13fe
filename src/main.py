"""The ASGI application: `uvicorn src.main:app`, or `interview-system serve`."""

from src.api.app import create_app

__all__ = ["app", "create_app"]

app = create_app()
