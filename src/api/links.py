"""Links in answers: a new session's `Location`, and the `Link` from one page of a listing
to the next."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request

__all__ = ["next_page_headers", "session_location"]


def session_location(session_id: str) -> str:
    """The path of the session, its id percent-encoded so that any id leads back to it:
    `?`, `%`, spaces and any character, and dots too, which URL normalisation removes
    (the server decodes `%2E` as ".")."""
    return "/sessions/" + quote(session_id, safe="").replace(".", "%2E")


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
