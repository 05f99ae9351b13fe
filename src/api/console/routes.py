"""The console's pages: sessions with filters, one session with its transcript, the key form.

Every page only reads. With an API key set, the key form takes the key once
and keeps it in an HttpOnly, SameSite=Strict cookie, which the API-key
middleware reads for these pages (src.api.access says where).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from http import HTTPStatus
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from src.api.api_key import cookie_value, key_ring_of
from src.api.console.paths import (
    ASSETS_DIRECTORY,
    ASSETS_PATH,
    HOME_PATH,
    KEY_COOKIE,
    KEY_FORM_PATH,
    LOGOUT_PATH,
    SEARCH_PAGE_PATH,
)
from src.api.deps import RepositoryDep, SessionIdPath, SettingsDep
from src.core.errors import InvalidSearchQueryError
from src.core.keys import Scope
from src.domain.export import ExportFormat
from src.domain.graph_export import Quotes
from src.domain.lifecycle import FINAL_STATUSES
from src.domain.models.graph import Graph
from src.domain.models.session import (
    LABEL_KEY_PATTERN,
    ConceptId,
    Methodology,
    ParticipantId,
    SessionStatus,
    StudyId,
)
from src.domain.models.turn import Change
from src.domain.models.utterance import Utterance
from src.domain.search import MARK_END, MARK_START
from src.persistence.pagination import MAX_PAGE_SIZE, walk_pages
from src.persistence.repositories.protocol import SessionRepositoryProtocol

__all__ = ["FORM_PATHS", "install_console"]

# The bodies of these paths are HTML forms, not JSON.
FORM_PATHS = frozenset({KEY_FORM_PATH, LOGOUT_PATH})

SESSIONS_PAGE_SIZE = 50
STUDIES_SHOWN = 20
HISTORY_SHOWN = 50
MAX_NODES_DRAWN = 150
MAX_KEY_LENGTH = 1024

# Nothing from elsewhere, no inline script or style: even text that escaped
# its escaping could run nothing. `connect-src 'self'` lets the live
# transcript reach /events.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # The pages show research data: no shared cache may keep them.
    "Cache-Control": "no-store",
}

_templates = Environment(
    loader=FileSystemLoader(ASSETS_DIRECTORY.parent / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters["segment"] = lambda value: quote(str(value), safe="")

router = APIRouter(prefix=HOME_PATH, include_in_schema=False)


def install_console(app: FastAPI) -> None:
    """Serve the console's pages and its stylesheet and script."""
    app.include_router(router)
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIRECTORY), name="console-assets")


