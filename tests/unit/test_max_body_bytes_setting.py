"""MAX_BODY_BYTES: the request body limit, a setting with a checked value."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from src.core.config import Settings, describe_settings_error
from tests.servers import SERVER


def test_the_default_is_one_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAX_BODY_BYTES", raising=False)

    assert Settings().max_body_bytes == 1_048_576


def test_the_environment_sets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "2048")

    assert Settings().max_body_bytes == 2048


@pytest.mark.parametrize("value", ["0", "-1", "1MB", "1.5", ""])
def test_a_bad_value_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", value)

    with pytest.raises(ValidationError) as raised:
        Settings()

    message = describe_settings_error(raised.value)
    assert message.startswith("invalid setting MAX_BODY_BYTES: ")
    assert "\n" not in message


def test_the_server_does_not_start_with_a_bad_value(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SERVER), "serve", "--port", "1"],
        env={"MAX_BODY_BYTES": "lots", "DATABASE_PATH": str(tmp_path / "x.db")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "MAX_BODY_BYTES" in result.stderr
    assert not (tmp_path / "x.db").exists()
