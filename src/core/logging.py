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

# Processors that both structlog's own events and stdlib records (uvicorn's)
# pass through, so that every line carries the same fields.
_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _renderer(log_format: LogFormat) -> Processor:
    if log_format == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=False)


def configure_logging(log_format: LogFormat = "console", log_level: LogLevel = "info") -> None:
    """Send the app's and uvicorn's records to stderr, each as one line in `log_format`."""
    level = logging.getLevelNamesMapping()[log_level.upper()]
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if log_format == "json":
        final.append(structlog.processors.format_exc_info)
    final.append(_renderer(log_format))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=_SHARED, processors=final)
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        # uvicorn's own handlers, if any, would print a second, differently
        # formatted line: its records go to the root handler only.
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # The app logs each request itself (src.api.observability), with its id.
    logging.getLogger("uvicorn.access").disabled = True
    structlog.reset_defaults()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
