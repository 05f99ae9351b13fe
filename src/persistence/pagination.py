"""Opaque keyset cursors (the sort key of the last item on a page), signed, and page walking.

A cursor is the key as JSON, then an HMAC of it under a secret the database
keeps (so every server process on one database makes and accepts the same
cursors). A cursor whose signature does not match was not handed out by this
store and is refused before its key is read; a key is also checked to be
one the queries can bind.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from src.core.errors import InvalidCursorError
from src.domain.models.session import MAX_COUNT, Session
from src.domain.models.utterance import Speaker, Utterance

__all__ = [
    "MAX_PAGE_SIZE",
    "Page",
    "check_limit",
    "decode_cursor",
    "decode_search_cursor",
    "decode_turn_cursor",
    "encode_cursor",
    "encode_search_cursor",
    "encode_turn_cursor",
    "sign",
    "walk_pages",
]

MAX_PAGE_SIZE = 500
_SIGNATURE_BYTES = 16
_MAX_ID_LENGTH = 128
_SPEAKERS = frozenset(speaker.value for speaker in Speaker)

T = TypeVar("T")
Item = TypeVar("Item")


def check_limit(limit: int) -> int:
    """Return `limit` when it is a page size this store serves, else raise ValueError."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}, not {limit!r}")
    return limit


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def sign(key: bytes, payload: bytes) -> str:
    """A cursor carrying `payload`, signed with `key`."""
    digest = hmac.new(key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return f"{_b64(payload)}.{_b64(digest)}"


def _encode(key: bytes, sort_key: list[Any]) -> str:
    return sign(key, json.dumps(sort_key, separators=(",", ":"), ensure_ascii=False).encode())


def _decode(key: bytes, cursor: str) -> Any:
    try:
        payload_text, signature_text = cursor.split(".")
        payload, signature = _unb64(payload_text), _unb64(signature_text)
    except (ValueError, TypeError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursorError() from exc
    expected = hmac.new(key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    if not hmac.compare_digest(signature, expected):
        raise InvalidCursorError()
    try:
        return json.loads(payload)
    except (ValueError, UnicodeError) as exc:
        raise InvalidCursorError() from exc


def _storable_text(value: object) -> str:
    """`value` when both databases can bind it as an id: text with no NUL, valid Unicode."""
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_ID_LENGTH or "\x00" in value:
        raise InvalidCursorError()
    try:
        value.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate
        raise InvalidCursorError() from exc
    return value


def encode_cursor(key: bytes, last: Session) -> str:
    """The cursor that resumes a listing of sessions after `last`."""
    return encode_session_key(key, last.created_at, last.id)


def encode_session_key(key: bytes, created_at: datetime, session_id: str) -> str:
    """The cursor that resumes a listing of sessions after the one with this key."""
    return _encode(key, [created_at.isoformat(), session_id])


def decode_cursor(key: bytes, cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) key a session cursor stands for, created_at in UTC.

    Raises:
        InvalidCursorError: the cursor was not made by `encode_cursor` with this key.
    """
    sort_key = _decode(key, cursor)
    try:
        created_at, session_id = sort_key
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            raise InvalidCursorError()
        # A moment a zone puts in year 1 or 9999 may lie outside them in UTC.
        moment = moment.astimezone(UTC)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidCursorError() from exc
    return moment, _storable_text(session_id)


def encode_turn_cursor(key: bytes, last: Utterance) -> str:
    """The cursor that resumes a listing of utterances after `last`."""
    return _encode(key, [last.turn_number, last.speaker.value])


def decode_turn_cursor(key: bytes, cursor: str) -> tuple[int, str]:
    """The (turn_number, speaker) key an utterance cursor stands for.

    Raises:
        InvalidCursorError: the cursor was not made by `encode_turn_cursor` with this key.
    """
    sort_key = _decode(key, cursor)
    try:
        turn_number, speaker = sort_key
    except (ValueError, TypeError) as exc:
        raise InvalidCursorError() from exc
    if type(turn_number) is not int or not 0 <= turn_number <= MAX_COUNT:
        raise InvalidCursorError()
    if not isinstance(speaker, str) or speaker not in _SPEAKERS:
        raise InvalidCursorError()
    return turn_number, speaker


def encode_search_cursor(
    key: bytes, rank: float, session_id: str, turn_number: int, speaker: str
) -> str:
    """The cursor that resumes a search after the hit with this rank and key."""
    return _encode(key, [rank, session_id, turn_number, speaker])


def decode_search_cursor(key: bytes, cursor: str) -> tuple[float, str, int, str]:
    """The (rank, session_id, turn_number, speaker) key a search cursor stands for.

    Raises:
        InvalidCursorError: the cursor was not made by `encode_search_cursor` with this key.
    """
    sort_key = _decode(key, cursor)
    try:
        rank, session_id, turn_number, speaker = sort_key
    except (ValueError, TypeError) as exc:
        raise InvalidCursorError() from exc
    if type(rank) not in (int, float):
        raise InvalidCursorError()
    try:
        rank = float(rank)
    except OverflowError as exc:
        raise InvalidCursorError() from exc
    if not math.isfinite(rank):
        raise InvalidCursorError()
    if type(turn_number) is not int or not 0 <= turn_number <= MAX_COUNT:
        raise InvalidCursorError()
    if not isinstance(speaker, str) or speaker not in _SPEAKERS:
        raise InvalidCursorError()
    return rank, _storable_text(session_id), turn_number, speaker


class Page(Protocol[T]):
    """One page of a listing."""

    @property
    def items(self) -> list[T]: ...

    @property
    def next_cursor(self) -> str | None: ...


async def walk_pages(
    fetch_page: Callable[[str | None], Awaitable[Page[Item]]],
) -> AsyncIterator[Item]:
    """Every item of a listing, read a page at a time so that other calls interleave."""
    cursor: str | None = None
    while True:
        page = await fetch_page(cursor)
        for item in page.items:
            yield item
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
