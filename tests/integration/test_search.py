"""Full-text search over utterances through the repository, on every backend."""

from __future__ import annotations

import pytest

from src.core.errors import InvalidCursorError, InvalidSearchQueryError
from src.domain.models.session import Session
from src.domain.models.utterance import NewUtterance, Speaker
from src.domain.search import MAX_QUERY_LENGTH, SearchHit
from src.persistence.pagination import walk_pages
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from tests.backends import PostgresBackend, SqliteBackend, forge_cursor
from tests.builders import new_session

Repo = SessionRepositoryProtocol

# Strings that are search syntax to FTS5 or to_tsquery, or break naive quoting.
HOSTILE_QUERIES = [
    '"',
    '""',
    '"""',
    '"coffee',
    'coffee"',
    "*",
    "coffee**",
    "*coffee",
    "NEAR(",
    "NEAR(coffee strong",
    "NEAR(coffee strong, 2)",
    "-coffee",
    "coffee -strong",
    "text:coffee",
    ":",
    "^coffee",
    "^",
    "coffee AND",
    "OR",
    "(coffee",
    "coffee)",
    "{text}: coffee",
    "coffee & strong",
    "coffee | strong",
    "!coffee",
    "coffee:*",
    "'coffee'",
    "''",
    "\\",
    "coffee\\",
    "'; DROP TABLE utterances; --",
    "$1",
    "nul\x00byte",
    "e\u0301",
    "\ud800",
    "☕ 珈琲",
    "<->",
    "coffee <-> strong",
    "coffee <2> strong",
    "+coffee",
    "coffee^2",
]


async def said(repo: Repo, *texts: str, **session_fields: str) -> Session:
    """A new session whose respondent said `texts`, one turn each."""
    session = await repo.create(new_session(**session_fields))
    for number, text in enumerate(texts, start=1):
        await repo.append_utterance(
            session.id, NewUtterance(turn_number=number, speaker=Speaker.RESPONDENT, text=text)
        )
    return session


async def hits(repo: Repo, query: str, **filters: str) -> list[SearchHit]:
    """Every hit of the query, page by page."""
    pages = walk_pages(lambda cursor: repo.search(query, limit=7, cursor=cursor, **filters))
    return [hit async for hit in pages]


async def turns_found(repo: Repo, query: str, **filters: str) -> set[int]:
    return {hit.turn_number for hit in await hits(repo, query, **filters)}


async def test_case_and_accents_do_not_count(repo: Repo) -> None:
    await said(repo, "I love a Café au lait", "the cafe was closed", "CAFÉ NOIR", "a coffee")

    for query in ("cafe", "café", "CAFE", "Cafe", "CAFÉ", "cAfÉ"):
        assert await turns_found(repo, query) == {1, 2, 3}, query


async def test_accents_do_not_count_in_words_with_digits(repo: Repo) -> None:
    await said(repo, "a Café2 au lait", "naïve123 test")

    for query in ("cafe2", "café2", "CAFE2"):
        assert await turns_found(repo, query) == {1}, query
    assert await turns_found(repo, "naive123") == {2}


async def test_every_word_must_match(repo: Repo) -> None:
    await said(repo, "strong coffee", "coffee is strong", "strong tea", "weak coffee")

    assert await turns_found(repo, "strong coffee") == {1, 2}
    assert await turns_found(repo, "coffee strong") == {1, 2}


async def test_a_quoted_phrase_matches_its_words_in_a_row(repo: Repo) -> None:
    await said(repo, "strong coffee", "coffee is strong", "a Strong Coffée please")

    assert await turns_found(repo, '"strong coffee"') == {1, 3}
    assert await turns_found(repo, '"coffee strong"') == set()


async def test_a_star_after_a_word_matches_words_that_start_with_it(repo: Repo) -> None:
    await said(repo, "coffee", "Coffees", "a coffret", "cofounder", "decoffee")

    assert await turns_found(repo, "coff*") == {1, 2, 3}
    assert await turns_found(repo, "COFFE*") == {1, 2}
    assert await turns_found(repo, "coff") == set()
    assert await turns_found(repo, '"a coff"*') == {3}


