"""schemathesis drives a real server from the app's OpenAPI schema: no 5xx, all answers fit it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, Response
from schemathesis.checks import CheckContext, positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from src.main import create_app
from tests.backends import postgres_schema
from tests.servers import running_server

EXAMPLES_PER_OPERATION = 40
CURSOR_LISTINGS = {
    "GET /sessions",
    "GET /sessions/{session_id}/utterances",
    "GET /search",
    "GET /audit",
}
# A turn's utterances name one turn number, a merge patch is valid or not only
# by what it leaves of the state, and a graph change's spans end after they start:
# JSON Schema cannot say any of them.
CROSS_CHECKED = {
    "POST /sessions/{session_id}/turns",
    "PATCH /sessions/{session_id}/state",
    "POST /sessions/{session_id}/graph",
}

# GET /events is a stream that never ends while the client listens, so no
# generated case could read its whole answer; tests/integration/test_event_stream*.py
# drive it instead, its refusals (400, 410, 422) included.
# A generated body past MAX_BODY_BYTES is refused with 413 before it is parsed: as much
# a rejection of invalid data as schemathesis's default list of statuses.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428"]
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [*REJECTIONS, "429", "5xx"]}}}
)
schema = schemathesis.openapi.from_dict(create_app().openapi(), config=CONFIG).exclude(
    path="/events"
)


# What must never reach a client: a stack trace, SQL, driver names or a path.
LEAKS = ("Traceback", 'File "', "SELECT ", "INSERT ", "UPDATE ", "sqlite", "aiosqlite", "/tmp/")


def leaks_in(body: Any, sent: Any) -> list[str]:
    """The LEAKS in an error body, not counting the strings the client sent.

    An error may name what the client asked for (a session id of "sqlite_x"
    is echoed in its 404), and hypothesis draws such ids from this project's
    own source, so only what the server wrote by itself counts.
    """
    own_words = sorted(
        {text for text in strings_in(sent) if any(leak in text for leak in LEAKS)},
        key=len,
        reverse=True,
    )
    written = []
    for text in strings_in(body):
        for word in own_words:
            text = text.replace(word, "")
        written.append(text)
    return [leak for leak in LEAKS if any(leak in text for text in written)]


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (*strings_in(key), *strings_in(item))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in strings_in(item)]
    return [str(value)] if value is not None else []


def no_internals_in_errors(ctx: CheckContext, response: Response, case: Case[Any]) -> bool:
    if response.status_code >= 400:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        sent = [case.path_parameters, case.query, case.headers, case.cookies, case.body]
        leaked = leaks_in(body, sent)
        assert not leaked, f"{response.status_code} body shows {leaked}: {response.text[:300]}"
    return True


def test_the_leak_check_ignores_echoed_input_but_not_what_the_server_wrote() -> None:
    echoed = {"detail": "Session 'sqlite_x' does not exist.", "session_id": "sqlite_x"}
    assert leaks_in(echoed, [{"session_id": "sqlite_x"}]) == []
    written = {"detail": "sqlite3.OperationalError near 'x'", "session_id": "x"}
    assert leaks_in(written, [{"session_id": "x"}]) == ["sqlite"]
    assert leaks_in(written, [{"session_id": "s", "q": "sqlite3"}]) == []
    assert leaks_in(written, [{"session_id": "s", "q": "l"}]) == ["sqlite"]
    assert leaks_in('Traceback (most recent call last):\n  File "/tmp/a.py"', [{}]) == [
        "Traceback",
        'File "',
        "/tmp/",
    ]


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
async def server_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A real server on each backend in turn, shared by every generated case."""
    directory: Path = tmp_path_factory.mktemp(f"schemathesis-{request.param}")
    if request.param == "sqlite":
        env = {"DATABASE_PATH": str(directory / "fuzzed.db"), "DATABASE_URL": ""}
        with running_server(directory, env) as url:
            yield url
        return
    async with postgres_schema() as dsn:
        with running_server(directory, {"DATABASE_URL": dsn, "DATABASE_POOL_SIZE": "4"}) as url:
            yield url


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_conforms_to_the_schema(case: Case[Any], server_url: str) -> None:
    excluded = []
    if case.operation.label in CURSOR_LISTINGS | CROSS_CHECKED:
        # A cursor is an opaque token the schema cannot describe: any string
        # fits it, and one not handed out by a listing is rightly a 422 (as is
        # a search query the schema allows that holds no word, only punctuation).
        excluded.append(positive_data_acceptance)
    case.call_and_validate(
        base_url=server_url,
        excluded_checks=excluded,
        additional_checks=[no_internals_in_errors],
    )
