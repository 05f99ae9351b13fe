"""The console's rules in the one rule table: what its cookie may authorise, and what is open."""

from __future__ import annotations

import pytest

from src.api.access import RULES, Rule, access_rule
from src.core.keys import Scope

READING = frozenset({"GET", "HEAD"})


@pytest.mark.parametrize(
    ("method", "path", "scope", "cookie"),
    [
        ("GET", "/console", Scope.READ, True),
        ("HEAD", "/console/", Scope.READ, True),
        ("GET", "/console/sessions/s-1", Scope.READ, True),
        ("GET", "/sessions/s-1/export", Scope.READ, True),
        ("HEAD", "/sessions/s-1/export", Scope.READ, True),
        ("GET", "/console/key", None, False),
        ("POST", "/console/key", None, False),
        ("POST", "/console/logout", None, False),
        ("GET", "/console/static/console.css", None, False),
        ("GET", "/console/static/live.js", None, False),
        ("GET", "/console/static/other.js", Scope.READ, False),
        ("GET", "/console/sessions/s-1/more", Scope.READ, False),
        ("POST", "/console", Scope.WRITE, False),
        ("POST", "/console/sessions/s-1", Scope.WRITE, False),
        ("DELETE", "/console/key", Scope.WRITE, False),
        ("POST", "/sessions/s-1/export", Scope.WRITE, False),
        ("GET", "/sessions", Scope.READ, False),
        ("GET", "/sessions/s-1", Scope.READ, False),
        ("GET", "/sessions/s-1/utterances", Scope.READ, False),
        ("POST", "/sessions", Scope.WRITE, False),
        ("DELETE", "/sessions/s-1", Scope.WRITE, False),
    ],
)
def test_each_request_has_its_scope_and_takes_the_cookie_only_where_it_reads(
    method: str, path: str, scope: Scope | None, cookie: bool
) -> None:
    rule = access_rule(method, path)

    assert (rule.scope, rule.cookie) == (scope, cookie)


def test_only_console_pages_send_a_browser_to_the_key_form() -> None:
    assert access_rule("GET", "/console").key_form == "/console/key"
    assert access_rule("GET", "/console/sessions/s-1").key_form == "/console/key"
    assert access_rule("GET", "/sessions/s-1/export").key_form is None
    assert access_rule("GET", "/sessions").key_form is None


def test_no_rule_lets_a_cookie_authorise_anything_but_reading() -> None:
    assert all(
        rule.methods is not None and rule.methods <= READING for rule in RULES if rule.cookie
    )


@pytest.mark.parametrize("methods", [None, frozenset({"GET", "POST"}), frozenset({"PUT"})])
def test_a_rule_that_would_take_a_cookie_for_a_write_cannot_be_made(
    methods: frozenset[str] | None,
) -> None:
    with pytest.raises(ValueError, match="only a rule for GET and HEAD"):
        Rule(methods, frozenset({"/x"}), Scope.READ, cookie=True)
