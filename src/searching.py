"""Search results as lines of text, for the `interview-system search` command."""

from __future__ import annotations

import asyncio
from typing import TextIO

from src.domain.models.utterance import Speaker
from src.persistence.pagination import MAX_PAGE_SIZE
from src.persistence.repositories.protocol import SessionRepositoryProtocol

__all__ = ["write_search"]


async def write_search(
    repository: SessionRepositoryProtocol,
    query: str,
    out: TextIO,
    *,
    study_id: str | None = None,
    participant_id: str | None = None,
    speaker: Speaker | str | None = None,
    methodology: str | None = None,
    limit: int = 20,
) -> int:
    """Write up to `limit` hits of `query`, best first, one line each; return how many.

    A line is the session id, the turn number, the speaker and the snippet
    (matches in `<mark>`...`</mark>`, line breaks as spaces), separated by tabs.

    Raises:
        InvalidSearchQueryError: (a ValueError) the query is blank, too long or has no word.
        ValueError: `limit` is below 1 or `speaker` is not a speaker.
    """
    if limit < 1:
        raise ValueError(f"limit must be 1 or more, not {limit}")
    written = 0
    cursor: str | None = None
    while written < limit:
        page = await repository.search(
            query,
            study_id=study_id,
            participant_id=participant_id,
            speaker=speaker,
            methodology=methodology,
            limit=min(limit - written, MAX_PAGE_SIZE),
            cursor=cursor,
        )
        lines = [
            f"{hit.session_id}\t{hit.turn_number}\t{hit.speaker.value}\t"
            + " ".join(hit.snippet.split())
            + "\n"
            for hit in page.items
        ]
        await asyncio.to_thread(out.writelines, lines)
        written += len(lines)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return written
