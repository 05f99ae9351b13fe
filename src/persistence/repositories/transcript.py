"""What every backend shares about utterances: rows to models, refusals, keys, walking pages."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from pydantic import ValidationError

from src.core.errors import (
    SessionEndedError,
    SessionError,
    SessionNotFoundError,
    StorageDamagedError,
    UtteranceExistsError,
)
from src.domain.lifecycle import FINAL_STATUSES
from src.domain.models.session import Session
from src.domain.models.turn import NumberedTurnRecord
from src.domain.models.utterance import NewUtterance, Speaker, Utterance
from src.persistence.pagination import (
    check_limit,
    decode_turn_cursor,
    encode_turn_cursor,
    walk_pages,
)
from src.persistence.repositories.common import Row
from src.persistence.repositories.protocol import SessionRepositoryProtocol, UtterancePage

__all__ = [
    "EXPORT_PAGE_SIZE",
    "start_key",
    "utterance_from_row",
    "utterance_page_from_rows",
    "utterance_refusal",
    "walk_turn_records",
    "walk_utterances",
]

EXPORT_PAGE_SIZE = 500
MAX_SHOWN_DEPTH = 128
"""Metadata nested deeper than this is not shown: the response serializer stops near 255
levels, and a response wraps an utterance's metadata in a few levels of its own."""

_validate_utterance = Utterance.__pydantic_validator__.validate_python
_LAST_SPEAKER = max(Speaker).value


def utterance_from_row(row: Row) -> Utterance:
    """The Utterance an `utterances` row stores, its columns in UTTERANCE_COLUMNS order.

    Raises:
        StorageDamagedError: the row holds what no Utterance can (written by hand, say).
    """
    try:
        utterance = _utterance_from_row(row)
    except (ValidationError, ValueError, TypeError, RecursionError) as exc:
        raise StorageDamagedError(str(row[0]), "utterance") from exc
    if utterance.metadata is not None and _too_deep(row[4], utterance.metadata):
        raise StorageDamagedError(utterance.session_id, "utterance")
    return utterance


def _too_deep(text: str, metadata: object) -> bool:
    """Whether stored metadata nests deeper than a response can show."""
    # Counting brackets is quick and bounds the depth, so most rows skip the walk.
    if text.count("{") + text.count("[") <= MAX_SHOWN_DEPTH:
        return False
    depth, level = 0, [metadata]
    while containers := [value for value in level if isinstance(value, dict | list)]:
        depth += 1
        level = [
            child
            for value in containers
            for child in (value.values() if isinstance(value, dict) else value)
        ]
    return depth > MAX_SHOWN_DEPTH


def _utterance_from_row(row: Row) -> Utterance:
    session_id, turn_number, speaker, text, metadata, created_at = row
    if isinstance(created_at, str):
        created_at = datetime.fromisoformat(created_at)
    utterance: Utterance = _validate_utterance(
        {
            "session_id": session_id,
            "turn_number": turn_number,
            "speaker": speaker,
            "text": text,
            "metadata": None if metadata is None else json.loads(metadata),
            "created_at": created_at,
        }
    )
    return utterance


def start_key(
    after_turn: int | None, cursor: str | None, limit: int, cursor_key: bytes
) -> tuple[int, str]:
    """The (turn_number, speaker) key a listing starts after: the later of both bounds.

    Raises:
        InvalidCursorError: (a ValueError) the cursor was not handed out by a listing.
        ValueError: `limit` is outside 1..500 or `after_turn` is negative.
    """
    check_limit(limit)
    if after_turn is not None and (isinstance(after_turn, bool) or after_turn < 0):
        raise ValueError(f"after_turn must be 0 or more, not {after_turn!r}")
    # (-1, last speaker) sorts before every stored key; (n, last speaker) after all of turn n.
    key = (-1 if after_turn is None else after_turn, _LAST_SPEAKER)
    if cursor is not None:
        key = max(key, decode_turn_cursor(cursor_key, cursor))
    return key


def utterance_page_from_rows(rows: Sequence[Row], limit: int, cursor_key: bytes) -> UtterancePage:
    """A page from up to `limit + 1` rows: the extra row only says that more remain."""
    items = [utterance_from_row(row) for row in rows[:limit]]
    more = len(rows) > limit
    return UtterancePage(items, encode_turn_cursor(cursor_key, items[-1]) if more else None)


def utterance_refusal(
    session_id: str, current: Session | None, utterance: NewUtterance
) -> SessionError:
    """Why an append stored nothing, given the session as it is now."""
    if current is None:
        return SessionNotFoundError(session_id)
    if current.status in FINAL_STATUSES:
        return SessionEndedError(session_id, current.status.value)
    return UtteranceExistsError(session_id, utterance.turn_number, utterance.speaker.value)


def walk_utterances(
    repository: SessionRepositoryProtocol, session_id: str
) -> AsyncIterator[Utterance]:
    """Every utterance of the session in turn order, read a page at a time.

    Raises:
        SessionNotFoundError: no session has this id.
    """
    return walk_pages(
        lambda cursor: repository.list_utterances(session_id, limit=EXPORT_PAGE_SIZE, cursor=cursor)
    )


async def walk_turn_records(
    repository: SessionRepositoryProtocol, session_id: str
) -> AsyncIterator[NumberedTurnRecord]:
    """Every turn record of the session in turn order, read a page at a time."""
    after: int | None = None
    while True:
        page = await repository.list_turn_records(
            session_id, after_turn=after, limit=EXPORT_PAGE_SIZE
        )
        for record in page:
            yield record
        if len(page) < EXPORT_PAGE_SIZE:
            return
        after = page[-1].turn_number
