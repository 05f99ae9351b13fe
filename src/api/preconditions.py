"""Entity tags: a session's ETag is its version, and If-Match guards writes."""

from __future__ import annotations

import re
from http import HTTPStatus

from fastapi import HTTPException

from src.core.errors import SessionNotFoundError
from src.persistence.repositories.protocol import SessionRepositoryProtocol

__all__ = ["etag", "expected_version"]

_ENTITY_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*(?:,|$)')


def etag(version: int) -> str:
    """The strong entity tag of a session at `version`."""
    return f'"{version}"'


def _versions(if_match: str) -> frozenset[int]:
    # RFC 9110 compares If-Match tags strongly: weak and foreign tags never match.
    versions = set()
    for match in _ENTITY_TAG.finditer(if_match):
        weak, opaque = match.groups()
        # A tag past MAX_COUNT names no version a session can reach.
        if not weak and opaque.isascii() and opaque.isdigit() and len(opaque) <= 10:
            versions.add(int(opaque))
    return frozenset(versions)


async def expected_version(
    repository: SessionRepositoryProtocol, session_id: str, if_match: str | None
) -> int | None:
    """The version a write must find, from an If-Match header; None when unconditional.

    Raises:
        SessionNotFoundError: the header lists several tags and the session is gone.
        HTTPException: 412, when no listed tag can match any version of the session.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    versions = _versions(if_match)
    if len(versions) == 1:
        return next(iter(versions))
    # Several tags, or none usable: only the current version can decide.
    current = await repository.get(session_id)
    if current is None:
        raise SessionNotFoundError(session_id)
    if current.version in versions:
        return current.version
    raise HTTPException(
        HTTPStatus.PRECONDITION_FAILED,
        f"If-Match does not name the current version of session {session_id!r}.",
    )
