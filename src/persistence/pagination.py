"""Opaque keyset cursors: the (created_at, id) of the last session on a page."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from src.core.errors import InvalidCursorError
from src.domain.models.session import Session

__all__ = ["MAX_PAGE_SIZE", "check_limit", "decode_cursor", "encode_cursor"]

MAX_PAGE_SIZE = 500


def check_limit(limit: int) -> int:
    """Return `limit` when it is a page size this store serves, else raise ValueError."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}, not {limit!r}")
    return limit


def encode_cursor(last: Session) -> str:
    """The cursor that resumes a listing after `last`."""
    key = json.dumps([last.created_at.isoformat(), last.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) key a cursor stands for.

    Raises:
        InvalidCursorError: the cursor was not made by `encode_cursor`.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, session_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        moment = datetime.fromisoformat(created_at)
    except (ValueError, TypeError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursorError() from exc
    if not isinstance(session_id, str) or moment.tzinfo is None:
        raise InvalidCursorError()
    return moment, session_id
