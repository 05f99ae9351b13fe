"""EVENT_RETENTION: seconds or ISO 8601, 7 days unless set, never zero."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from src.core.config import Settings


def test_event_retention_defaults_to_seven_days() -> None:
    assert Settings().event_retention == timedelta(days=7)


@pytest.mark.parametrize(
    ("given", "meant"), [("3600", timedelta(hours=1)), ("P1D", timedelta(days=1))]
)
def test_event_retention_takes_seconds_or_iso_8601(given: str, meant: timedelta) -> None:
    assert Settings(event_retention=given).event_retention == meant


@pytest.mark.parametrize("given", ["0", "-5", "soon"])
def test_a_bad_event_retention_is_refused(given: str) -> None:
    with pytest.raises(ValidationError, match="event_retention"):
        Settings(event_retention=given)
