"""Search queries as users type them, read into terms no search engine takes as syntax.

A query is words, "quoted phrases" and prefixes (`coff*`), all of which must
match (AND). Anything else (`-`, `:`, `^`, `NEAR(`, an unmatched quote) is
text, never an operator: each term is handed to the engine quoted. A chunk
of text with punctuation inside it (`café-au-lait`, `3.11.7`) is a phrase.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from pydantic import BaseModel

from src.core.errors import InvalidSearchQueryError
from src.domain.models.utterance import Speaker

__all__ = [
    "MARK_END",
    "MARK_START",
    "MAX_QUERY_LENGTH",
    "MAX_TERMS",
    "SearchHit",
    "SearchQuery",
    "SearchTerm",
    "parse_search_query",
]

MAX_QUERY_LENGTH = 500
MAX_TERMS = 32
MARK_START = "<mark>"
MARK_END = "</mark>"
"""How a snippet marks each match: plain text around, nothing else escaped."""

# A word as both engines' tokenizers see one: letters and digits (not "_").
_WORD = re.compile(r"[^\W_]+")
# A quoted phrase (an unmatched quote runs to the end), or a run of non-space.
_CHUNK = re.compile(r'"(?P<phrase>[^"]*)(?:"|$)(?P<phrase_star>\*?)|(?P<chunk>[^\s"]+)')
# Control characters and lone surrogates: neither database can bind them as text.
_UNBINDABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class SearchTerm:
    """One thing every hit must contain: a word, or words in a row (a phrase)."""

    text: str
    """The term as typed, quotes removed; each engine splits it as it splits utterances."""
    words: tuple[str, ...]
    prefix: bool
    """The last word may be the start of a longer one."""

    def fts5(self) -> str:
        """The term as an FTS5 string: quoted, so none of it is syntax."""
        text = " ".join(self.words) if self.prefix else self.text
        return '"' + text.replace('"', '""') + '"' + ("*" if self.prefix else "")

    def tsquery(self) -> str:
        """The term as tsquery text, built from words alone (quoted lexemes), for prefixes."""
        lexemes = " <-> ".join(f"'{word}'" for word in self.words)
        return f"{lexemes}:*" if self.prefix else lexemes


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed query: at least one term, each of which must match."""

    text: str
    terms: tuple[SearchTerm, ...]

    def fts5(self) -> str:
        """The whole query as an FTS5 MATCH string (terms side by side are AND-ed)."""
        return " ".join(term.fts5() for term in self.terms)

    def phrases(self) -> list[str]:
        """The terms without a prefix, as typed (PostgreSQL parses each as a phrase)."""
        return [term.text for term in self.terms if not term.prefix]

    def prefixes(self) -> list[str]:
        """The prefix terms as tsquery text."""
        return [term.tsquery() for term in self.terms if term.prefix]


class SearchHit(BaseModel):
    """One utterance that matched, with the match marked in a snippet of its text."""

    session_id: str
    study_id: str | None
    participant_id: str | None
    turn_number: int
    speaker: Speaker
    snippet: str
    rank: float
    """Higher is a better match; comparable within one query only."""


def parse_search_query(text: str) -> SearchQuery:
    """The terms of a query as a user typed it.

    Raises:
        InvalidSearchQueryError: (a ValueError) the query is blank, longer than
            MAX_QUERY_LENGTH, has more than MAX_TERMS terms, or has no word to look for.
    """
    if len(text) > MAX_QUERY_LENGTH:
        raise InvalidSearchQueryError(
            f"The query is {len(text)} characters long; at most {MAX_QUERY_LENGTH} are allowed."
        )
    if not text.strip():
        raise InvalidSearchQueryError("The query is blank; give at least one word to look for.")
    normalized = _UNBINDABLE.sub(" ", unicodedata.normalize("NFC", text))
    terms = []
    for match in _CHUNK.finditer(normalized):
        if match["chunk"] is not None:
            chunk = match["chunk"]
            prefix = chunk.endswith("*") and _WORD.search(chunk[-2:-1] or "") is not None
        else:
            chunk = match["phrase"]
            prefix = bool(match["phrase_star"]) and _WORD.search(chunk[-1:] or "") is not None
        words = tuple(_WORD.findall(chunk))
        if words:
            terms.append(SearchTerm(chunk.strip().rstrip("*"), words, prefix))
    if not terms:
        raise InvalidSearchQueryError(
            "The query has no word to look for, only punctuation or operators; "
            'search for words, "quoted phrases" or prefixes like coff*.'
        )
    if len(terms) > MAX_TERMS:
        raise InvalidSearchQueryError(
            f"The query has {len(terms)} terms; at most {MAX_TERMS} are allowed."
        )
    return SearchQuery(text, tuple(terms))
