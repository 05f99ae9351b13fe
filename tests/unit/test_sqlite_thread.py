"""Calls on a connection's worker thread hold nothing once they have answered."""

from __future__ import annotations

import weakref
from pathlib import Path

import aiosqlite
import pytest

from src.persistence.sqlite_thread import run_on_thread

pytestmark = pytest.mark.sqlite


class _Page:
    """Stands for a page of sessions: something a caller lets go of."""


def _page_of(argument: _Page) -> _Page:
    return _Page()


def _refuse(page: _Page) -> None:
    raise ValueError("refused")


async def test_an_idle_thread_keeps_neither_the_answer_nor_the_arguments(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "calls.db") as connection:
        argument = _Page()
        answer = await run_on_thread(connection, _page_of, argument)
        answered, passed = weakref.ref(answer), weakref.ref(argument)
        del answer, argument
        # The thread waits for its next call: what it ran last is let go all the same.
        assert answered() is None
        assert passed() is None


async def test_a_failed_call_keeps_no_argument(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "calls.db") as connection:
        argument = _Page()
        with pytest.raises(ValueError, match="refused"):
            await run_on_thread(connection, _refuse, argument)
        passed = weakref.ref(argument)
        del argument
        assert passed() is None


async def test_the_answer_is_the_functions(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "calls.db") as connection:
        assert await run_on_thread(connection, lambda a, b: a + b, 2, 3) == 5
        assert await run_on_thread(connection, dict) == {}
