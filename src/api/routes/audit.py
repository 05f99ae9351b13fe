"""The audit log: who wrote, exported, erased or was refused what, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import TypeAdapter

from src.api.deps import RepositoryDep
from src.api.errors import problem_responses
from src.core.keys import KEY_NAME_PATTERN
from src.domain.audit import AuditAction, AuditEntry
from src.persistence.pagination import MAX_PAGE_SIZE

router = APIRouter(tags=["audit"], responses=problem_responses(400, 401, 403, 503))

_ENTRY_LIST = TypeAdapter(list[AuditEntry])


@router.get("/audit", response_model=list[AuditEntry], responses=problem_responses(422))
async def list_audit(
    repository: RepositoryDep,
    request: Request,
    after: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=1024,
            description="Where the previous page ended: the value its `Link` header carries",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    action: AuditAction | None = None,
    key_name: Annotated[
        str | None, Query(pattern=KEY_NAME_PATTERN, description="Only this key's entries")
    ] = None,
) -> Response:
    """Audit entries, newest first, a page at a time; `Link` leads to older ones (admin only).

    Writes, exports, erasures and refused requests (401, 403), each with the
    name of the key that sent it (`api_key` for API_KEY; null without a
    valid key). Never a key, a body or anything a participant said.
    """
    page = await repository.list_audit(action=action, key_name=key_name, limit=limit, cursor=after)
    headers = {}
    if page.next_cursor is not None:
        next_url = request.url.include_query_params(after=page.next_cursor)
        headers["Link"] = f'<{next_url.path}?{next_url.query}>; rel="next"'
    return Response(
        _ENTRY_LIST.dump_json(page.items), media_type="application/json", headers=headers
    )
