"""Reading a search query into quoted terms: what becomes a word, a phrase or a prefix."""

from __future__ import annotations

import pytest

from src.core.errors import InvalidSearchQueryError
from src.domain.search import SearchTerm, parse_search_query


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("coffee", [SearchTerm("coffee", ("coffee",), False)]),
        (
            "strong  coffee",
            [SearchTerm("strong", ("strong",), False), SearchTerm("coffee", ("coffee",), False)],
        ),
        ('"strong coffee"', [SearchTerm("strong coffee", ("strong", "coffee"), False)]),
        ("coff*", [SearchTerm("coff", ("coff",), True)]),
        ('"a coff"*', [SearchTerm("a coff", ("a", "coff"), True)]),
        ("café-au-lait", [SearchTerm("café-au-lait", ("café", "au", "lait"), False)]),
        ('"unclosed phrase', [SearchTerm("unclosed phrase", ("unclosed", "phrase"), False)]),
        ("NEAR(", [SearchTerm("NEAR(", ("NEAR",), False)]),
        ("-coffee", [SearchTerm("-coffee", ("coffee",), False)]),
        ("coffee**", [SearchTerm("coffee", ("coffee",), False)]),
        ("cafe\u0301", [SearchTerm("café", ("café",), False)]),
        ("nul\x00byte", [SearchTerm("nul", ("nul",), False), SearchTerm("byte", ("byte",), False)]),
    ],
)
def test_a_query_reads_into_terms(query: str, terms: list[SearchTerm]) -> None:
    assert list(parse_search_query(query).terms) == terms


def test_every_term_is_quoted_for_fts5() -> None:
    parsed = parse_search_query('NEAR( coff* "a b"* -x:^y OR')

    assert parsed.fts5() == '"NEAR(" "coff"* "a b"* "-x:^y" "OR"'


def test_prefix_terms_become_quoted_lexemes_for_postgresql() -> None:
    parsed = parse_search_query('coff* "strong coff"* tea')

    assert parsed.prefixes() == ["'coff':*", "'strong' <-> 'coff':*"]
    assert parsed.phrases() == ["tea"]


@pytest.mark.parametrize("query", ["", " ", '"', '" "', "*", "- : ^ ( ) ' \\", "\x00", "\ud800"])
def test_a_query_without_a_word_is_refused(query: str) -> None:
    with pytest.raises(InvalidSearchQueryError):
        parse_search_query(query)


def test_too_many_terms_are_refused() -> None:
    with pytest.raises(InvalidSearchQueryError, match="at most 32"):
        parse_search_query("a " * 33)
