"""The audit trail: every write, export, erasure and refused request (401, 403), recorded
after its answer has gone, with the name of the key that sent it.

What is recorded (see `src.domain.audit`): a POST, PUT, PATCH or DELETE
answered with 2xx (`write`; a DELETE under `/participants/` is an `erasure`),
a GET of an `.../export` route answered with 2xx (`export`), and any request
refused with 401 (`unauthorized`) or 403 (`forbidden`). Other refusals (404,
409, 412, 413, 415, 422) are not: they change nothing, and they came from a
key allowed to ask. Reads are not recorded.

Entries are written in batches a moment after their answers, off the
requests' path (see `AuditTrail`), not in the transaction of the write they
describe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

import structlog
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.api.api_key import caller_of
from src.api.observability import sent_path
from src.domain.audit import AuditAction, AuditEntry, recorded_path, recorded_session_id
from src.domain.models.session import utc_now
from src.persistence.repositories.protocol import SessionRepositoryProtocol

__all__ = ["AuditRecorder", "AuditTrail", "note_erasure"]

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REFUSALS = {401: AuditAction.UNAUTHORIZED, 403: AuditAction.FORBIDDEN}
# Kept in the request's own scope, which every layer shares: its `state` may
# be shared with other requests (asgi-lifespan hands each the same one).
_COUNTS = "audit.counts"
_MAX_METHOD_LENGTH = 16

# An entry waits this long for others to share its write: at most one write
# of the log per interval while requests keep coming, whatever their number.
GATHER_SECONDS = 0.2
_RETRY_SECONDS = 1.0
_MAX_BATCH = 500
# Entries kept while the database cannot take them; past this, the oldest
# are given up, each logged in full.
_MAX_PENDING = 100_000

_log = structlog.get_logger(__name__)


def note_erasure(request: Request, counts: Mapping[str, int]) -> None:
    """Give the erasure's audit entry what it erased, by kind (counts only, never whose)."""
    request.scope[_COUNTS] = dict(counts)


class AuditTrail:
    """Audit entries written in batches, after their requests were answered.

    An entry waits at most GATHER_SECONDS, then goes with every entry that
    came meanwhile in one write; on SQLite that write joins the group commit
    of whatever writes are under way. A batch that fails is logged and tried
    again; on close, what cannot be written is logged entry by entry, so no
    entry is ever lost without a trace.
    """

    def __init__(self, repository: SessionRepositoryProtocol) -> None:
        self.repository = repository
        self._pending: list[AuditEntry] = []
        self._writer: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def record(self, entry: AuditEntry) -> None:
        """Queue an entry; it is written within about GATHER_SECONDS."""
        self._pending.append(entry)
        if len(self._pending) > _MAX_PENDING:
            _lost(self._pending[:-_MAX_PENDING], "the audit log cannot be written")
            del self._pending[:-_MAX_PENDING]
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_soon())

    async def close(self) -> None:
        """Write every entry still waiting; log each one that cannot be written."""
        self._closing.set()
        if self._writer is not None:
            await self._writer
        if not await self._write_pending():
            _lost(self._pending, "the audit log could not be written before shutdown")
            self._pending.clear()

    async def _write_soon(self) -> None:
        while self._pending and not self._closing.is_set():
            await self._pause(GATHER_SECONDS)
            if not await self._write_pending():
                await self._pause(_RETRY_SECONDS)

    async def _pause(self, seconds: float) -> None:
        # Cut short when the trail closes, which writes what is left itself.
        with suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _write_pending(self) -> bool:
        """Write what waits, a batch at a time; False if a batch failed (it is kept)."""
        while self._pending:
            # Taken out while it is written, so that what arrives meanwhile
            # (or a trim of the oldest) cannot be confused with it.
            batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
            try:
                await self.repository.append_audit(batch)
            except Exception as exc:
                _log.error("audit_write_failed", entries=len(batch), error=repr(exc))
                self._pending[:0] = batch
                return False
        return True


def _lost(entries: list[AuditEntry], reason: str) -> None:
    for entry in entries:
        _log.error("audit_entry_lost", reason=reason, **entry.model_dump(mode="json"))


class AuditRecorder:
    """Records each request the audit log keeps, once it has been answered.

    It sits outside the API key check, so it sees the 401s and 403s that
    check answers, and reads the caller the check left in the request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._trail: AuditTrail | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._closing_on_shutdown(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            # An export whose stream broke has still sent part of the record.
            action = _action(scope, method, status)
            if action is not None:
                try:
                    self._record(scope, method, action)
                except Exception as exc:  # the answer has gone: say so, never fail it late
                    _log.error("audit_entry_not_recorded", action=action.value, error=repr(exc))

    def _record(self, scope: Scope, method: str, action: AuditAction) -> None:
        state: dict[str, Any] = scope.get("state", {})
        repository = state.get("repository")
        if repository is None:  # the app was not started: there is no log to write
            return
        if self._trail is None or self._trail.repository is not repository:
            self._trail = AuditTrail(repository)
        caller = caller_of(scope)
        erasure = action is AuditAction.ERASURE
        self._trail.record(
            AuditEntry(
                at=utc_now(),
                key_name=None if caller is None else caller.name,
                action=action,
                method=method[:_MAX_METHOD_LENGTH],
                path=recorded_path(sent_path(scope), scope["path"]),
                session_id=None if erasure else recorded_session_id(_session_id(scope)),
                counts=scope.get(_COUNTS) if erasure else None,
            )
        )

    def _closing_on_shutdown(self, receive: Receive) -> Receive:
        """`receive`, but the trail is written out before the app hears of shutdown (and closes
        its repository)."""

        async def receive_then_close() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                trail, self._trail = self._trail, None
                if trail is not None:
                    await trail.close()
            return message

        return receive_then_close


def _action(scope: Scope, method: str, status: int) -> AuditAction | None:
    if status in _REFUSALS:
        return _REFUSALS[status]
    if not 200 <= status < 300:
        return None
    if method in _WRITES:
        erasure = method == "DELETE" and scope["path"].startswith("/participants/")
        return AuditAction.ERASURE if erasure else AuditAction.WRITE
    if method == "GET" and _route_template(scope).rsplit("/", 1)[-1] == "export":
        return AuditAction.EXPORT
    return None


def _route_template(scope: Scope) -> str:
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else ""


def _session_id(scope: Scope) -> object:
    """The session the request names: its route's `session_id`, or for a request refused
    before routing (401, 403), the segment after `/sessions/`."""
    parameters = scope.get("path_params")
    if parameters is not None:
        return parameters.get("session_id")
    collection, _, rest = scope["path"].partition("/sessions/")
    return rest.split("/", 1)[0] if collection == "" and rest else None
