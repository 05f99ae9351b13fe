"""Which scope each request needs: the API's one table of access rules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from src.api.console.paths import (
    ASSET_PATHS,
    KEY_FORM_PATH,
    LOGOUT_PATH,
    PAGE_PATHS,
)
from src.api.docs import DOCS_PATHS
from src.core.keys import Scope

__all__ = ["OPEN_PATHS", "RULES", "Rule", "access_rule", "required_scope"]

_READING = frozenset({"GET", "HEAD"})
_ANY_METHOD = None


@dataclass(frozen=True)
class Rule:
    """Requests with one of `methods` (None: any) to one of `paths` need `scope` (None: no key).

    A path is exact, or a pattern: a segment `{}` stands for any one
    segment, and `*` alone for every path.

    `cookie`: the console's key cookie may carry the key, not only the
    Authorization header. Only reading rules may say so: a cookie rides along
    on any request a browser sends, another site's forms included, so it must
    never authorise a write. `key_form`: where a browser without a valid key
    is sent to enter one, instead of a 401.
    """

    methods: frozenset[str] | None
    paths: frozenset[str]
    scope: Scope | None
    cookie: bool = False
    key_form: str | None = None

    def __post_init__(self) -> None:
        if self.cookie and (self.methods is None or not self.methods <= _READING):
            raise ValueError("only a rule for GET and HEAD may take the key from a cookie")

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return path in self.paths or any(
            _fits(pattern, path.split("/")) for pattern in self._patterns
        )

    @cached_property
    def _patterns(self) -> list[list[str]]:
        return [path.split("/") for path in self.paths if "{}" in path or path == "*"]


def _fits(pattern: list[str], given: list[str]) -> bool:
    if pattern == ["*"]:
        return True
    return len(pattern) == len(given) and all(
        want == part or (want == "{}" and part != "")
        for want, part in zip(pattern, given, strict=True)
    )


def _rule(
    methods: Iterable[str] | None,
    paths: Iterable[str],
    scope: Scope | None,
    *,
    cookie: bool = False,
    key_form: str | None = None,
) -> Rule:
    methods = None if methods is None else frozenset(methods)
    return Rule(methods, frozenset(paths), scope, cookie, key_form)


# The first rule that matches decides; read from the top. Anything no rule
# above names falls to the last two: reading needs `read` (so /metrics,
# searches, exports and event streams do), anything else needs `write`.
RULES: tuple[Rule, ...] = (
    _rule(_ANY_METHOD, ["/health"], None),
    # The documentation loads without a key: its Authorize button is where a
    # user enters one.
    _rule(_READING, DOCS_PATHS, None),
    # The console: its key form and assets are open; its pages, and the
    # exports they link to, read with the key its cookie keeps.
    _rule(_READING, ASSET_PATHS, None),
    _rule([*_READING, "POST"], [KEY_FORM_PATH, LOGOUT_PATH], None),
    _rule(_READING, PAGE_PATHS, Scope.READ, cookie=True, key_form=KEY_FORM_PATH),
    _rule(_READING, ["/sessions/{}/export", "/studies/{}/export"], Scope.READ, cookie=True),
    # The session page's live transcript listens here with the same cookie.
    _rule(_READING, ["/events"], Scope.READ, cookie=True),
    # Erasure and the audit log.
    _rule(["DELETE"], ["/participants/{}"], Scope.ADMIN),
    _rule(_ANY_METHOD, ["/audit"], Scope.ADMIN),
    _rule(_READING, ["*"], Scope.READ),
    _rule(_ANY_METHOD, ["*"], Scope.WRITE),
)

# The exact paths that need no key for reading, which the documentation marks so.
OPEN_PATHS = frozenset(
    path
    for rule in RULES
    if rule.scope is None
    for path in rule.paths
    if "{}" not in path and path != "*"
)


def access_rule(method: str, path: str) -> Rule:
    """The rule that decides a request: the first in RULES that matches it."""
    # `/sessions/` is `/sessions`: both answer, so both need the same scope.
    normalised = path.rstrip("/") or "/"
    return next(rule for rule in RULES if rule.matches(method.upper(), normalised))


def required_scope(method: str, path: str) -> Scope | None:
    """The scope a request needs, or None when it needs no key."""
    return access_rule(method, path).scope
