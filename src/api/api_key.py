"""API keys on every request: 401 without a valid key, 403 when the key lacks the scope.

With neither API_KEY nor API_KEYS set, every request passes. Otherwise each
request's scope in `src.api.access` decides; the key travels as
`Authorization: Bearer <key>`, the scheme in any case. The key file is read
when the app starts (a bad one fails the start) and again when it changes.

The console keeps its key in a cookie (`console_key`, the key base64url
encoded). That cookie counts only where a rule says so, for GET and HEAD of
the console's pages and the exports they link to: another site can make a
browser send it, never make it authorise a write. A browser without a valid
key on a console page is sent to the key form.

Who sent a request is left in its state for whatever runs after: `caller_of`
gives the `Caller` (the key's name and scopes), or None when no key was
checked or none was valid. Keys and their digests are never logged.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import quote

from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.api.access import OPEN_PATHS, access_rule
from src.api.console.paths import KEY_COOKIE
from src.api.errors import problem_response
from src.core.config import Settings
from src.core.errors import KeyFileError
from src.core.keys import Caller, KeyRing

# OPEN_PATHS is here too for the documentation, which marks what needs no key.
__all__ = [
    "OPEN_PATHS",
    "ApiKeyMiddleware",
    "bearer_credentials",
    "caller_of",
    "cookie_value",
    "key_ring_of",
]

_CALLER = "caller"
_KEY_RING = "key_ring"
_READING = frozenset({"GET", "HEAD"})


def bearer_credentials(authorization: bytes) -> bytes | None:
    """The credentials of an `Authorization: Bearer <credentials>` header, else None.

    The scheme is matched in any case (RFC 9110 11.1); spaces around the
    credentials are not part of them.
    """
    scheme, space, credentials = authorization.strip(b" \t").partition(b" ")
    if not space or scheme.lower() != b"bearer":
        return None
    return credentials.strip(b" \t") or None


def caller_of(scope: Scope) -> Caller | None:
    """Whose valid key a request carried (its name and scopes), or None."""
    caller: Caller | None = scope.get("state", {}).get(_CALLER)
    return caller


def key_ring_of(scope: Scope) -> KeyRing | None:
    """The keys the server accepts, or None when it needs no key."""
    keys: KeyRing | None = scope.get("state", {}).get(_KEY_RING)
    return keys


def cookie_value(key: str) -> str:
    """The key as the console's cookie keeps it: base64url, so any key fits a cookie."""
    return base64.urlsafe_b64encode(key.encode()).decode("ascii")


class ApiKeyMiddleware:
    """Refuse a request whose key is missing or wrong (401) or lacks its route's scope (403)."""

    def __init__(self, app: ASGIApp, settings: Callable[[], Settings]) -> None:
        self.app = app
        self._settings = settings
        self._keys: KeyRing | None = None
        self._resolved = False

    def _key_ring(self) -> KeyRing | None:
        # Settings may be read only when the app starts, so look once, late.
        if not self._resolved:
            settings = self._settings()
            if settings.api_key is not None or settings.api_keys is not None:
                api_key = settings.api_key.get_secret_value() if settings.api_key else None
                keys = KeyRing(api_key, settings.api_keys)
                keys.load()
                self._keys = keys
            self._resolved = True
        return self._keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._start(scope, receive, send)
            return
        keys = self._key_ring() if scope["type"] == "http" else None
        if keys is None:
            await self.app(scope, receive, send)
            return
        rule = access_rule(scope["method"], scope["path"])
        caller = _presented_caller(scope, keys, cookie=rule.cookie)
        scope["state"] = {**scope.get("state", {}), _CALLER: caller, _KEY_RING: keys}
        needed = rule.scope
        if needed is None or (caller is not None and needed in caller.scopes):
            await self.app(scope, receive, send)
            return
        response: Response
        if caller is None and rule.key_form is not None:
            response = _to_key_form(rule.key_form, scope)
        elif caller is None:
            response = problem_response(
                HTTPStatus.UNAUTHORIZED,
                "This server needs a valid API key: send Authorization: Bearer <key>.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        else:
            response = problem_response(
                HTTPStatus.FORBIDDEN,
                f"The key {caller.name!r} may not do this: it needs the {needed!s} scope.",
                code="insufficient_scope",
                headers={
                    "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'
                },
                scope=str(needed),
            )
        await response(scope, receive, send)

    async def _start(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the key file as the app starts; a bad one fails the start, naming API_KEYS."""
        try:
            self._key_ring()
        except KeyFileError as exc:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        except ValidationError:
            pass  # a bad setting: the app's own start-up reports it, as it fails
        await self.app(scope, receive, send)


def _presented_caller(scope: Scope, keys: KeyRing, *, cookie: bool) -> Caller | None:
    """The caller whose key the Authorization header carries, else (where `cookie`) the cookie."""
    authorization = [value for name, value in scope["headers"] if name == b"authorization"]
    if authorization:
        if len(authorization) != 1:
            return None  # several that could each be read as the one
        credentials = bearer_credentials(authorization[0])
        return None if credentials is None else keys.caller(credentials)
    if cookie and scope["method"] in _READING:
        return _cookie_caller(scope, keys)
    return None


def _cookie_caller(scope: Scope, keys: KeyRing) -> Caller | None:
    values = [
        value
        for name, header in scope["headers"]
        if name == b"cookie"
        for pair in header.split(b";")
        for cookie, _, value in [pair.strip().partition(b"=")]
        if cookie == KEY_COOKIE.encode()
    ]
    if len(values) != 1:
        return None  # none, or several that could each be read as the one
    try:
        key = base64.urlsafe_b64decode(values[0].strip(b'"'))
    except (binascii.Error, ValueError):
        return None
    return keys.caller(key) if key else None


def _to_key_form(key_form: str, scope: Scope) -> RedirectResponse:
    """A redirect to the key form, which leads back here once the key is given."""
    asked = scope["path"]
    if scope["query_string"]:
        asked += "?" + scope["query_string"].decode("latin-1")
    return RedirectResponse(f"{key_form}?next={quote(asked, safe='')}", HTTPStatus.SEE_OTHER)
