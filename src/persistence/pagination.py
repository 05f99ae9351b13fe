"""Opaque keyset cursors: the sort key of the last item on a page."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from src.core.errors import InvalidCursorError
from src.domain.models.session import Session
from src.domain.models.utterance import Speaker, Utterance

__all__ = [
    "MAX_PAGE_SIZE",
    "check_limit",
    "decode_cursor",
    "decode_turn_cursor",
    "encode_cursor",
    "encode_turn_cursor",
]

MAX_PAGE_SIZE = 500


def check_limit(limit: int) -> int:
    """Return `limit` when it is a page size this store serves, else raise ValueError."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}, not {limit!r}")
    return limit


def _encode(key: list[Any]) -> str:
    text = json.dumps(key, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, TypeError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursorError() from exc


def encode_cursor(last: Session) -> str:
    """The cursor that resumes a listing of sessions after `last`."""
    return _encode([last.created_at.isoformat(), last.id])


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) key a session cursor stands for.

    Raises:
        InvalidCursorError: the cursor was not made by `encode_cursor`.
    """
    key = _decode(cursor)
    try:
        created_at, session_id = key
        moment = datetime.fromisoformat(created_at)
    except (ValueError, TypeError) as exc:
        raise InvalidCursorError() from exc
    if not isinstance(session_id, str) or moment.tzinfo is None:
        raise InvalidCursorError()
    return moment, session_id


def encode_turn_cursor(last: Utterance) -> str:
    """The cursor that resumes a listing of utterances after `last`."""
    return _encode([last.turn_number, last.speaker.value])


def decode_turn_cursor(cursor: str) -> tuple[int, str]:
    """The (turn_number, speaker) key an utterance cursor stands for.

    Raises:
        InvalidCursorError: the cursor was not made by `encode_turn_cursor`.
    """
    key = _decode(cursor)
    try:
        turn_number, speaker = key
    except (ValueError, TypeError) as exc:
        raise InvalidCursorError() from exc
    if type(turn_number) is not int or turn_number < 0 or speaker not in set(Speaker):
        raise InvalidCursorError()
    return turn_number, speaker
