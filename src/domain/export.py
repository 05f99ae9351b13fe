"""A session's research record as JSON, Markdown or CSV, written as it is read.

Each format takes the session and an async iterator of its utterances and
yields text a piece at a time, so a transcript of any length exports in
flat memory.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC
from enum import StrEnum
from typing import NamedTuple

from src.domain.graph_export import Quotes, graphml, markdown_graph
from src.domain.models.graph import Graph
from src.domain.models.json import compact_json
from src.domain.models.session import Session
from src.domain.models.turn import NumberedTurnRecord
from src.domain.models.utterance import Utterance, metadata_json

__all__ = [
    "CSV_COLUMNS",
    "EXPORT_FORMAT_NAME",
    "EXPORT_FORMAT_VERSION",
    "ExportFormat",
    "SessionExport",
    "export_record",
    "markdown_text",
    "parse_json_export",
    "read_json_export",
    "session_export_file_name",
]

EXPORT_FORMAT_NAME = "interview-session-export"
EXPORT_FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)
"""Version 1 has no turn records; its session has none of the fields version 2 added."""

CSV_COLUMNS = (
    "session_id",
    "methodology",
    "concept_id",
    "concept_name",
    "status",
    "version",
    "turn_count",
    "coverage_score",
    "last_strategy",
    "session_created_at",
    "session_updated_at",
    "session_ended_at",
    "turn_number",
    "speaker",
    "text",
    "metadata",
    "utterance_created_at",
    # Added in export format 2: who and what the session belongs to, and its turn's record.
    "study_id",
    "participant_id",
    "labels",
    "config",
    "record_strategy",
    "record_scores",
    "record_signals",
    "record_model",
    "record_input_tokens",
    "record_output_tokens",
    "record_cost_usd",
    "record_latency_ms",
)


class ExportFormat(StrEnum):
    """The export formats, by the name a client asks for."""

    JSON = "json"
    MARKDOWN = "markdown"
    CSV = "csv"
    GRAPHML = "graphml"
    QDPX = "qdpx"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]

    @property
    def extension(self) -> str:
        return {
            "json": "json",
            "markdown": "md",
            "csv": "csv",
            "graphml": "graphml",
            "qdpx": "qdpx",
        }[self.value]


_MEDIA_TYPES = {
    ExportFormat.JSON: "application/json",
    ExportFormat.MARKDOWN: "text/markdown; charset=utf-8",
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.GRAPHML: "application/graphml+xml",
    ExportFormat.QDPX: "application/zip",
}


async def _json(
    session: Session, utterances: AsyncIterator[Utterance], records: _Records, graph: Graph
) -> AsyncIterator[str]:
    yield (
        f'{{"format":"{EXPORT_FORMAT_NAME}","format_version":{EXPORT_FORMAT_VERSION},'
        f'"session":{session.model_dump_json()},"utterances":['
    )
    separator = ""
    async for utterance in utterances:
        yield separator + utterance.model_dump_json(exclude={"session_id"})
        separator = ","
    yield "]"
    async for piece in _json_records(records):
        yield piece
    yield "}\n"


async def _json_records(records: _Records) -> AsyncIterator[str]:
    yield ',"records":['
    separator = ""
    async for record in records.all():
        yield separator + record.model_dump_json()
        separator = ","
    yield "]"


# Characters CommonMark (or GitHub's dialect: tables, strikethrough, math)
# reads as markup anywhere in a line; a backslash makes each one literal.
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>#&!|~$])")
# What starts a list item or a setext heading underline at a line's start.
_MARKDOWN_LINE_START = re.compile(r"^([ \t]*)([+=-]|\d+(?=[.)]))")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def markdown_text(text: str) -> str:
    """`text` as Markdown that any CommonMark renderer shows as exactly this text.

    Markup characters are escaped, and each line break becomes a hard line
    break (a backslash before it), so no line of the text can start a block,
    end the paragraph or list item it is in, or hide what follows.
    """
    lines = _LINE_BREAK.split(text)
    # A break at the very end would leave its backslash at the paragraph's end,
    # where it shows; trailing blank lines show nothing anyway.
    while len(lines) > 1 and not lines[-1].strip(" \t"):
        lines.pop()
    return "\\\n".join(_markdown_line(line) for line in lines)


def _markdown_line(line: str) -> str:
    line = _MARKDOWN_INLINE.sub(r"\\\1", line)
    return _MARKDOWN_LINE_START.sub(_escape_line_start, line)


def _escape_line_start(match: re.Match[str]) -> str:
    indent, mark = match.groups()
    # CommonMark escapes punctuation, not digits: "1." becomes "1\.".
    if mark[0].isdigit():
        return f"{indent}{mark}\\"
    return f"{indent}\\{mark}"


async def _markdown(
    session: Session, utterances: AsyncIterator[Utterance], records: _Records, graph: Graph
) -> AsyncIterator[str]:
    state = session.state
    text = markdown_text
    lines = [
        f"# Interview session {text(session.id)}",
        "",
        f"- Methodology: {text(session.methodology)}",
        f"- Concept: {text(session.concept_name)} ({text(session.concept_id)})",
        f"- Status: {session.status.value}",
        f"- Started: {session.created_at.isoformat()}",
        f"- Last changed: {session.updated_at.isoformat()}",
        f"- Ended: {session.ended_at.isoformat() if session.ended_at else 'not yet'}",
        f"- Turns: {state.turn_count}; coverage {state.coverage_score:g}; "
        f"last strategy: {text(state.last_strategy) if state.last_strategy else 'none'}",
        f"- Version: {session.version}",
        *_markdown_session_lines(session),
        "",
        "## Transcript",
        "",
    ]
    yield "\n".join(lines) + "\n"
    turn: int | None = None
    quotes = Quotes(graph)
    async for utterance in utterances:
        quotes.see(utterance.turn_number, utterance.speaker.value, utterance.text)
        if utterance.turn_number != turn and turn is not None:
            yield await _markdown_record(records, turn)
        heading = f"### Turn {utterance.turn_number}\n\n" if utterance.turn_number != turn else ""
        turn = utterance.turn_number
        yield f"{heading}**{utterance.speaker.value.capitalize()}:** "
        yield f"{text(utterance.text)}\n\n"
    if turn is None:
        yield "_No utterances were recorded._\n"
    else:
        yield await _markdown_record(records, turn)
    for line in markdown_graph(graph, quotes, markdown_text):
        yield line


def _markdown_session_lines(session: Session) -> list[str]:
    """Who and what the session belongs to; every value the client wrote is escaped."""
    usage = session.usage
    labels = ", ".join(f"{key}={value}" for key, value in sorted(session.labels.items()))
    forked = session.forked_from
    return [
        f"- Study: {markdown_text(session.study_id or 'none')}",
        f"- Participant: {markdown_text(session.participant_id or 'none')}",
        f"- Labels: {markdown_text(labels or 'none')}",
        f"- Config: {markdown_text(compact_json(session.config))}",
        f"- Usage: {usage.turns} records; {usage.input_tokens} input and "
        f"{usage.output_tokens} output tokens; cost {usage.cost_usd:g} USD; "
        f"latency {usage.latency_ms:g} ms",
        f"- Forked from: {markdown_text(forked.session_id)} at turn {forked.turn_number}"
        if forked
        else "- Forked from: none",
    ]


async def _markdown_record(records: _Records, turn: int) -> str:
    """The turn's record as a list under its utterances; empty when it has none."""
    record = await records.of_turn(turn)
    if record is None:
        return ""
    usage = record.usage
    scores = ", ".join(f"{name} {value:g}" for name, value in record.scores.items())
    lines = [
        f"- Strategy: {markdown_text(record.strategy or 'none')}",
        f"- Scores: {markdown_text(scores or 'none')}",
        f"- Signals: {markdown_text(compact_json(record.signals))}",
        f"- Usage: {markdown_text(usage.model or 'unknown model')}; {usage.input_tokens} input "
        f"and {usage.output_tokens} output tokens; cost {usage.cost_usd:g} USD; "
        f"latency {usage.latency_ms:g} ms",
    ]
    return "\n".join(lines) + "\n\n"


