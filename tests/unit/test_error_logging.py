"""What the log keeps of a request that failed unexpectedly: never what it carried."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# Run in a process of its own: the log's configuration is the process's, set once.
_FAIL_ON_A_PARTICIPANT = textwrap.dedent(
    """
    import asyncio

    from starlette.requests import Request

    from src.api.errors import _unexpected_error
    from src.core.logging import configure_logging

    configure_logging({log_format!r})


    def erase(participant_id: str) -> None:
        said = "my phone number is 555-0100"
        raise RuntimeError("the disk went away")


    scope = {{
        "type": "http",
        "method": "DELETE",
        "path": "/participants/p-4471",
        "raw_path": b"/participants/p-4471",
        "query_string": b"",
        "headers": [],
    }}
    try:
        erase("p-4471")
    except RuntimeError as exc:
        response = asyncio.run(_unexpected_error(Request(scope), exc))
        assert response.status_code == 500
    """
)


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_an_unexpected_error_logs_the_path_template_and_no_local_value(log_format: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _FAIL_ON_A_PARTICIPANT.format(log_format=log_format)],
        capture_output=True,
        text=True,
        check=True,
    )

    log = run.stderr
    assert "unhandled_error" in log and "the disk went away" in log
    assert "/participants/{participant_id}" in log
    assert "p-4471" not in log
    assert "555-0100" not in log
