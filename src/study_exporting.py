"""Exports as bytes, for the HTTP routes and the `export` command: one session in any
format (a graph read with it), or every session of a study in one stream.

A study streams session by session: its csv is one header and every session's
rows, its jsonl one JSON export per line, its qdpx one project (`src.domain.qdpx`).
Each session is read whole before any of it is sent, so that one deleted while
read is left out rather than cut short.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from enum import StrEnum
from typing import IO, TypeVar

from src.core.errors import SessionNotFoundError, StudyNotFoundError
from src.core.spooling import chunks, spool
from src.domain.export import CSV_COLUMNS, ExportFormat, export_record
from src.domain.models.graph import Graph, StoredSpan
from src.domain.models.session import Session
from src.domain.models.utterance import Utterance
from src.domain.qdpx import QdpxSource, qdpx, read_source
from src.domain.redaction import Pseudonymizer, redact_text
from src.persistence.pagination import walk_pages
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.persistence.repositories.transcript import walk_turn_records, walk_utterances

__all__ = [
    "LISTING_PAGE_SIZE",
    "StudyExportFormat",
    "export_session_bytes",
    "export_study",
    "study_session_ids",
]

T = TypeVar("T")

LISTING_PAGE_SIZE = 50
"""Sessions read at once to list the ids to export: a listing's page holds whole sessions,
state included, so a small page keeps memory flat however many sessions there are."""


class StudyExportFormat(StrEnum):
    """The formats a whole study exports to, by the name a client asks for."""

    QDPX = "qdpx"
    CSV = "csv"
    JSONL = "jsonl"

    @property
    def media_type(self) -> str:
        if self is StudyExportFormat.JSONL:
            return "application/jsonl"
        return ExportFormat(self.value).media_type

    @property
    def extension(self) -> str:
        return self.value


class _Reader:
    """One session's parts, pseudonymised when asked."""

    def __init__(
        self, repository: SessionRepositoryProtocol, pseudonymizer: Pseudonymizer | None
    ) -> None:
        self._repository = repository
        self._pseudonymizer = pseudonymizer

    def session(self, session: Session) -> Session:
        return session if self._pseudonymizer is None else self._pseudonymizer.session(session)

    def utterances(self, session_id: str) -> AsyncIterator[Utterance]:
        utterances = walk_utterances(self._repository, session_id)
        if self._pseudonymizer is None:
            return utterances
        return self._pseudonymizer.utterances(utterances)

    async def graph(self, session_id: str) -> Graph:
        """The session's graph; pseudonymised, its spans moved onto the redacted text."""
        graph = await self._repository.get_graph(session_id)
        if self._pseudonymizer is None:
            return graph
        texts: dict[tuple[int, str], str] = {}
        for turn in sorted({span.turn_number for node in graph.nodes for span in node.provenance}):
            page = await self._repository.list_utterances(session_id, after_turn=turn - 1, limit=2)
            for utterance in page.items:
                if utterance.turn_number == turn:
                    texts[(turn, utterance.speaker.value)] = utterance.text
        nodes = [
            node.model_copy(update={"provenance": _redacted_spans(node.provenance, texts)})
            for node in graph.nodes
        ]
        return Graph(nodes=nodes, edges=graph.edges)

    async def qdpx_source(self, session: Session) -> QdpxSource:
        graph = await self.graph(session.id)
        return await read_source(self.session(session), graph, self.utterances(session.id))

    async def text(self, session: Session, export_format: ExportFormat) -> AsyncIterator[str]:
        graph = None
        if export_format in (ExportFormat.MARKDOWN, ExportFormat.GRAPHML):
            graph = await self.graph(session.id)
        records = walk_turn_records(self._repository, session.id)
        pieces = export_record(
            self.session(session), self.utterances(session.id), export_format, records, graph
        )
        async for piece in pieces:
            yield piece


def _redacted_spans(spans: list[StoredSpan], texts: dict[tuple[int, str], str]) -> list[StoredSpan]:
    """The spans as they fall on their utterances' redacted text: an offset moves by what
    redaction changed before it. A span left empty, or on an utterance not found, is dropped."""
    moved = []
    for span in spans:
        text = texts.get((span.turn_number, span.speaker.value))
        if text is None:
            continue
        start = len(redact_text(text[: span.start]))
        end = min(len(redact_text(text[: span.end])), len(redact_text(text)))
        if start < end:
            moved.append(span.model_copy(update={"start": start, "end": end}))
    return moved


async def export_session_bytes(
    repository: SessionRepositoryProtocol,
    session: Session,
    export_format: ExportFormat,
    pseudonymizer: Pseudonymizer | None = None,
) -> AsyncIterator[bytes]:
    """The session's whole record in `export_format`, as UTF-8 (or zip) bytes."""
    reader = _Reader(repository, pseudonymizer)
    if export_format is ExportFormat.QDPX:

        async def one() -> AsyncIterator[QdpxSource]:
            yield await reader.qdpx_source(session)

        async for chunk in qdpx(session.id, one()):
            yield chunk
        return
    async for piece in reader.text(session, export_format):
        yield piece.encode()


async def study_session_ids(repository: SessionRepositoryProtocol, study_id: str) -> list[str]:
    """The ids of the study's sessions, oldest first.

    Raises:
        StudyNotFoundError: no session belongs to the study.
    """
    pages = walk_pages(
        lambda cursor: repository.list_sessions(
            study_id=study_id, limit=LISTING_PAGE_SIZE, cursor=cursor
        )
    )
    ids = [session.id async for session in pages]
    if not ids:
        raise StudyNotFoundError(study_id)
    return ids[::-1]


async def _each_whole(
    repository: SessionRepositoryProtocol,
    session_ids: list[str],
    read: Callable[[Session], Awaitable[T]],
) -> AsyncIterator[T]:
    """`read` of each session still there; one deleted while it is read is passed over."""
    for session_id in session_ids:
        session = await repository.get(session_id)
        if session is None:  # deleted since it was listed
            continue
        try:
            whole = await read(session)
        except SessionNotFoundError:
            continue
        yield whole


async def export_study(
    repository: SessionRepositoryProtocol,
    study_id: str,
    session_ids: list[str],
    export_format: StudyExportFormat,
    pseudonymizer: Pseudonymizer | None = None,
) -> AsyncIterator[bytes]:
    """The sessions of the study `study_id` (`study_session_ids`) in one stream of
    `export_format`; a session deleted meanwhile is passed over."""
    reader = _Reader(repository, pseudonymizer)
    if export_format is StudyExportFormat.QDPX:
        async for chunk in qdpx(study_id, _each_whole(repository, session_ids, reader.qdpx_source)):
            yield chunk
        return
    text_format = ExportFormat.CSV
    if export_format is StudyExportFormat.JSONL:
        text_format = ExportFormat.JSON

    async def text(session: Session) -> IO[bytes]:
        return await spool(piece.encode() async for piece in reader.text(session, text_format))

    header = (",".join(CSV_COLUMNS) + "\r\n").encode()
    first = True
    async for whole in _each_whole(repository, session_ids, text):
        with whole:
            if text_format is ExportFormat.CSV and not first:
                whole.seek(len(header))  # every session's csv begins with the header
            first = False
            for chunk in chunks(whole):
                yield chunk
