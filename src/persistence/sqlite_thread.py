"""The aiosqlite internals this store relies on, all in this one module.

aiosqlite has no public way to run a function on a connection's worker
thread, which the group commit needs (a whole batch of writes in one
transaction, one hop), nor to keep an unclosed connection from blocking
the interpreter's exit (its thread is not a daemon, and atexit runs only
after non-daemon threads are joined). Both use private names of the pinned
release, so any other release is refused at import rather than misused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import aiosqlite

__all__ = ["daemonize", "raw_connection", "run_on_thread"]

PINNED_VERSION = "0.22.1"

if aiosqlite.__version__ != PINNED_VERSION:  # pragma: no cover - a packaging error
    raise ImportError(
        f"aiosqlite {aiosqlite.__version__} is installed; this store relies on the"
        f" internals of {PINNED_VERSION} (see {__name__}), so install that release"
    )

T = TypeVar("T")


def daemonize(connection: aiosqlite.Connection) -> None:
    """Let the interpreter exit with this connection still open.

    Call before awaiting the connection: 0.22 creates the thread in
    `__init__` and starts it in `__await__`. Every write commits before it
    returns, so ending the thread at exit loses nothing.
    """
    connection._thread.daemon = True


def raw_connection(connection: aiosqlite.Connection) -> sqlite3.Connection:
    """The sqlite3 connection behind `connection`; use only on its worker thread."""
    raw: sqlite3.Connection = connection._conn
    return raw


class _Call(Generic[T]):
    """One call for the worker thread, which lets go of what it holds once used.

    aiosqlite's thread keeps its last call and that call's future until the
    next call arrives: a page of sessions read there (or an error whose
    frames hold one) would stay in memory beside the pages read after it, for
    as long as the thread is idle. So the thread gets this box: it answers
    with the box, which the caller empties.
    """

    __slots__ = ("_args", "_error", "_function", "_result")

    def __init__(self, function: Callable[..., T], args: tuple[Any, ...]) -> None:
        self._function: Callable[..., T] | None = function
        self._args: tuple[Any, ...] = args
        self._result: T | None = None
        self._error: BaseException | None = None

    def __call__(self) -> _Call[T]:
        function, args = self._function, self._args
        self._function, self._args = None, ()
        assert function is not None
        try:
            self._result = function(*args)
        except BaseException as exc:  # raised again in the caller, by take()
            self._error = exc
        return self

    def take(self) -> T:
        """The call's result, or its error raised; the box holds neither afterwards."""
        result, error = self._result, self._error
        self._result = self._error = None
        if error is None:
            return result  # type: ignore[return-value]
        try:
            raise error
        finally:
            del error  # this frame stays in the traceback: not the error itself


async def run_on_thread(
    connection: aiosqlite.Connection, function: Callable[..., T], *args: Any
) -> T:
    """Run `function(*args)` on the connection's worker thread, after what is queued there."""
    call: _Call[T] = await connection._execute(_Call(function, args))  # type: ignore[no-untyped-call]
    return call.take()
