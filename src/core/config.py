"""Settings, read from the environment and from ``.env``."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PositiveDuration = Annotated[timedelta, Field(gt=timedelta(0))]
# A sweep's cut-off is now minus the rule: it must stay a date (after year 1).
RetentionRule = Annotated[timedelta, Field(gt=timedelta(0), le=timedelta(days=100 * 366))]


class Settings(BaseSettings):
    """Runtime configuration; each field is an environment variable of the same name."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    database_path: Path = Path("data/interview.db")
    database_synchronous: Literal["full", "normal"] = "full"
    database_url: str | None = None
    database_pool_size: Annotated[int, Field(ge=1, le=1000)] = 10
    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    api_key: SecretStr | None = None
    api_keys: Path | None = None  # the file of named keys with scopes (src/core/keys.py)
    max_body_bytes: Annotated[int, Field(ge=1)] = 1024 * 1024  # larger request bodies get 413
    # The key of participants' pseudonyms in pseudonymised exports; unset refuses them.
    pseudonym_key: SecretStr | None = None
    # Retention, off unless set: ISO 8601 durations ("P7D", "PT30M") or seconds.
    idle_pause_after: RetentionRule | None = None
    abandon_paused_after: RetentionRule | None = None
    retention_sweep_interval: PositiveDuration = timedelta(minutes=1)
    # How long the event log (GET /events) keeps events; older ones are trimmed.
    event_retention: PositiveDuration = timedelta(days=7)
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"

    @field_validator(
        "idle_pause_after",
        "abandon_paused_after",
        "retention_sweep_interval",
        "event_retention",
        mode="before",
    )
    @classmethod
    def _seconds_or_iso_duration(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        value = value.strip()
        if not value:
            return None  # unset: that part of retention is off
        try:
            return float(value)  # plain seconds
        except ValueError:
            return value

    @field_validator("database_path")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        # A shell expands `~` only at the start of a word, never in .env.
        return _home_expanded(value)

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def retention_enabled(self) -> bool:
        return self.idle_pause_after is not None or self.abandon_paused_after is not None

    @field_validator("api_key", "pseudonym_key")
    @classmethod
    def _unset_when_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters, or unset")
        if value.get_secret_value() != value.get_secret_value().strip():
            # A request's `Authorization: Bearer <key>` cannot carry them.
            raise ValueError("must not begin or end with a space, tab or line break")
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _key_file(cls, value: object) -> object:
        if isinstance(value, str):
            # Blank is unset; `~` is the home folder, as in DATABASE_PATH.
            return _home_expanded(Path(value)) if value.strip() else None
        return value

    @field_validator("database_url")
    @classmethod
    def _postgresql_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL, or unset to use SQLite")
        try:
            urlsplit(value).port  # noqa: B018 - reading it checks the host and port
        except ValueError as exc:
            raise ValueError(f"its server address cannot be read: {exc}") from exc
        return value


def _home_expanded(path: Path) -> Path:
    try:
        return path.expanduser()
    except RuntimeError as exc:  # `~name` of no user, or no home folder to be found
        raise ValueError(f"{path}: {path.parts[0]} names no home folder") from exc


def describe_settings_error(exc: ValidationError) -> str:
    """One line naming each environment variable that holds a bad value."""
    problems = []
    for error in exc.errors():
        variable = str(error["loc"][0]).upper() if error["loc"] else "settings"
        problems.append(f"{variable}: {error['msg']}")
    return "invalid setting " + "; ".join(problems)


@cache
def get_settings() -> Settings:
    """The settings of this process, read once from the environment."""
    return Settings()


def __getattr__(name: str) -> Settings:
    # `settings` is resolved on first use, so that importing this module never
    # fails on a bad environment: the CLI reports that error as one line.
    if name == "settings":
        return get_settings()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
