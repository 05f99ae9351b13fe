"""GET /events in the one rule table: a `read` key, or the console's cookie, never for writing."""

from __future__ import annotations

import pytest

from src.api.access import access_rule
from src.core.keys import Scope


@pytest.mark.parametrize(
    ("method", "scope", "cookie"),
    [("GET", Scope.READ, True), ("HEAD", Scope.READ, True), ("POST", Scope.WRITE, False)],
)
def test_events_read_with_a_read_key_or_the_console_cookie(
    method: str, scope: Scope, cookie: bool
) -> None:
    rule = access_rule(method, "/events")

    assert (rule.scope, rule.cookie) == (scope, cookie)
