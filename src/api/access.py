"""Which scope each request needs: the API's one table of access rules."""

from __future__ import annotations

from dataclasses import dataclass

from src.core.keys import Scope

__all__ = ["OPEN_PATHS", "RULES", "Rule", "required_scope"]

_READING = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Rule:
    """Requests with one of `methods` (None: any) to `path` need `scope` (None: no key).

    In `path`, a segment `{}` stands for any one segment, and a last segment
    `*` for anything at all below (`"*"` alone matches every path).
    """

    methods: frozenset[str] | None
    path: str
    scope: Scope | None

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        pattern = self.path.split("/")
        given = path.split("/")
        if pattern[-1] == "*":
            head = pattern[:-1]
            return len(given) >= len(head) and _same(head, given[: len(head)])
        return len(given) == len(pattern) and _same(pattern, given)


def _same(pattern: list[str], given: list[str]) -> bool:
    return all(
        want == part or (want == "{}" and part != "")
        for want, part in zip(pattern, given, strict=True)
    )


# The first rule that matches decides; read from the top. Anything no rule
# above names falls to the last two: reading needs `read` (so /metrics,
# searches, exports and event streams do), anything else needs `write`.
RULES: tuple[Rule, ...] = (
    Rule(None, "/health", None),
    # The documentation pages, their assets and the schema they render load
    # without a key: their Authorize button is where a user enters one.
    Rule(_READING, "/", None),
    Rule(_READING, "/docs", None),
    Rule(_READING, "/docs/*", None),
    Rule(_READING, "/redoc", None),
    Rule(_READING, "/openapi.json", None),
    # Erasure and the audit log.
    Rule(frozenset({"DELETE"}), "/participants/{}", Scope.ADMIN),
    Rule(None, "/audit", Scope.ADMIN),
    Rule(_READING, "*", Scope.READ),
    Rule(None, "*", Scope.WRITE),
)

# The paths that need no key for reading, as the documentation shows them.
OPEN_PATHS = frozenset(
    rule.path
    for rule in RULES
    if rule.scope is None and "{}" not in rule.path and "*" not in rule.path
)


def required_scope(method: str, path: str) -> Scope | None:
    """The scope a request needs, or None when it needs no key."""
    # `/sessions/` is `/sessions`: both answer, so both need the same scope.
    normalised = path.rstrip("/") or "/"
    return next(rule.scope for rule in RULES if rule.matches(method.upper(), normalised))
