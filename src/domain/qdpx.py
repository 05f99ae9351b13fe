"""Sessions as a REFI-QDA project (.qdpx, QDA-XML 1.0), written as a stream of zip bytes.

Each session becomes a text source, `Sources/<guid>.txt`: its transcript as
plain UTF-8 text, a line `Turn N` before each turn and each utterance on a
line of its own after its speaker's label (`Interviewer: `), a blank line
between turns. Node types and labels become a code tree (type, then
label); each provenance span of a node becomes a selection of that text,
coded with the node's label, at offsets counted in Unicode code points
(end exclusive). The study, participant, session and labels become the
source's variable values, and each participant a case. Edges are not coded.

Each session is read once, whole, before any of it is written (`read_source`),
so a project holds a session entirely or not at all. Memory stays flat in the
number of sessions: a session's text goes into the archive and its part of
`project.qde` into a spool, remembering only the code tree, the label keys
and the participants; `project.qde` is the code book those make followed by
the spool. GUIDs are derived from what they name (uuid5).
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import IO, NamedTuple
from xml.sax.saxutils import escape, quoteattr

from src.core.spooling import chunks, spool, spooled
from src.domain.models.graph import Graph
from src.domain.models.session import Session
from src.domain.models.utterance import Utterance

__all__ = ["QdpxSource", "plain_text_pieces", "qdpx", "read_source"]

_NAMESPACE = uuid.UUID("8f1d0c3e-4b0a-5c1e-9a57-2d6f1e0b7c11")
_LABELS = {"interviewer": "Interviewer: ", "respondent": "Respondent: "}
_FIXED_VARIABLES = ("study", "participant", "session", "methodology", "concept")


class QdpxSource(NamedTuple):
    """One session read whole: its plain-text transcript (a spool, rewound; closed once
    written) and where the text of each utterance its graph quotes starts."""

    session: Session
    graph: Graph
    text: IO[bytes]
    starts: dict[tuple[int, str], int]


def _guid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x00".join(parts)))


def source_guid(session_id: str) -> str:
    """The GUID of a session's text source (its file is `Sources/<guid>.txt`)."""
    return _guid("source", session_id)


def type_code_guid(node_type: str) -> str:
    return _guid("type", node_type)


def label_code_guid(node_type: str, label: str) -> str:
    return _guid("code", node_type, label)


def _variable_guid(name: str) -> str:
    return _guid("variable", name)


async def plain_text_pieces(
    utterances: AsyncIterator[Utterance],
) -> AsyncIterator[tuple[str, Utterance, int]]:
    """The plain-text transcript a piece at a time, each utterance's piece with the
    utterance and where its text starts (in code points)."""
    position = 0
    turn: int | None = None
    async for utterance in utterances:
        head = ""
        if utterance.turn_number != turn:
            head = ("\n" if turn is not None else "") + f"Turn {utterance.turn_number}\n"
            turn = utterance.turn_number
        head += _LABELS[utterance.speaker.value]
        start = position + len(head)
        piece = f"{head}{utterance.text}\n"
        position += len(piece)
        yield piece, utterance, start


async def read_source(
    session: Session, graph: Graph, utterances: AsyncIterator[Utterance]
) -> QdpxSource:
    """The session's source, its transcript read to the end (errors reading it propagate)."""
    wanted = {
        (span.turn_number, span.speaker.value) for node in graph.nodes for span in node.provenance
    }
    starts: dict[tuple[int, str], int] = {}

    async def text() -> AsyncIterator[bytes]:
        async for piece, utterance, start in plain_text_pieces(utterances):
            key = (utterance.turn_number, utterance.speaker.value)
            if key in wanted:
                starts[key] = start
            yield piece.encode()

    return QdpxSource(session, graph, await spool(text()), starts)


