"""The Prometheus metrics the store keeps, defined in this one module.

The HTTP layer observes requests; the persistence layer observes commits and
database errors; `GET /metrics` renders them all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "DATABASE_ERRORS",
    "GROUP_COMMIT_WRITES",
    "REQUESTS",
    "REQUEST_DURATION",
    "SESSIONS",
    "observe_database_error",
    "observe_sessions_by_status",
]

REQUESTS = Counter(
    "interview_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
REQUEST_DURATION = Histogram(
    "interview_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method and route template.",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GROUP_COMMIT_WRITES = Histogram(
    "interview_group_commit_writes",
    "Writes committed together in one SQLite transaction with one fsync (group commit);"
    " a lone write that finds the connection idle commits on its own and is not counted.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
DATABASE_ERRORS = Counter(
    "interview_database_errors",
    "Requests that failed because of the database, by kind (storage_unavailable, ...).",
    ["kind"],
)


def observe_database_error(error: Exception) -> None:
    """Count a request that failed because of the database, by the error's kind."""
    kind = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(error).__name__.removesuffix("Error"))
    DATABASE_ERRORS.labels(kind=kind.lower()).inc()


SESSIONS = Gauge(
    "interview_sessions",
    "Sessions stored, by status; counted in the database when /metrics is scraped.",
    ["status"],
)


def observe_sessions_by_status(counts: Iterable[tuple[str, int]] | None) -> None:
    """Set the sessions gauge; None (the database could not be read) leaves it empty."""
    SESSIONS.clear()
    for status, count in counts or ():
        SESSIONS.labels(status=str(status)).set(count)
