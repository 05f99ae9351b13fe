"""Validation rules of Session and SessionState."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from src.domain.models.session import ConceptName, Session, SessionState, SessionStatus

STATE = {"methodology": "mec", "concept_id": "c-1", "concept_name": "Coffee"}


def session(**overrides: Any) -> Session:
    fields: dict[str, Any] = {
        "id": "s-1",
        **STATE,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
        "state": SessionState(**STATE),
        "status": "active",
    }
    fields.update(overrides)
    return Session(**fields)


class TestSessionState:
    def test_the_spec_s_constructor_works_with_its_defaults(self) -> None:
        state = SessionState(methodology="zmet", concept_id="c", concept_name="Tea")

        assert (state.turn_count, state.coverage_score, state.last_strategy) == (0, 0.0, None)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("turn_count", -1),
            ("coverage_score", -0.01),
            ("coverage_score", 1.01),
            ("coverage_score", float("nan")),
            ("coverage_score", float("inf")),
            ("methodology", ""),
            ("methodology", "m" * 65),
            ("methodology", "mec\n"),
            ("concept_id", ""),
            ("concept_id", "c" * 129),
            ("concept_id", "c\x00"),
            ("concept_name", ""),
            ("concept_name", "   "),
            ("concept_name", "n" * 201),
            ("concept_name", "Tea\x07time"),
            ("concept_name", "two\tcolumns"),
            ("last_strategy", "s" * 65),
        ],
    )
    def test_out_of_range_values_are_refused(self, field: str, value: object) -> None:
        with pytest.raises(ValidationError) as raised:
            SessionState(**{**STATE, field: value})

        assert raised.value.errors()[0]["loc"] == (field,)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("turn_count", 0),
            ("coverage_score", 0.0),
            ("coverage_score", 1.0),
            ("methodology", "m" * 64),
            ("concept_id", "c" * 128),
            ("concept_name", "n" * 200),
            ("concept_name", "Café ☕ 珈琲"),
            ("last_strategy", "s" * 64),
        ],
    )
    def test_values_at_the_bounds_are_accepted(self, field: str, value: object) -> None:
        state = SessionState(**{**STATE, field: value})

        assert getattr(state, field) == value

    def test_concept_name_is_trimmed_before_its_length_is_checked(self) -> None:
        state = SessionState(**{**STATE, "concept_name": "  " + "n" * 200 + "  "})

        assert state.concept_name == "n" * 200

    @pytest.mark.parametrize("padding", ["", "  "])
    def test_the_published_name_pattern_accepts_exactly_the_names_the_model_accepts(
        self, padding: str
    ) -> None:
        # Clients (and schema-driven fuzzers) build names from the OpenAPI
        # pattern, so it must agree with trimming on every code point.
        pattern = re.compile(
            SessionState.model_json_schema()["properties"]["concept_name"]["pattern"]
        )
        name = TypeAdapter(ConceptName)
        disagreements = []
        for code_point in range(sys.maxunicode + 1):
            if 0xD800 <= code_point <= 0xDFFF:
                continue
            text = padding + chr(code_point) + padding
            try:
                name.validate_python(text)
                accepted = True
            except ValidationError:
                accepted = False
            if accepted != bool(pattern.fullmatch(text)):
                disagreements.append(hex(code_point))

        assert disagreements == []

    def test_a_name_of_only_unicode_spaces_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            SessionState(**{**STATE, "concept_name": "\u00a0\u3000\u2009"})

    def test_assignment_is_validated(self) -> None:
        state = SessionState(**STATE)

        with pytest.raises(ValidationError):
            state.turn_count = -5


class TestSession:
    def test_the_spec_s_constructor_works_and_status_equals_its_string(self) -> None:
        created = session()

        assert created.status == "active"
        assert created.status is SessionStatus.ACTIVE
        assert (created.version, created.ended_at) == (1, None)

    def test_status_values_are_the_contract_s(self) -> None:
        assert [status.value for status in SessionStatus] == [
            "active",
            "paused",
            "completed",
            "abandoned",
        ]

    def test_an_unknown_status_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            session(status="archived")

    @pytest.mark.parametrize("session_id", ["", "x" * 129])
    def test_ids_must_be_1_to_128_characters(self, session_id: str) -> None:
        with pytest.raises(ValidationError):
            session(id=session_id)

    @pytest.mark.parametrize(
        ("field", "value"),
        [("methodology", "zmet"), ("concept_id", "c-2"), ("concept_name", "Tea")],
    )
    def test_a_state_naming_another_concept_is_refused(self, field: str, value: str) -> None:
        with pytest.raises(ValidationError, match=f"state.{field}"):
            session(state=SessionState(**{**STATE, field: value}))

    def test_a_missing_state_starts_fresh_for_this_concept(self) -> None:
        created = Session(id="s-1", **STATE)

        assert created.state == SessionState(**STATE)

    def test_naive_datetimes_are_taken_as_utc(self) -> None:
        created = session(created_at=datetime(2026, 5, 1, 12, 30))

        assert created.created_at == datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
        assert created.created_at.tzinfo is UTC

    def test_aware_datetimes_are_converted_to_utc(self) -> None:
        plus_two = timezone(timedelta(hours=2))

        created = session(updated_at=datetime(2026, 5, 1, 14, 30, tzinfo=plus_two))

        assert created.updated_at == datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
        assert created.updated_at.utcoffset() == timedelta(0)

    def test_json_round_trip_keeps_every_field(self) -> None:
        original = session(status="completed", version=4, ended_at=datetime(2026, 2, 1, tzinfo=UTC))

        assert Session.model_validate_json(original.model_dump_json()) == original
