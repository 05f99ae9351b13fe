"""The Markdown export shows every value a client wrote as text, in any CommonMark renderer.

Each export is rendered with markdown-it-py and read back as a browser shows
it: the blocks the export itself writes (headings, the list, one paragraph
per utterance) and their visible text, which must be what was written,
whatever Markdown or HTML it holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from src.domain.export import ExportFormat, export_record
from src.domain.models.json import compact_json
from src.domain.models.session import Session, SessionState, SessionStatus
from src.domain.models.utterance import Speaker, Utterance

RENDERERS = {
    "commonmark": MarkdownIt("commonmark"),
    "commonmark+tables+strikethrough": MarkdownIt("commonmark").enable(["table", "strikethrough"]),
}
BLOCKS = {"h1", "h2", "h3", "li", "p"}
# What the export's own structure renders to; nothing a client wrote may add to it.
ALLOWED_TAGS = BLOCKS | {"ul", "strong", "em", "br"}

HOSTILE = [
    "plain",
    "line one\nline two",
    "ends with a break\n",
    "\n\nstarts with breaks",
    "a\n\nb",
    "a\n   \nb",
    "# heading",
    "x\n# heading",
    "x\n## Transcript",
    "x\n<!-- hides the rest",
    "<!--",
    "<script>alert(1)</script>",
    "x\n<script>alert(1)</script>",
    "<b>bold</b> <img src=x onerror=alert(1)>",
    "x\n> quote",
    "x\n- item",
    "x\n+ item",
    "x\n* item",
    "x\n1. first",
    "x\n1) first",
    "x\n2019. a year",
    "x\n```\ncode\n```",
    "x\n~~~\ncode",
    "x\n    indented",
    "x\n---",
    "x\n===",
    "x\n***",
    "x\n___",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "`code` and ``more``",
    "*em* _em_ **strong** __strong__ ~~struck~~",
    "[link](http://example.com) ![image](x.png) <http://example.com>",
    "&amp; &lt; &#65; &copy;",
    "back\\slash \\* \\\\ ends in a backslash\\",
    "hard break  \nafter two spaces",
    "tab\tinside\n\tand leading",
    "carriage\rreturn and\r\nCRLF",
    "[ref]\n\n[ref]: http://example.com",
    "$x^2$ math",
    "trailing spaces   ",
    "x #",
    "x\n#",
    "\\",
]


class VisibleText(HTMLParser):
    """Block elements with their visible text, as a browser would show them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str]] = []
        self.tags: list[str] = []
        self.hidden: list[str] = []
        self._open: list[str] = []
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.tags.append(tag)
        if tag in ("li", "p") and self._open and self._open[-1] == "li":
            return  # a list item's paragraph is the item itself
        if tag in BLOCKS:
            self._open.append(tag)
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCKS and self._open and self._open[-1] == tag:
            self._open.pop()
            self.blocks.append((tag, " ".join("".join(self._text).split())))
            self._text = []

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_comment(self, data: str) -> None:
        self.hidden.append(data)


def visible(text: str) -> str:
    return " ".join(text.split())


def rendered(markdown: str, renderer: str) -> VisibleText:
    parser = VisibleText()
    parser.feed(RENDERERS[renderer].render(markdown))
    parser.close()
    return parser


async def utterances_of(items: Iterable[Utterance]) -> AsyncIterator[Utterance]:
    for item in items:
        yield item


async def markdown_export(session: Session, utterances: list[Utterance]) -> str:
    pieces = export_record(session, utterances_of(utterances), ExportFormat.MARKDOWN)
    return "".join([piece async for piece in pieces])


def session_with(
    *,
    last_strategy: str | None = None,
    concept_name: str = "Coffee",
    methodology: str = "mec",
    concept_id: str = "c-1",
    session_id: str = "s-1",
) -> Session:
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    return Session(
        id=session_id,
        methodology=methodology,
        concept_id=concept_id,
        concept_name=concept_name,
        state=SessionState(
            methodology=methodology,
            concept_id=concept_id,
            concept_name=concept_name,
            turn_count=1,
            coverage_score=0.5,
            last_strategy=last_strategy,
        ),
        status=SessionStatus.ACTIVE,
        created_at=at,
        updated_at=at,
    )


