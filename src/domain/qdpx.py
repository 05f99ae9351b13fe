"""Sessions as a REFI-QDA project (.qdpx, QDA-XML 1.0), written as a stream of zip bytes.

Each session becomes a text source, `Sources/<guid>.txt`: its transcript as
plain UTF-8 text, a line `Turn N` before each turn and each utterance on a
line of its own after its speaker's label (`Interviewer: `), a blank line
between turns. Node types and labels become a code tree (type, then
label); each provenance span of a node becomes a selection of that text,
coded with the node's label, at offsets counted in Unicode code points
(end exclusive). The study, participant, session and labels become the
source's variable values, and each participant a case. Edges are not coded.

Memory stays flat in the number of sessions: the sources are written first,
remembering only the code tree, the label keys and the participants; then
`project.qde` is written session by session, reading each one again.
GUIDs are derived from what they name (uuid5), so both passes agree.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import NamedTuple
from xml.sax.saxutils import escape, quoteattr

from src.domain.models.graph import Graph
from src.domain.models.session import Session
from src.domain.models.utterance import Utterance

__all__ = ["QdpxSession", "plain_text_pieces", "qdpx"]

_NAMESPACE = uuid.UUID("8f1d0c3e-4b0a-5c1e-9a57-2d6f1e0b7c11")
_LABELS = {"interviewer": "Interviewer: ", "respondent": "Respondent: "}
_FIXED_VARIABLES = ("study", "participant", "session", "methodology", "concept")


class QdpxSession(NamedTuple):
    """One session to export: itself, its graph, and a way to read its utterances (twice)."""

    session: Session
    graph: Graph
    utterances: Callable[[], AsyncIterator[Utterance]]


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

    def add(self, item: QdpxSession) -> None:
        for node in item.graph.nodes:
            self.codes.setdefault(node.type, set()).add(node.label)
        self.label_keys.update(item.session.labels)
        if item.session.participant_id is not None:
            self.cases.setdefault(item.session.participant_id, []).append(item.session.id)

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


async def _source_xml(item: QdpxSession, catalogue: _Catalogue) -> AsyncIterator[str]:
    session = item.session
    wanted = {
        (span.turn_number, span.speaker.value)
        for node in item.graph.nodes
        for span in node.provenance
    }
    starts: dict[tuple[int, str], int] = {}
    async for _piece, utterance, start in plain_text_pieces(item.utterances()):
        key = (utterance.turn_number, utterance.speaker.value)
        if key in wanted:
            starts[key] = start
    guid = source_guid(session.id)
    yield (
        f'<TextSource guid="{guid}" name={quoteattr(session.id)} '
        f'plainTextPath="internal://{guid}.txt">\n'
    )
    for node in item.graph.nodes:
        if node.label not in catalogue.codes.get(node.type, ()):
            continue  # written since the code book was: the project keeps to what it lists
        code = label_code_guid(node.type, node.label)
        for index, span in enumerate(node.provenance):
            base = starts.get((span.turn_number, span.speaker.value))
            if base is None:  # the utterance is gone from the transcript read
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


async def qdpx(
    name: str, sessions: Callable[[], AsyncIterator[QdpxSession]]
) -> AsyncIterator[bytes]:
    """A .qdpx project named `name` holding `sessions` (read twice), as zip bytes."""
    sink = _Sink()
    catalogue = _Catalogue()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        async for item in sessions():
            catalogue.add(item)
            path = f"Sources/{source_guid(item.session.id)}.txt"
            with archive.open(path, "w") as source:
                async for piece, _utterance, _start in plain_text_pieces(item.utterances()):
                    source.write(piece.encode())
                    yield sink.take()
            yield sink.take()
        with archive.open("project.qde", "w") as project:
            for piece in _head(name, catalogue):
                project.write(piece.encode())
            async for item in sessions():
                async for piece in _source_xml(item, catalogue):
                    project.write(piece.encode())
                yield sink.take()
            project.write(b"</Sources>\n</Project>\n")
    yield sink.take()
