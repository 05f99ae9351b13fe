"""Entity tags: a session's ETag is its version, and If-Match guards writes (RFC 9110 13.1.1)."""

from __future__ import annotations

import re
from http import HTTPStatus

from fastapi import HTTPException

from src.core.errors import SessionNotFoundError
from src.domain.models.session import MAX_COUNT
from src.persistence.repositories.protocol import SessionRepositoryProtocol

__all__ = ["PreconditionFailed", "etag", "expected_version"]

# One element of the If-Match list: an entity tag, or nothing (empty elements are allowed).
_LIST_ELEMENT = re.compile(r'[ \t]*(?:(W/)?"([\x21\x23-\x7e\x80-\xff]*)")?[ \t]*(?:,|\Z)')
_MAX_VERSION_DIGITS = len(str(MAX_COUNT))


class PreconditionFailed(HTTPException):
    """412: If-Match names no version the session is at; says which one it is at."""

    def __init__(
        self, session_id: str, expected_version: int | None, actual_version: int, detail: str
    ) -> None:
        super().__init__(HTTPStatus.PRECONDITION_FAILED, detail)
        self.session_id = session_id
        self.expected_version = expected_version
        self.actual_version = actual_version


def etag(version: int) -> str:
    """The strong entity tag of a session at `version`."""
    return f'"{version}"'


def _entity_tags(if_match: str) -> list[tuple[bool, str]] | None:
    """(weak, opaque) for each tag in the header, or None when it is not a list of tags."""
    tags = []
    position = 0
    while position < len(if_match):
        element = _LIST_ELEMENT.match(if_match, position)
        if element is None or element.end() == position:
            return None
        weak, opaque = element.groups()
        if opaque is not None:
            tags.append((weak is not None, opaque))
        position = element.end()
    return tags or None


def _version(opaque: str) -> int | None:
    # Strong comparison is character by character: only "3" names version 3.
    if not (opaque.isascii() and opaque.isdigit() and len(opaque) <= _MAX_VERSION_DIGITS):
        return None
    version = int(opaque)
    return version if 1 <= version <= MAX_COUNT and str(version) == opaque else None


async def expected_version(
    repository: SessionRepositoryProtocol, session_id: str, if_match: str | None
) -> int | None:
    """The version a write must find, from an If-Match header; None when unconditional.

    Raises:
        SessionNotFoundError: the header needs the session's version and it is gone.
        PreconditionFailed: no listed tag matches the session's current version, or the
            header is neither `*` nor a list of entity tags, so it matches none.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    tags = _entity_tags(if_match) or []  # a header that is no list of tags names none
    strong = {version for weak, opaque in tags if not weak and (version := _version(opaque))}
    if len(tags) == 1 and strong:
        return next(iter(strong))  # the write itself checks it, atomically
    # Several tags, or none that names a version: only the current version can decide.
    current = await repository.get(session_id)
    if current is None:
        raise SessionNotFoundError(session_id)
    if current.version in strong:
        return current.version
    named = [_version(opaque) for _, opaque in tags]
    expected = named[0] if len(named) == 1 else None
    if not tags:
        detail = (
            'If-Match must be * or a list of entity tags as ETag gives them, such as "3"; '
            "this one matches no version."
        )
    elif any(weak for weak, _ in tags):
        detail = (
            "If-Match compares entity tags strongly, so a weak tag (W/...) never matches; "
            f'send the ETag as given, such as "{current.version}".'
        )
    else:
        detail = (
            f"If-Match does not name the current version of session {session_id!r}, "
            f"which is at version {current.version}."
        )
    raise PreconditionFailed(session_id, expected, current.version, detail)
