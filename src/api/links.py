"""The `Link` header that leads a client from one page of a listing to the next."""

from __future__ import annotations

from fastapi import Request

__all__ = ["next_page_headers"]


def next_page_headers(request: Request, next_cursor: str | None) -> dict[str, str]:
    """`Link: <this listing with the cursor>; rel="next"`, or nothing on the last page."""
    if next_cursor is None:
        return {}
    next_url = request.url.include_query_params(cursor=next_cursor)
    return {"Link": f'<{next_url.path}?{next_url.query}>; rel="next"'}
