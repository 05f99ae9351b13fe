"""Structured logging for the server and the command line: one format for every line."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog
from structlog.typing import Processor

__all__ = ["LogFormat", "LogLevel", "configure_logging"]

LogFormat = Literal["console", "json"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]

# What every line carries, whether structlog or the stdlib (uvicorn) made it.
_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class _NamedStderrLogger(structlog.WriteLogger):
    """structlog's writer to stderr, with the name it was asked for (`add_logger_name`)."""

    def __init__(self, name: str) -> None:
        super().__init__(sys.stderr)
        self.name = name


def _named_stderr_logger(*args: object) -> _NamedStderrLogger:
    return _NamedStderrLogger(str(args[0]) if args else "")


def _rendering(log_format: LogFormat) -> list[Processor]:
    if log_format == "json":
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    # A traceback without the frames' local variables: they hold what requests carried
    # (a participant's id, what was said, a key).
    return [
        structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    ]


def configure_logging(log_format: LogFormat = "console", log_level: LogLevel = "info") -> None:
    """Write the app's and uvicorn's records to stderr, each as one line in `log_format`."""
    level = logging.getLevelNamesMapping()[log_level.upper()]
    rendering = _rendering(log_format)
    # structlog's own events skip the stdlib's machinery: a request line is
    # written on every request, so it should cost as little as it can.
    structlog.reset_defaults()
    structlog.configure(
        processors=[*_SHARED, *rendering],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_named_stderr_logger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        # uvicorn's own handlers, if any, would print a second line in another format.
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # The app logs each request itself (src.api.observability), with its id.
    logging.getLogger("uvicorn.access").disabled = True
