"""What every backend shares about search: filters, the key a page starts after, rows to hits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from src.core.errors import StorageDamagedError
from src.domain.models.utterance import Speaker
from src.domain.search import SearchHit
from src.persistence.pagination import check_limit, decode_search_cursor, encode_search_cursor
from src.persistence.repositories.common import Row
from src.persistence.repositories.protocol import SearchPage

__all__ = ["search_filters", "search_page_from_rows", "search_start"]


def search_filters(
    speaker: Speaker | str | None,
    methodology: str | None,
    limit: int,
    *,
    study_id: str | None = None,
    participant_id: str | None = None,
) -> dict[str, str]:
    """The search's filters that are set, by name, always in the same order.

    Raises:
        ValueError: `limit` is outside 1..500 or `speaker` is not a speaker.
    """
    check_limit(limit)
    values = {
        "study_id": study_id,
        "participant_id": participant_id,
        "speaker": None if speaker is None else Speaker(speaker).value,
        "methodology": methodology,
    }
    return {name: value for name, value in values.items() if value is not None}


def search_start(cursor: str | None, cursor_key: bytes) -> dict[str, Any]:
    """The parameters of the hit a page starts after; none for the first page.

    Raises:
        InvalidCursorError: (a ValueError) the cursor was not handed out by a search.
    """
    if cursor is None:
        return {}
    rank, session_id, turn_number, speaker = decode_search_cursor(cursor_key, cursor)
    return {
        "after_rank": rank,
        "after_session_id": session_id,
        "after_turn_number": turn_number,
        "after_speaker": speaker,
    }


def _hit(row: Row) -> SearchHit:
    session_id, study_id, participant_id, turn_number, speaker, snippet, rank = row
    try:
        return SearchHit(
            session_id=session_id,
            study_id=study_id,
            participant_id=participant_id,
            turn_number=turn_number,
            speaker=speaker,
            snippet=snippet,
            rank=rank,
        )
    except ValidationError as exc:
        raise StorageDamagedError(str(session_id), "utterance") from exc


def search_page_from_rows(rows: Sequence[Row], limit: int, cursor_key: bytes) -> SearchPage:
    """A page from up to `limit + 1` rows: the extra row only says that more remain."""
    items = [_hit(row) for row in rows[:limit]]
    if len(rows) <= limit:
        return SearchPage(items, None)
    last = items[-1]
    cursor = encode_search_cursor(
        cursor_key, last.rank, last.session_id, last.turn_number, last.speaker.value
    )
    return SearchPage(items, cursor)
