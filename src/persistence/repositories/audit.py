"""What every backend shares about the audit log: entries as stored, filters, cursors, pages."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import ValidationError

from src.core.errors import InvalidCursorError, StorageDamagedError
from src.domain.audit import AuditAction, AuditEntry
from src.persistence.pagination import check_limit, sign

if TYPE_CHECKING:  # common imports the protocol, which imports this module
    from src.persistence.repositories.common import Row

__all__ = [
    "AUDIT_COLUMNS",
    "AuditPage",
    "audit_filters",
    "audit_page_from_rows",
    "audit_start",
    "entries_json",
]

AUDIT_COLUMNS = "id, at, key_name, action, method, path, session_id, counts"
"""The order in which every query returns an audit entry's columns."""

# An id past this cannot be bound as a 64-bit integer, so no cursor holds one.
_MAX_ID = 2**63 - 1


class AuditPage(NamedTuple):
    """One page of the audit log, newest first; `next_cursor` is None on the last."""

    items: list[AuditEntry]
    next_cursor: str | None


def entries_json(entries: Sequence[AuditEntry]) -> str:
    """The entries as one JSON array the insert reads, times as fixed-width UTC text.

    Fixed width (as SQLite keeps every timestamp) so that text order is time
    order; PostgreSQL reads the same text as a timestamptz.
    """
    return json.dumps(
        [
            {
                "at": entry.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "key_name": entry.key_name,
                "action": entry.action.value,
                "method": entry.method,
                "path": entry.path,
                "session_id": entry.session_id,
                "counts": entry.counts,
            }
            for entry in entries
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def audit_filters(
    action: AuditAction | str | None, key_name: str | None, limit: int
) -> dict[str, str]:
    """The listing's filters that are set, by column, always in the same order.

    Raises:
        ValueError: `limit` is outside 1..500 or `action` is not an action.
    """
    check_limit(limit)
    values = {
        "action": None if action is None else AuditAction(action).value,
        "key_name": key_name,
    }
    return {column: value for column, value in values.items() if value is not None}


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def audit_start(cursor: str | None, cursor_key: bytes) -> dict[str, Any]:
    """The parameter of the entry a page starts after (older than); none for the first page.

    Raises:
        InvalidCursorError: (a ValueError) the cursor was not handed out by an audit listing.
    """
    if cursor is None:
        return {}
    try:
        payload = _unb64(cursor.split(".")[0])
        # Only a cursor signed exactly as this store signs one is read at all.
        if not hmac.compare_digest(cursor.encode(), sign(cursor_key, payload).encode()):
            raise InvalidCursorError()
        sort_key = json.loads(payload)
    except (ValueError, TypeError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursorError() from exc
    if not (isinstance(sort_key, list) and len(sort_key) == 2 and sort_key[0] == "audit"):
        raise InvalidCursorError()
    after_id = sort_key[1]
    if type(after_id) is not int or not 0 < after_id <= _MAX_ID:
        raise InvalidCursorError()
    return {"after_id": after_id}


def _entry(row: Row) -> AuditEntry:
    entry_id, at, key_name, action, method, path, session_id, counts = row
    try:
        return AuditEntry(
            at=datetime.fromisoformat(at) if isinstance(at, str) else at,
            key_name=key_name,
            action=action,
            method=method,
            path=path,
            session_id=session_id,
            counts=json.loads(counts) if isinstance(counts, str) else counts,
        )
    except (ValidationError, ValueError) as exc:
        # Written by hand or by another version: the rest of the log is readable.
        raise StorageDamagedError(str(session_id), f"audit entry {entry_id}") from exc


def audit_page_from_rows(rows: Sequence[Row], limit: int, cursor_key: bytes) -> AuditPage:
    """A page from up to `limit + 1` rows: the extra row only says that more remain."""
    items = [_entry(row) for row in rows[:limit]]
    if len(rows) <= limit:
        return AuditPage(items, None)
    last_id = int(rows[limit - 1][0])
    payload = json.dumps(["audit", last_id], separators=(",", ":")).encode()
    return AuditPage(items, sign(cursor_key, payload))