async def test_a_snippet_marks_the_match_in_the_text(repo: Repo) -> None:
    session = await said(repo, "Honestly, I love a Café au lait in the morning.")

    (hit,) = await hits(repo, "cafe")

    assert hit.session_id == session.id
    assert (hit.turn_number, hit.speaker) == (1, Speaker.RESPONDENT)
    assert "<mark>Café</mark>" in hit.snippet
    assert hit.snippet.replace("<mark>", "").replace("</mark>", "") in (
        "Honestly, I love a Café au lait in the morning."
    )
    assert hit.rank > 0
    assert (hit.study_id, hit.participant_id) == (None, None)


async def test_hits_come_best_first(repo: Repo) -> None:
    await said(
        repo,
        "coffee " + "and a long story about something else entirely " * 20,
        "coffee, coffee, coffee",
    )

    found = await hits(repo, "coffee")

    assert [hit.turn_number for hit in found] == [2, 1]
    assert found[0].rank > found[1].rank


async def test_filters_by_speaker_and_methodology(repo: Repo) -> None:
    laddering = await said(repo, "coffee at dawn", methodology="mec")
    await repo.append_utterance(
        laddering.id,
        NewUtterance(turn_number=1, speaker=Speaker.INTERVIEWER, text="Why coffee?"),
    )
    zmet = await said(repo, "a coffee picture", methodology="zmet")

    by_speaker = await hits(repo, "coffee", speaker="interviewer")
    by_methodology = await hits(repo, "coffee", methodology="zmet")

    assert [(hit.session_id, hit.speaker) for hit in by_speaker] == [
        (laddering.id, Speaker.INTERVIEWER)
    ]
    assert [hit.session_id for hit in by_methodology] == [zmet.id]


async def test_pages_walk_every_hit_once_in_rank_order(repo: Repo) -> None:
    texts = [f"coffee {'and more words ' * (n % 5)}number {n}" for n in range(30)]
    session = await said(repo, *texts, "tea only")

    first = await repo.search("coffee", limit=10)
    assert len(first.items) == 10 and first.next_cursor is not None
    walked = await hits(repo, "coffee")

    keys = [(hit.session_id, hit.turn_number, hit.speaker) for hit in walked]
    assert sorted(keys) == [(session.id, n, Speaker.RESPONDENT) for n in range(1, 31)]
    ranks = [hit.rank for hit in walked]
    assert ranks == sorted(ranks, reverse=True)


async def test_a_page_after_new_utterances_were_stored_misses_nothing(repo: Repo) -> None:
    texts = [f"coffee {'and more words ' * (n % 7)}number {n}" for n in range(20)]
    session = await said(repo, *texts)
    first = await repo.search("coffee", limit=10)
    # Stored between the pages: none of it matches, but it changes the store's
    # word statistics, which a store-wide ranking (BM25) would reweigh.
    await said(repo, *[f"tea {'and more words ' * n}" for n in range(30)])

    rest = [
        hit
        async for hit in walk_pages(
            lambda cursor: repo.search("coffee", limit=10, cursor=cursor or first.next_cursor)
        )
    ]

    turns = sorted(hit.turn_number for hit in [*first.items, *rest])
    assert turns == list(range(1, 21))
    assert {hit.session_id for hit in rest} == {session.id}


