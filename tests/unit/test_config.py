"""Settings from the environment, and one clear line for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from src.core.config import Settings, describe_settings_error


def test_defaults_are_the_contract_s(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_PATH", "HOST", "PORT"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings()

    assert settings.database_path == Path("data/interview.db")
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_PATH", "/srv/x.db")
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "9001")

    settings = Settings()

    assert (settings.database_path, settings.host, settings.port) == (
        Path("/srv/x.db"),
        "0.0.0.0",
        9001,
    )


def test_a_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PORT", raising=False)
    (tmp_path / ".env").write_text("PORT=9100\n")

    assert Settings().port == 9100


@pytest.mark.parametrize("port", ["0", "65536", "eighty"])
def test_a_bad_port_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch, port: str) -> None:
    monkeypatch.setenv("PORT", port)

    with pytest.raises(ValidationError) as raised:
        Settings()

    message = describe_settings_error(raised.value)
    assert message.startswith("invalid setting PORT: ")
    assert "\n" not in message


def test_database_synchronous_accepts_full_or_normal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_SYNCHRONOUS", "normal")

    assert Settings().database_synchronous == "normal"


def test_a_bad_database_synchronous_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_SYNCHRONOUS", "off")

    with pytest.raises(ValidationError) as raised:
        Settings()

    assert describe_settings_error(raised.value).startswith("invalid setting DATABASE_SYNCHRONOUS")
