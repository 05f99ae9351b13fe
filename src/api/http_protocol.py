"""uvicorn's HTTP protocol with limits on how long and how large a request may be in coming.

uvicorn times out idle keep-alive connections, but not a request that
stops half-way: a client could send part of its headers, or part of its
body, and hold a connection (and its memory) for as long as it liked, and
its parser accepts headers of any size. These guards close such requests.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Callable
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "ABORT_EXTENSION",
    "BODY_GRACE_S",
    "BODY_IDLE_TIMEOUT_S",
    "BODY_MIN_BYTES_PER_S",
    "HEADER_TIMEOUT_S",
    "MAX_HEADER_BYTES",
    "GuardedHttpToolsProtocol",
]

HEADER_TIMEOUT_S = 10.0
"""A request's line and headers must all arrive within this long of its first byte."""

BODY_IDLE_TIMEOUT_S = 10.0
"""A request body may pause for at most this long between two pieces."""

BODY_GRACE_S = 10.0
BODY_MIN_BYTES_PER_S = 500
"""Past BODY_GRACE_S, a body must keep up this average rate since its headers ended."""

MAX_HEADER_BYTES = 64 * 1024
"""The request line and headers together; more gets 431."""

ABORT_EXTENSION = "interview-system.abort"
"""The scope's extension that closes the connection at once, dropping what waits to be sent:
closing it gently waits until the client has read all of that, which one that reads
nothing never does."""


class _HeadersTooLarge(Exception):
    """Raised from a parser callback: the parser stops, and uvicorn asks for an error answer."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus a header deadline, a body idle timeout and a header cap.

    A request that runs out of time gets 408 (or, if its answer has begun,
    a closed connection); headers over the cap get 431; what the parser
    cannot read gets 400. Each is problem+json and closes the connection, as
    a half-read request leaves nothing to go on from.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._timer: asyncio.TimerHandle | None = None
        self._reading_headers = True
        self._raw_header_bytes = 0  # bytes received since the request began, headers unfinished
        self._header_bytes = 0  # the request line and headers, as parsed
        self._body_allowed_until = 0.0  # loop time by which the body so far had to arrive
        self._body_too_slow = False

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte is an unfinished request too.
        self._arm(HEADER_TIMEOUT_S, self._headers_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            self._raw_header_bytes += len(data)
        super().data_received(data)
        # Headers still coming past the cap: refuse now, before the parser holds more of them.
        if (
            self._reading_headers
            and self._raw_header_bytes > MAX_HEADER_BYTES
            and not self.transport.is_closing()
        ):
            self._refuse_large_headers()

    def send_400_response(self, msg: str) -> None:
        # What the parser refuses gets a problem+json answer, like every other error.
        if self._header_bytes > MAX_HEADER_BYTES:
            self._refuse_large_headers()  # the parser stopped on _HeadersTooLarge
        else:
            self._refuse(HTTPStatus.BAD_REQUEST, "The request is not valid HTTP/1.1.")

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope.setdefault("extensions", {})[ABORT_EXTENSION] = {"abort": self._drop_connection}
        self._reading_headers = True
        self._header_bytes = 0
        if self._timer is None:
            self._arm(HEADER_TIMEOUT_S, self._headers_timed_out)

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._raw_header_bytes = 0
        self._body_allowed_until = self.loop.time() + BODY_GRACE_S
        self._arm_body_timer()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        # Each piece earns the time it takes at the least rate: a client that
        # sends a byte just under the idle timeout still runs out of time.
        self._body_allowed_until += len(body) / BODY_MIN_BYTES_PER_S
        self._arm_body_timer()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        self._reading_headers = True
        super().on_message_complete()

    # Limits

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BYTES:
            raise _HeadersTooLarge

    def _refuse_large_headers(self) -> None:
        self._refuse(
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
            f"The request line and headers are larger than {MAX_HEADER_BYTES} bytes.",
        )

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _arm_body_timer(self) -> None:
        left = self._body_allowed_until - self.loop.time()
        self._body_too_slow = left < BODY_IDLE_TIMEOUT_S  # the timer then fires for the rate
        self._arm(max(0.0, min(BODY_IDLE_TIMEOUT_S, left)), self._body_timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _drop_connection(self) -> None:
        # Reset, not closed: a gentle close would still wait, in the kernel, for a
        # client that reads nothing to take what its buffers hold.
        connection = self.transport.get_extra_info("socket")
        if connection is not None:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def _answering(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _headers_timed_out(self) -> None:
        self._timer = None
        if self._answering():
            # The next request's headers wait while the previous one is answered.
            self._arm(HEADER_TIMEOUT_S, self._headers_timed_out)
            return
        self._refuse(HTTPStatus.REQUEST_TIMEOUT, "The request headers did not arrive in time.")

    def _body_timed_out(self) -> None:
        self._timer = None
        if self.flow.read_paused:
            # The app has not read what came so far; the client is not the one waiting.
            self._body_allowed_until = max(
                self._body_allowed_until, self.loop.time() + BODY_IDLE_TIMEOUT_S
            )
            self._arm_body_timer()
            return
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        if self._body_too_slow:
            detail = (
                f"The request body arrived too slowly: under {BODY_MIN_BYTES_PER_S} bytes "
                f"a second, {BODY_GRACE_S:g} s after the headers."
            )
        else:
            detail = "The request body stopped arriving."
        self._refuse(HTTPStatus.REQUEST_TIMEOUT, detail)

    def _refuse(self, status: HTTPStatus, detail: str) -> None:
        """Answer with a problem+json body and close the connection."""
        self._disarm()
        if self.transport.is_closing():
            return
        body = json.dumps(
            {
                "type": "about:blank",
                "title": status.phrase,
                "status": status.value,
                "detail": detail,
                "code": status.name.lower(),
            }
        ).encode()
        head = [f"HTTP/1.1 {status.value} {status.phrase}".encode()]
        head += [name + b": " + value for name, value in self.server_state.default_headers]
        head += [
            b"content-type: application/problem+json",
            b"content-length: " + str(len(body)).encode(),
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        # connection_lost then tells an app still waiting for the body that the client is gone.
        self.transport.close()