def said(session: Session, *texts: str) -> list[Utterance]:
    speakers = [Speaker.INTERVIEWER, Speaker.RESPONDENT]
    return [
        Utterance(
            session_id=session.id,
            turn_number=1 + index // 2,
            speaker=speakers[index % 2],
            text=text,
            created_at=session.created_at,
        )
        for index, text in enumerate(texts)
    ]


def expected_blocks(session: Session, utterances: list[Utterance]) -> list[tuple[str, str]]:
    """The blocks a reader must see: the export's structure holding exactly what was written."""
    state = session.state
    labels = ", ".join(f"{key}={value}" for key, value in sorted(session.labels.items()))
    blocks = [
        ("h1", visible(f"Interview session {session.id}")),
        ("li", visible(f"Methodology: {session.methodology}")),
        ("li", visible(f"Concept: {session.concept_name} ({session.concept_id})")),
        ("li", f"Status: {session.status.value}"),
        ("li", f"Started: {session.created_at.isoformat()}"),
        ("li", f"Last changed: {session.updated_at.isoformat()}"),
        ("li", "Ended: not yet"),
        (
            "li",
            visible(
                f"Turns: {state.turn_count}; coverage {state.coverage_score:g}; "
                f"last strategy: {state.last_strategy or 'none'}"
            ),
        ),
        ("li", f"Version: {session.version}"),
        ("li", visible(f"Study: {session.study_id or 'none'}")),
        ("li", visible(f"Participant: {session.participant_id or 'none'}")),
        ("li", visible(f"Labels: {labels or 'none'}")),
        ("li", visible(f"Config: {compact_json(session.config)}")),
        ("li", "Usage: 0 records; 0 input and 0 output tokens; cost 0 USD; latency 0 ms"),
        ("li", "Forked from: none"),
        ("h2", "Transcript"),
    ]
    turn = None
    for utterance in utterances:
        if utterance.turn_number != turn:
            blocks.append(("h3", f"Turn {utterance.turn_number}"))
            turn = utterance.turn_number
        speaker = utterance.speaker.value.capitalize()
        blocks.append(("p", visible(f"{speaker}: {utterance.text}")))
    return blocks


def assert_shown_as_written(
    markdown: str, session: Session, utterances: list[Utterance], renderer: str
) -> None:
    page = rendered(markdown, renderer)
    assert page.hidden == [], markdown
    assert set(page.tags) <= ALLOWED_TAGS, markdown
    assert page.blocks == expected_blocks(session, utterances), markdown


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("value", HOSTILE)
async def test_a_client_s_text_is_shown_as_written(value: str, renderer: str) -> None:
    session = session_with(last_strategy=value[:64])
    utterances = said(session, value, f"Answer: {value}", "Next?")

    markdown = await markdown_export(session, utterances)

    assert_shown_as_written(markdown, session, utterances, renderer)


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize(
    "value", ["# x", "<!-- x", "<script>x</script>", "*x*", "a | b", "[x](y)", "x #", "&lt;"]
)
async def test_names_and_ids_are_shown_as_written(value: str, renderer: str) -> None:
    session = session_with(
        concept_name=value, methodology=value, concept_id=value, session_id=value
    )
    utterances = said(session, "Why?")

    markdown = await markdown_export(session, utterances)

    assert_shown_as_written(markdown, session, utterances, renderer)


# Any text an utterance or last_strategy may hold: every character but NUL
# (refused at the door) and lone surrogates (not text).
any_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
markdown_heavy = st.lists(
    st.sampled_from([*"#>-+*_=`~|<>!&[]()\\:;.1 \t\n\r", "<!--", "-->", "<script>", "1."])
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(any_text, markdown_heavy).filter(bool),
    strategy=st.one_of(st.none(), any_text.map(lambda s: s[:64]), markdown_heavy),
    renderer=st.sampled_from(sorted(RENDERERS)),
)
async def test_any_text_is_shown_as_written(text: str, strategy: str | None, renderer: str) -> None:
    session = session_with(last_strategy=strategy[:64] if strategy else strategy)
    utterances = said(session, text, text)

    markdown = await markdown_export(session, utterances)

    assert_shown_as_written(markdown, session, utterances, renderer)
