"""Search hits as the command line writes them: one line each, best first, up to a limit."""

from __future__ import annotations

import io

import pytest

from src.core.errors import InvalidSearchQueryError
from src.domain.models.utterance import NewUtterance, Speaker
from src.persistence.repositories.protocol import SessionRepositoryProtocol
from src.searching import write_search
from tests.builders import new_session


async def test_hits_are_written_one_line_each_up_to_the_limit(
    repo: SessionRepositoryProtocol,
) -> None:
    session = await repo.create(new_session())
    texts = ["coffee, coffee", "a coffee\nwith milk", "coffee " + "and more " * 30, "tea"]
    for number, text in enumerate(texts, start=1):
        await repo.append_utterance(
            session.id, NewUtterance(turn_number=number, speaker=Speaker.RESPONDENT, text=text)
        )

    everything, first_two = io.StringIO(), io.StringIO()
    count = await write_search(repo, "COFFEE", everything, limit=10)
    await write_search(repo, "COFFEE", first_two, limit=2)

    lines = everything.getvalue().splitlines()
    assert count == len(lines) == 3
    assert lines[0] == f"{session.id}\t1\trespondent\t<mark>coffee</mark>, <mark>coffee</mark>"
    assert lines[1] == f"{session.id}\t2\trespondent\ta <mark>coffee</mark> with milk"
    assert first_two.getvalue().splitlines() == lines[:2]


async def test_a_query_without_a_word_is_refused(repo: SessionRepositoryProtocol) -> None:
    with pytest.raises(InvalidSearchQueryError):
        await write_search(repo, '"*"', io.StringIO())
