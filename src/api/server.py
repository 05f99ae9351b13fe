"""Serving an app over HTTP: the one place that configures uvicorn."""

from __future__ import annotations

import socket
import sys

import uvicorn
from fastapi import FastAPI

from src.api.http_protocol import GuardedHttpToolsProtocol
from src.core.collector import settle_long_lived_objects
from src.core.config import Settings

__all__ = ["check_can_listen", "serve"]


# The event loop thread is busy whenever requests are; at the default 5 ms
# switch interval, aiosqlite's connection thread could wait that long for the
# GIL on every hop. Measured under load on one core (see docs/benchmarks.md).
_GIL_SWITCH_INTERVAL_S = 0.0002
# How long a stop waits for open requests: an event stream whose client stopped
# reading never ends by itself, and would keep the process (and its database) from
# stopping. Whatever is still open then is cancelled; every write commits or not.
_GRACEFUL_SHUTDOWN_S = 10


def serve(app: FastAPI, settings: Settings) -> None:
    """Serve `app` on the settings' host and port until SIGINT or SIGTERM."""
    sys.setswitchinterval(_GIL_SWITCH_INTERVAL_S)
    # The app's own objects (routes, models, their schemas) live as long as the
    # process; frozen, every full collection skips them. Measured: 12-17% more
    # turns a second on one core (docs/benchmarks.md).
    settle_long_lived_objects()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        # The standard library's event loop, not uvloop: measured with wrk at 64
        # connections on one core, uvloop left some connections waiting (a page of the
        # session list: p99 1.1 s, some past wrk's 2 s timeout, once the server had
        # served an earlier run) where asyncio answered all within 90 ms, at the same
        # requests a second (docs/benchmarks.md).
        loop="asyncio",
        # httptools, with timeouts for requests that never finish and a header size cap.
        http=GuardedHttpToolsProtocol,
        log_config=None,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
    )


def check_can_listen(host: str, port: int) -> None:
    """Bind every address uvicorn will bind for `host` and `port`, then let go of them.

    Lets the caller report a busy port in its own words before anything
    starts; uvicorn would only log it after starting the application.

    Raises:
        OSError: an address cannot be bound (`errno.EADDRINUSE`: another process has it).
    """
    for family, kind, protocol, _, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, protocol) as probe:
            # As uvicorn does: a port whose old connections linger in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
