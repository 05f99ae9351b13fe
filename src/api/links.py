"""The `Link` header that leads a client from one page of a listing to the next."""

from __future__ import annotations

from fastapi import Request

__all__ = ["next_page_headers"]


def next_page_headers(
    request: Request, next_cursor: str | int | None, *, parameter: str = "cursor"
) -> dict[str, str]:
    """`Link: <this listing with the cursor>; rel="next"`, or nothing on the last page.

    `parameter` names the query parameter that carries the cursor (`after`, say).
    """
    if next_cursor is None:
        return {}
    next_url = request.url.include_query_params(**{parameter: next_cursor})
    return {"Link": f'<{next_url.path}?{next_url.query}>; rel="next"'}