async def _csv(
    session: Session, utterances: AsyncIterator[Utterance], records: _Records, graph: Graph
) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    state = session.state
    session_columns = [
        session.id,
        session.methodology,
        session.concept_id,
        session.concept_name,
        session.status.value,
        session.version,
        state.turn_count,
        state.coverage_score,
        state.last_strategy or "",
        session.created_at.isoformat(),
        session.updated_at.isoformat(),
        session.ended_at.isoformat() if session.ended_at else "",
    ]
    async for utterance in utterances:
        writer.writerow(
            [
                *session_columns,
                utterance.turn_number,
                utterance.speaker.value,
                utterance.text,
                metadata_json(utterance.metadata) or "",
                utterance.created_at.isoformat(),
                *_csv_interview_columns(session),
                *_csv_record_columns(await records.of_turn(utterance.turn_number)),
            ]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _csv_interview_columns(session: Session) -> list[str]:
    return [
        session.study_id or "",
        session.participant_id or "",
        compact_json(session.labels),
        compact_json(session.config),
    ]


def _csv_record_columns(record: NumberedTurnRecord | None) -> list[object]:
    if record is None:
        return [""] * 8
    usage = record.usage
    return [
        record.strategy or "",
        compact_json(record.scores),
        compact_json(record.signals),
        usage.model or "",
        usage.input_tokens,
        usage.output_tokens,
        usage.cost_usd,
        usage.latency_ms,
    ]


class _Records:
    """A session's turn records, read in turn order as the export reaches each turn."""

    def __init__(self, records: AsyncIterator[NumberedTurnRecord] | None) -> None:
        self._records = records
        self._next: NumberedTurnRecord | None = None

    async def of_turn(self, turn: int) -> NumberedTurnRecord | None:
        """The record of `turn`, skipping any of earlier turns; call with turns in order."""
        while True:
            if self._next is None:
                self._next = await self._pull()
            if self._next is None or self._next.turn_number > turn:
                return None
            record, self._next = self._next, None
            if record.turn_number == turn:
                return record

    async def all(self) -> AsyncIterator[NumberedTurnRecord]:
        while (record := self._next or await self._pull()) is not None:
            self._next = None
            yield record

    async def _pull(self) -> NumberedTurnRecord | None:
        if self._records is None:
            return None
        return await anext(self._records, None)


async def _graphml(
    session: Session, utterances: AsyncIterator[Utterance], records: _Records, graph: Graph
) -> AsyncIterator[str]:
    async for piece in graphml(session, graph):
        yield piece


_WRITERS: dict[
    ExportFormat,
    Callable[[Session, AsyncIterator[Utterance], _Records, Graph], AsyncIterator[str]],
] = {
    ExportFormat.JSON: _json,
    ExportFormat.MARKDOWN: _markdown,
    ExportFormat.CSV: _csv,
    ExportFormat.GRAPHML: _graphml,
}


_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def session_export_file_name(session: Session, export_format: ExportFormat) -> str:
    """`<concept>[_<participant>]_<day it began, UTC>_<id>.<ext>`, safe on any file
    system and in headers."""
    parts = [_file_name_part(session.concept_id, 64)]
    if session.participant_id is not None:
        parts.append(_file_name_part(session.participant_id, 64))
    parts.append(session.created_at.astimezone(UTC).date().isoformat())
    parts.append(_file_name_part(session.id, 100))
    return "_".join(parts) + f".{export_format.extension}"


def _file_name_part(text: str, limit: int) -> str:
    # No leading dot: the file would be hidden on Unix.
    return _UNSAFE_IN_FILE_NAME.sub("_", text)[:limit].lstrip(".") or "_"


def export_record(
    session: Session,
    utterances: AsyncIterator[Utterance],
    export_format: ExportFormat,
    records: AsyncIterator[NumberedTurnRecord] | None = None,
    graph: Graph | None = None,
) -> AsyncIterator[str]:
    """The session, every utterance and every turn record (both in turn order) and its
    graph, as pieces of text in `export_format` (any but qdpx, a zip: see `src.domain.qdpx`).
    """
    if export_format is ExportFormat.QDPX:
        raise ValueError("a qdpx export is a zip of bytes: use src.domain.qdpx")
    empty = Graph(nodes=[], edges=[])
    return _WRITERS[export_format](session, utterances, _Records(records), graph or empty)


class SessionExport(NamedTuple):
    """What a JSON export holds."""

    session: Session
    utterances: list[Utterance]
    records: list[NumberedTurnRecord]


def read_json_export(text: str) -> SessionExport:
    """Read a JSON export of any readable format version back, records and all.

    Raises:
        ValueError: the text is not such an export (a pydantic ValidationError for bad values).
    """
    document = json.loads(text)
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT_NAME:
        raise ValueError("not an interview session export")
    if document.get("format_version") not in READABLE_FORMAT_VERSIONS:
        raise ValueError(f"export format version {document.get('format_version')!r} is unknown")
    session = Session.model_validate(document["session"])
    utterances = [
        Utterance.model_validate({**item, "session_id": session.id})
        for item in document["utterances"]
    ]
    records = [NumberedTurnRecord.model_validate(item) for item in document.get("records", [])]
    return SessionExport(session, utterances, records)


def parse_json_export(text: str) -> tuple[Session, list[Utterance]]:
    """Read a JSON export (format version 1 or 2) back: the session and its utterances."""
    session, utterances, _records = read_json_export(text)
    return session, utterances
