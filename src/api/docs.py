"""The API documentation pages, served with their assets by the app itself.

Swagger UI and ReDoc come from the pinned `fastapi-offline` distribution, so
`/docs` and `/redoc` work on a machine with no internet access. The pages,
their assets and the schema need no API key: the Authorize button is where a
user enters it. `/` leads to the console.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from src.core.config import Settings

__all__ = ["DOCS_PATHS", "install_docs"]

_ASSETS_DIRECTORY = Path(fastapi_offline.__file__).parent / "static"
_ASSETS_PATH = "/docs/assets"
_OPENAPI_PATH = "/openapi.json"
_BEARER_SCHEME = "bearerAuth"
# The browser itself refuses to load anything from elsewhere: ReDoc's sidebar
# would fetch its maker's logo from a CDN otherwise. The pages' own start-up
# scripts are inline, and ReDoc styles inline and searches in a blob worker.
_SAME_ORIGIN_ONLY = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"
}

# Every path of the documentation, open with or without an API key.
DOCS_PATHS = frozenset(
    {"/", "/docs", "/redoc", _OPENAPI_PATH}
    | {f"{_ASSETS_PATH}/{asset.name}" for asset in _ASSETS_DIRECTORY.iterdir()}
)


def install_docs(
    app: FastAPI, settings: Callable[[], Settings], open_paths: Collection[str]
) -> None:
    """Serve `/docs`, `/redoc` and their assets from this server; `/` leads to `/console`.

    The app must be built with `docs_url=None, redoc_url=None`. `settings` is
    read when the schema is first asked for: with an API key set, every
    operation but those on `open_paths` declares the bearer scheme.
    """
    title = f"{app.title} - API"
    app.mount(_ASSETS_PATH, StaticFiles(directory=_ASSETS_DIRECTORY), name="docs-assets")

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/console")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        prefix = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{prefix}{_OPENAPI_PATH}",
            title=title,
            swagger_js_url=f"{prefix}{_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{prefix}{_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{prefix}{_ASSETS_PATH}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )
        page.headers.update(_SAME_ORIGIN_ONLY)
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        prefix = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{prefix}{_OPENAPI_PATH}",
            title=title,
            redoc_js_url=f"{prefix}{_ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{prefix}{_ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
        page.headers.update(_SAME_ORIGIN_ONLY)
        return page

    build_schema = app.openapi

    def openapi_with_bearer_scheme() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build_schema()
            schema.setdefault("components", {})["securitySchemes"] = {
                _BEARER_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A key from API_KEYS, or the server's API_KEY.",
                }
            }
            if settings().api_key is not None or settings().api_keys is not None:
                _require_bearer(schema, open_paths)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi_with_bearer_scheme  # type: ignore[method-assign]


def _require_bearer(schema: dict[str, Any], open_paths: Collection[str]) -> None:
    # Swagger UI sends the key only with operations that declare the scheme.
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            operation["security"] = [] if path in open_paths else [{_BEARER_SCHEME: []}]