class _Sink(io.RawIOBase):
    """An unseekable file that keeps what is written until taken: zipfile then writes
    each entry with a data descriptor, front to back."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


class _Catalogue:
    """What the first pass learns for project.qde: the code tree, label keys, cases."""

    def __init__(self) -> None:
        self.codes: dict[str, set[str]] = {}
        self.label_keys: set[str] = set()
        self.cases: dict[str, list[str]] = {}

    def add(self, source: QdpxSource) -> None:
        for node in source.graph.nodes:
            self.codes.setdefault(node.type, set()).add(node.label)
        self.label_keys.update(source.session.labels)
        if source.session.participant_id is not None:
            self.cases.setdefault(source.session.participant_id, []).append(source.session.id)

    def variables(self) -> list[str]:
        return [*_FIXED_VARIABLES, *(f"label:{key}" for key in sorted(self.label_keys))]


def _head(name: str, catalogue: _Catalogue) -> Iterator[str]:
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Project xmlns="urn:QDA-XML:project:1.0" name={quoteattr(name)} '
        f'origin="interview-system" creationDateTime="{now}">\n'
    )
    if catalogue.codes:
        yield "<CodeBook><Codes>\n"
        for node_type in sorted(catalogue.codes):
            yield (
                f'<Code guid="{type_code_guid(node_type)}" name={quoteattr(node_type)} '
                'isCodable="false">\n'
            )
            for label in sorted(catalogue.codes[node_type]):
                yield (
                    f'<Code guid="{label_code_guid(node_type, label)}" '
                    f'name={quoteattr(label)} isCodable="true"/>\n'
                )
            yield "</Code>\n"
        yield "</Codes></CodeBook>\n"
    yield "<Variables>\n"
    for variable in catalogue.variables():
        yield (
            f'<Variable guid="{_variable_guid(variable)}" name={quoteattr(variable)} '
            'typeOfVariable="Text"/>\n'
        )
    yield "</Variables>\n"
    if catalogue.cases:
        yield "<Cases>\n"
        for participant in sorted(catalogue.cases):
            yield f'<Case guid="{_guid("case", participant)}" name={quoteattr(participant)}>\n'
            yield "<VariableValue>"
            yield f'<VariableRef targetGUID="{_variable_guid("participant")}"/>'
            yield f"<TextValue>{escape(participant)}</TextValue></VariableValue>\n"
            for session_id in catalogue.cases[participant]:
                yield f'<SourceRef targetGUID="{source_guid(session_id)}"/>\n'
            yield "</Case>\n"
        yield "</Cases>\n"
    yield "<Sources>\n"


def _variable_values(session: Session) -> str:
    values = {
        "study": session.study_id,
        "participant": session.participant_id,
        "session": session.id,
        "methodology": session.methodology,
        "concept": session.concept_name,
        **{f"label:{key}": value for key, value in session.labels.items()},
    }
    return "".join(
        f'<VariableValue><VariableRef targetGUID="{_variable_guid(name)}"/>'
        f"<TextValue>{escape(value)}</TextValue></VariableValue>\n"
        for name, value in values.items()
        if value is not None
    )


def _source_xml(source: QdpxSource) -> Iterator[str]:
    session = source.session
    guid = source_guid(session.id)
    yield (
        f'<TextSource guid="{guid}" name={quoteattr(session.id)} '
        f'plainTextPath="internal://{guid}.txt">\n'
    )
    for node in source.graph.nodes:
        code = label_code_guid(node.type, node.label)
        for index, span in enumerate(node.provenance):
            base = source.starts.get((span.turn_number, span.speaker.value))
            if base is None:  # the utterance is not in the transcript read
                continue
            selection = _guid("selection", session.id, node.id, str(index))
            yield (
                f'<PlainTextSelection guid="{selection}" name={quoteattr(node.label)} '
                f'startPosition="{base + span.start}" endPosition="{base + span.end}">'
                f'<Coding guid="{_guid("coding", selection)}"><CodeRef targetGUID="{code}"/>'
                "</Coding></PlainTextSelection>\n"
            )
    yield _variable_values(session)
    yield "</TextSource>\n"


async def qdpx(name: str, sources: AsyncIterator[QdpxSource]) -> AsyncIterator[bytes]:
    """A .qdpx project named `name` holding `sources`, as zip bytes."""
    sink = _Sink()
    catalogue = _Catalogue()
    with (
        spooled() as described,
        zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        async for source in sources:
            with source.text:
                catalogue.add(source)
                with archive.open(f"Sources/{source_guid(source.session.id)}.txt", "w") as entry:
                    for chunk in chunks(source.text):
                        entry.write(chunk)
                        yield sink.take()
            described.write("".join(_source_xml(source)).encode())
            yield sink.take()
        described.seek(0)
        with archive.open("project.qde", "w") as project:
            for piece in _head(name, catalogue):
                project.write(piece.encode())
            for chunk in chunks(described):
                project.write(chunk)
                yield sink.take()
            project.write(b"</Sources>\n</Project>\n")
    yield sink.take()
