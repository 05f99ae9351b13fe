"""Settings an operator gets slightly wrong stop the start with a line naming the variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from src.core.config import Settings, describe_settings_error

NO_SUCH_USER = "~no-such-user-of-this-machine"


@pytest.mark.parametrize("variable", ["DATABASE_PATH", "API_KEYS"])
def test_a_home_folder_of_no_user_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, f"{NO_SUCH_USER}/file")

    with pytest.raises(ValidationError) as refused:
        Settings()

    line = describe_settings_error(refused.value)
    assert line.startswith(f"invalid setting {variable}: ")
    assert NO_SUCH_USER in line


@pytest.mark.parametrize("api_key", [" " + "k" * 24, "k" * 24 + " ", "k" * 24 + "\t"])
def test_an_api_key_with_spaces_around_it_is_refused(
    monkeypatch: pytest.MonkeyPatch, api_key: str
) -> None:
    # `Authorization: Bearer <key>` cannot carry spaces around a key, so no
    # request could ever present it: every request would get 401.
    monkeypatch.setenv("API_KEY", api_key)

    with pytest.raises(ValidationError) as refused:
        Settings()

    line = describe_settings_error(refused.value)
    assert line.startswith("invalid setting API_KEY: ")
    assert "space" in line
    assert "k" * 24 not in line  # never the key itself


@pytest.mark.parametrize("variable", ["IDLE_PAUSE_AFTER", "ABANDON_PAUSED_AFTER"])
@pytest.mark.parametrize("duration", ["P999999D", "P740000D", "63900000000"])
def test_a_retention_rule_reaching_before_year_one_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, duration: str
) -> None:
    # The sweep's cut-off, now minus the duration, would not be a date: every
    # sweep would fail, and `sweep` would end with an OverflowError.
    monkeypatch.setenv(variable, duration)

    with pytest.raises(ValidationError) as refused:
        Settings()

    assert describe_settings_error(refused.value).startswith(f"invalid setting {variable}: ")


def test_a_retention_rule_of_a_century_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDLE_PAUSE_AFTER", "P36500D")

    assert Settings().idle_pause_after is not None


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:99999/test",
        "postgresql://postgres@127.0.0.1:port/test",
        "postgresql://postgres@[::1/test",
    ],
)
def test_a_database_url_that_names_no_server_is_refused(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)

    with pytest.raises(ValidationError) as refused:
        Settings()

    assert describe_settings_error(refused.value).startswith("invalid setting DATABASE_URL: ")
