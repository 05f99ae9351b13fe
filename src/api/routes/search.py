"""Full-text search over what was said in every session."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import TypeAdapter

from src.api.deps import RepositoryDep
from src.api.errors import problem_responses
from src.api.links import next_page_headers
from src.domain.models.session import Methodology, ParticipantId, StudyId
from src.domain.models.utterance import Speaker
from src.domain.search import MAX_QUERY_LENGTH, SearchHit
from src.persistence.pagination import MAX_PAGE_SIZE

router = APIRouter(tags=["search"], responses=problem_responses(400, 401, 503))

_HIT_LIST = TypeAdapter(list[SearchHit])


@router.get("/search", response_model=list[SearchHit], responses=problem_responses(422))
async def search(
    repository: RepositoryDep,
    request: Request,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_QUERY_LENGTH,
            description='Words (all must match), "quoted phrases" and prefixes like coff*; '
            "case and accents do not count, and nothing else is search syntax.",
        ),
    ],
    study_id: StudyId | None = None,
    participant_id: ParticipantId | None = None,
    speaker: Speaker | None = None,
    methodology: Methodology | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
) -> Response:
    """Utterances that match `q`, best first, a page at a time; `Link` leads to the next.

    Each hit's `snippet` is plain text with every match wrapped in
    `<mark>`...`</mark>`; nothing else in it is escaped.
    """
    page = await repository.search(
        q,
        study_id=study_id,
        participant_id=participant_id,
        speaker=speaker,
        methodology=methodology,
        limit=limit,
        cursor=cursor,
    )
    return Response(
        _HIT_LIST.dump_json(page.items),
        media_type="application/json",
        headers=next_page_headers(request, page.next_cursor),
    )