async def test_a_deleted_sessions_utterances_are_gone_from_the_index(
    repo: Repo, backend: SqliteBackend | PostgresBackend
) -> None:
    kept = await said(repo, "a distinctive zanzibar coffee")
    deleted = await said(repo, "zanzibar again", "and zanzibar once more")
    assert len(await hits(repo, "zanzibar")) == 3

    assert await repo.delete(deleted.id)

    assert [hit.session_id for hit in await hits(repo, "zanzibar")] == [kept.id]
    if isinstance(backend, SqliteBackend):
        # Raises if the index holds an entry its content no longer has.
        await backend.execute(
            "INSERT INTO utterance_search (utterance_search, rank) VALUES ('integrity-check', 1)"
        )
        rows = await backend.fetch_one(
            "SELECT (SELECT count(*) FROM utterance_search_rows) AS key_rows,"
            " (SELECT count(*) FROM utterance_search WHERE utterance_search MATCH 'zanzibar')"
            " AS matches"
        )
        assert rows == {"key_rows": 1, "matches": 1}
    else:
        rows = await backend.fetch_one(
            "SELECT count(*) AS matches FROM utterances"
            " WHERE search_vector @@ to_tsquery('utterance_search', 'zanzibar')"
        )
        assert rows == {"matches": 1}


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
async def test_hostile_queries_are_searched_as_text_or_refused(repo: Repo, query: str) -> None:
    await said(repo, "strong coffee, NEAR the text: 2 ^ 3 - 1 = 7 'quoted' \\ back")

    try:
        page = await repo.search(query)
    except InvalidSearchQueryError as exc:
        assert "word" in exc.detail
        return
    assert all("<mark>" in hit.snippet for hit in page.items)


async def test_a_query_of_only_operators_is_refused_with_the_reason(repo: Repo) -> None:
    for query in ('"', '""', "*", "-", ":", "^", "()", "- * : ^ ( ) \" '"):
        with pytest.raises(InvalidSearchQueryError, match="no word to look for"):
            await repo.search(query)


async def test_a_blank_or_overlong_query_is_refused(repo: Repo) -> None:
    for query in ("", "   ", "\t\n"):
        with pytest.raises(InvalidSearchQueryError, match="blank"):
            await repo.search(query)
    with pytest.raises(InvalidSearchQueryError, match="at most"):
        await repo.search("coffee " * (MAX_QUERY_LENGTH // 7 + 1))


async def test_a_bad_speaker_or_limit_is_a_value_error(repo: Repo) -> None:
    with pytest.raises(ValueError, match="Speaker"):
        await repo.search("coffee", speaker="narrator")
    with pytest.raises(ValueError, match="limit"):
        await repo.search("coffee", limit=0)


@pytest.mark.parametrize(
    "sort_key",
    [
        [float("nan"), "s-1", 1, "respondent"],
        [1e400, "s-1", 1, "respondent"],
        [10**400, "s-1", 1, "respondent"],
        ["1.0", "s-1", 1, "respondent"],
        [1.0, "s-\x00", 1, "respondent"],
        [1.0, "s-1", 2**31, "respondent"],
        [1.0, "s-1", 1, "narrator"],
        [1.0, "s-1", True, "respondent"],
        [1.0, "s-1", 1],
        ["2026-01-01T00:00:00+00:00", "s-1"],
    ],
)
async def test_a_forged_search_cursor_is_refused(
    repo: Repo, backend: SqliteBackend | PostgresBackend, sort_key: list[object]
) -> None:
    await said(repo, "coffee")
    cursor = await forge_cursor(backend, sort_key)

    with pytest.raises(InvalidCursorError):
        await repo.search("coffee", cursor=cursor)


async def test_a_listing_cursor_is_not_a_search_cursor(repo: Repo) -> None:
    for _ in range(3):
        await said(repo, "coffee")
    listing = await repo.list_sessions(limit=1)
    assert listing.next_cursor is not None

    with pytest.raises(InvalidCursorError):
        await repo.search("coffee", cursor=listing.next_cursor)


async def test_accents_typed_as_combining_marks_match_composed_ones(repo: Repo) -> None:
    await said(repo, "un café crème", "un cafe\u0301 cre\u0300me")

    assert await turns_found(repo, "cafe\u0301") == {1, 2}
    assert await turns_found(repo, "CAFE CREME") == {1, 2}


async def test_a_query_matches_text_as_stored_without_compatibility_folding(repo: Repo) -> None:
    await said(repo, "a ﬁne coffee")

    assert await turns_found(repo, "ﬁne") == {1}
