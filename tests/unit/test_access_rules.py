"""The rule table: which scope each request needs."""

from __future__ import annotations

import pytest

from src.api.access import OPEN_PATHS, required_scope
from src.core.keys import Scope


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/health", None),
        ("HEAD", "/health", None),
        ("POST", "/health", None),
        ("GET", "/docs", None),
        ("GET", "/docs/assets/swagger-ui-bundle.js", None),
        ("GET", "/docs/assets/", Scope.READ),
        ("GET", "/docs/assets/a/b.js", Scope.READ),
        ("GET", "/docs/oauth2-redirect", Scope.READ),
        ("HEAD", "/redoc", None),
        ("GET", "/openapi.json", None),
        ("GET", "/", None),
        ("POST", "/docs", Scope.WRITE),
        ("PUT", "/openapi.json", Scope.WRITE),
        ("DELETE", "/health", None),
        ("GET", "/docsx", Scope.READ),
        ("GET", "/sessions", Scope.READ),
        ("GET", "/sessions/", Scope.READ),
        ("HEAD", "/sessions/s-1", Scope.READ),
        ("get", "/sessions/s-1/export", Scope.READ),
        ("GET", "/metrics", Scope.READ),
        ("GET", "/search", Scope.READ),
        ("POST", "/sessions", Scope.WRITE),
        ("POST", "/sessions/", Scope.WRITE),
        ("PUT", "/sessions/s-1/state", Scope.WRITE),
        ("PATCH", "/sessions/s-1", Scope.WRITE),
        ("DELETE", "/sessions/s-1", Scope.WRITE),
        ("OPTIONS", "/sessions", Scope.WRITE),
        ("DELETE", "/participants/p-1", Scope.ADMIN),
        ("DELETE", "/participants/p-1/", Scope.ADMIN),
        ("DELETE", "/participants", Scope.WRITE),
        ("GET", "/participants/p-1", Scope.READ),
        ("GET", "/audit", Scope.ADMIN),
        ("HEAD", "/audit", Scope.ADMIN),
        ("GET", "/audit/", Scope.ADMIN),
        ("POST", "/audit", Scope.ADMIN),
    ],
)
def test_each_request_needs_its_scope(method: str, path: str, scope: Scope | None) -> None:
    assert required_scope(method, path) == scope


def test_open_paths_are_the_exact_paths_that_need_no_key() -> None:
    assert {"/health", "/", "/docs", "/redoc", "/openapi.json"} <= OPEN_PATHS
    assert all(required_scope("GET", path) is None for path in OPEN_PATHS)
    assert not any("{}" in path or "*" in path for path in OPEN_PATHS)