def _page(
    request: Request,
    template: str,
    status_code: int = HTTPStatus.OK,
    *,
    nav: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """A rendered page; `nav` names the navigation entry it belongs to."""
    signed_in = key_ring_of(request.scope) is not None and KEY_COOKIE in request.cookies
    html = _templates.get_template(template).render(
        root=request.scope.get("root_path", ""), signed_in=signed_in, nav=nav, **context
    )
    return HTMLResponse(html, status_code, headers=_PAGE_HEADERS)


def _blank_is_none(value: object) -> object:
    # An empty form field means "any", as if it were not sent.
    return None if isinstance(value, str) and not value.strip() else value


class SessionFilters(BaseModel):
    """The sessions list's filters, as its form sends them; an unknown one is a 422."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["all"] | SessionStatus = "all"
    methodology: Methodology | None = None
    concept_id: ConceptId | None = None
    study_id: StudyId | None = None
    participant_id: ParticipantId | None = None
    label: Annotated[str | None, Field(pattern=LABEL_FILTER_PATTERN, max_length=400)] = None
    created_from: date | None = None
    created_to: date | None = None
    cursor: Annotated[str | None, Field(min_length=1, max_length=1024)] = None

    _blank = field_validator(
        "methodology",
        "concept_id",
        "study_id",
        "participant_id",
        "label",
        "created_from",
        "created_to",
        "cursor",
        mode="before",
    )(_blank_is_none)

    def listing(self) -> dict[str, Any]:
        """The repository's filters: a day range covers whole UTC days, both ends included."""
        labels = [] if self.label is None else [tuple(self.label.split(":", 1))]
        return {
            "status": None if self.status == "all" else self.status,
            "methodology": self.methodology,
            "concept_id": self.concept_id,
            "study_id": self.study_id,
            "participant_id": self.participant_id,
            "labels": labels,
            "created_after": None
            if self.created_from is None
            else _day_start(self.created_from) - timedelta(microseconds=1),
            "created_before": None
            if self.created_to is None
            else _day_start(self.created_to) + timedelta(days=1),
        }


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


LABEL_FILTER_PATTERN = LABEL_KEY_PATTERN.removesuffix("$") + ":"
STATUS_CHOICES = ["all", *SessionStatus]
_EXPORT_LABELS = {ExportFormat.MARKDOWN: "Markdown"}  # the others are acronyms
_CHANGE_NAMES = {
    Change.CREATED: "created",
    Change.STATE: "state changed",
    Change.TURN: "turn recorded",
    Change.TRANSITION: "status changed",
    Change.LABELS: "labels or participant changed",
    Change.GRAPH: "graph changed",
}


# Like /sessions, the list answers with and without the slash, with no redirect.
@router.get("")
@router.get("/")
async def sessions_page(
    request: Request, repository: RepositoryDep, filters: Annotated[SessionFilters, Query()]
) -> HTMLResponse:
    """The studies most recently written to, then sessions newest first, filtered, a page
    at a time."""
    page = await repository.list_sessions(
        **filters.listing(), limit=SESSIONS_PAGE_SIZE, cursor=filters.cursor
    )
    studies = await repository.list_studies(limit=STUDIES_SHOWN)
    chosen = filters.model_dump(mode="json", exclude={"cursor"}, exclude_none=True)
    first_page = f"?{urlencode(chosen)}"
    next_page = None
    if page.next_cursor is not None:
        next_page = f"?{urlencode({**chosen, 'cursor': page.next_cursor})}"
    return _page(
        request,
        "sessions.html",
        nav="sessions",
        filters=filters,
        statuses=STATUS_CHOICES,
        studies=studies,
        study_exports=[("QDPX", "qdpx"), ("CSV", "csv"), ("JSONL", "jsonl")],
        sessions=page.items,
        first_page=first_page if filters.cursor else None,
        next_page=next_page,
    )


@router.get("/sessions/{session_id}")
async def session_page(
    request: Request,
    session_id: SessionIdPath,
    repository: RepositoryDep,
    settings: SettingsDep,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
) -> HTMLResponse:
    """One session: what it is, its state, its exports and its transcript."""
    session = await repository.get(session_id)
    if session is None:
        return _page(
            request, "not_found.html", HTTPStatus.NOT_FOUND, nav="sessions", session_id=session_id
        )
    transcript = await repository.list_utterances(session_id, limit=MAX_PAGE_SIZE, cursor=cursor)
    root = request.scope.get("root_path", "")
    export_path = f"{root}/sessions/{quote(session.id, safe='')}/export"
    exports = [
        (
            _EXPORT_LABELS.get(export_format, export_format.value.upper()),
            f"{export_path}?format={export_format}",
        )
        for export_format in ExportFormat
    ]
    if settings.pseudonym_key is not None:
        exports += [
            (f"{label}, pseudonymised", f"{url}&pseudonymize=true") for label, url in exports
        ]
    history = await repository.list_versions(session_id, limit=HISTORY_SHOWN)
    graph = await repository.get_graph(session_id)
    # Only the last page grows, and only while the interview can still go on.
    live = transcript.next_cursor is None and session.status not in FINAL_STATUSES
    return _page(
        request,
        "session.html",
        nav="sessions",
        session=session,
        state=session.state.model_dump(),
        exports=exports,
        utterances=transcript.items,
        later_page=cursor is not None,
        next_page=None
        if transcript.next_cursor is None
        else f"?{urlencode({'cursor': transcript.next_cursor})}",
        events=f"{root}/events?{urlencode({'session_id': session.id})}" if live else None,
        history=history.items,
        change_names=_CHANGE_NAMES,
        more_history=history.next_after is not None,
        versions_path=f"{root}/sessions/{quote(session.id, safe='')}/versions",
        graph=graph,
        # The page already read the whole transcript when it starts at turn 0 and has no next.
        quotes=await _quotes(
            repository,
            session_id,
            graph,
            transcript.items if cursor is None and transcript.next_cursor is None else None,
        ),
        drawing=_drawing(graph),
    )


async def _quotes(
    repository: SessionRepositoryProtocol,
    session_id: str,
    graph: Graph,
    whole_transcript: list[Utterance] | None,
) -> Quotes:
    """What each node's spans quote, from the whole transcript (read here unless given)."""
    quotes = Quotes(graph)
    if not graph.nodes:
        return quotes
    if whole_transcript is None:
        utterances: AsyncIterator[Utterance] = walk_pages(
            lambda cursor: repository.list_utterances(
                session_id, limit=MAX_PAGE_SIZE, cursor=cursor
            )
        )
        async for utterance in utterances:
            quotes.see(utterance.turn_number, utterance.speaker.value, utterance.text)
        return quotes
    for utterance in whole_transcript:
        quotes.see(utterance.turn_number, utterance.speaker.value, utterance.text)
    return quotes


def _drawing(graph: Graph) -> dict[str, Any] | None:
    """Where to draw each node (on a circle) and each edge; None when there are too many."""
    nodes = [node for node in graph.nodes if node.superseded_by is None]
    if not nodes or len(nodes) > MAX_NODES_DRAWN:
        return None
    radius = 40 + 12 * len(nodes)
    size = 2 * radius + 240
    centre = size / 2
    places = {}
    for index, node in enumerate(nodes):
        angle = 2 * math.pi * index / len(nodes) - math.pi / 2
        places[node.id] = (
            round(centre + radius * math.cos(angle), 1),
            round(centre + radius * math.sin(angle), 1),
        )
    types = sorted({node.type for node in nodes})
    return {
        "size": size,
        "nodes": [(node, *places[node.id], types.index(node.type) % 6) for node in nodes],
        "edges": [
            (edge, *places[edge.source], *places[edge.target])
            for edge in graph.edges
            if edge.source in places and edge.target in places
        ],
        "types": [(name, number % 6) for number, name in enumerate(types)],
    }


@router.get(SEARCH_PAGE_PATH.removeprefix(HOME_PATH))
async def search_page(
    request: Request,
    repository: RepositoryDep,
    q: Annotated[str | None, Query(max_length=1000)] = None,
    study_id: Annotated[StudyId | None, BeforeValidator(_blank_is_none)] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
) -> HTMLResponse:
    """What was said, found across every interview: the best matches first, a page at a time."""
    context: dict[str, Any] = {"query": q or "", "study_id": study_id, "hits": [], "problem": None}
    if q is None or not q.strip():
        return _page(request, "search.html", nav="search", **context, next_page=None)
    try:
        page = await repository.search(
            q, study_id=study_id, limit=SESSIONS_PAGE_SIZE, cursor=cursor
        )
    except InvalidSearchQueryError as exc:
        context["problem"] = str(exc)
        return _page(
            request,
            "search.html",
            HTTPStatus.UNPROCESSABLE_ENTITY,
            nav="search",
            **context,
            next_page=None,
        )
    chosen = {"q": q, **({"study_id": study_id} if study_id else {})}
    context["hits"] = [(hit, _marked(hit.snippet)) for hit in page.items]
    return _page(
        request,
        "search.html",
        nav="search",
        **context,
        next_page=None
        if page.next_cursor is None
        else f"?{urlencode({**chosen, 'cursor': page.next_cursor})}",
    )


def _marked(snippet: str) -> list[tuple[str, bool]]:
    """A snippet's pieces, each with whether it is a match, for the template to escape."""
    pieces: list[tuple[str, bool]] = []
    for number, part in enumerate(snippet.split(MARK_START)):
        if number == 0:
            pieces.append((part, False))
            continue
        match, _, rest = part.partition(MARK_END)
        pieces += [(match, True), (rest, False)]
    return [(text, marked) for text, marked in pieces if text]


def _safe_next(value: str | None) -> str:
    """Where to go after the key form: a console page, never another site."""
    if value is None or "\\" in value or any(ord(character) < 0x20 for character in value):
        return HOME_PATH
    if value == HOME_PATH or value.startswith((f"{HOME_PATH}/", f"{HOME_PATH}?")):
        return value
    return HOME_PATH


def _from_another_site(request: Request) -> bool:
    # Browsers say where a request came from; a form on another site must not
    # be able to set which key this browser uses.
    return request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")


@router.get("/key")
async def key_form(
    request: Request, next_page: Annotated[str | None, Query(alias="next", max_length=4096)] = None
) -> Response:
    """The form that asks for the API key."""
    if key_ring_of(request.scope) is None:
        return RedirectResponse(_safe_next(next_page), HTTPStatus.SEE_OTHER)
    return _page(request, "key.html", next=_safe_next(next_page), problem=None)


@router.post("/key")
async def take_key(request: Request) -> Response:
    """Check the key with the server's key ring; keep it in the cookie if it may read."""
    keys = key_ring_of(request.scope)
    form = parse_qs((await request.body()).decode("utf-8"), keep_blank_values=True)
    next_page = _safe_next(form.get("next", [None])[0])
    if keys is None:
        return RedirectResponse(next_page, HTTPStatus.SEE_OTHER)
    if _from_another_site(request):
        return _page(
            request,
            "key.html",
            HTTPStatus.FORBIDDEN,
            next=next_page,
            problem="The key can only be entered on this server's own form.",
        )
    key = form.get("key", [""])[0].strip()
    caller = keys.caller(key.encode()) if 0 < len(key) <= MAX_KEY_LENGTH else None
    if caller is None or Scope.READ not in caller.scopes:
        problem = (
            "That is not a key this server accepts."
            if caller is None
            else (f"The key {caller.name!r} may not read; the console needs the read scope.")
        )
        return _page(request, "key.html", HTTPStatus.UNAUTHORIZED, next=next_page, problem=problem)
    response = RedirectResponse(next_page, HTTPStatus.SEE_OTHER)
    response.set_cookie(
        KEY_COOKIE,
        cookie_value(key),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def forget_key(request: Request) -> Response:
    """Forget the key this browser keeps."""
    response = RedirectResponse(KEY_FORM_PATH, HTTPStatus.SEE_OTHER)
    response.delete_cookie(
        KEY_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response
