"""The session lifecycle: which status may follow which."""

from __future__ import annotations

from collections.abc import Mapping

from src.domain.models.session import SessionStatus

__all__ = ["ALLOWED_TRANSITIONS", "FINAL_STATUSES", "can_transition", "statuses_leading_to"]

ALLOWED_TRANSITIONS: Mapping[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.ACTIVE: frozenset(
        {SessionStatus.PAUSED, SessionStatus.COMPLETED, SessionStatus.ABANDONED}
    ),
    SessionStatus.PAUSED: frozenset(
        {SessionStatus.ACTIVE, SessionStatus.COMPLETED, SessionStatus.ABANDONED}
    ),
    SessionStatus.COMPLETED: frozenset(),
    SessionStatus.ABANDONED: frozenset(),
}

FINAL_STATUSES: frozenset[SessionStatus] = frozenset(
    status for status, targets in ALLOWED_TRANSITIONS.items() if not targets
)


def can_transition(from_status: SessionStatus, to_status: SessionStatus) -> bool:
    """Whether the lifecycle allows moving from one status to another."""
    return to_status in ALLOWED_TRANSITIONS[from_status]


def statuses_leading_to(to_status: SessionStatus) -> frozenset[SessionStatus]:
    """Every status from which a session may move to `to_status`."""
    return frozenset(
        status for status, targets in ALLOWED_TRANSITIONS.items() if to_status in targets
    )
