"""Named API keys with scopes, kept as digests in the TOML file that API_KEYS names.

One `[[key]]` table per key; `interview-system keys` writes it, a person may
read and edit it:

    [[key]]
    name = "analyst"
    scopes = ["read"]
    sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    created = 2026-11-30T04:52:51Z

`admin` implies `write`, and `write` implies `read`. The key from API_KEY is
named `api_key` and has every scope.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import re
import secrets
import tempfile
import time
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import structlog
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from src.core.errors import KeyFileError, KeyNameError

__all__ = [
    "API_KEY_NAME",
    "Caller",
    "KeyRing",
    "Scope",
    "StoredKey",
    "add_key",
    "key_digest",
    "read_key_file",
    "remove_key",
    "with_implied",
]

API_KEY_NAME = "api_key"
KEY_PREFIX = "isk_"
KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"

_log = structlog.get_logger(__name__)


class Scope(StrEnum):
    """What a key may do; each scope implies those listed before it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


def with_implied(scopes: Iterable[Scope]) -> frozenset[Scope]:
    """The scopes given and every scope they imply (admin implies write, write implies read)."""
    order = list(Scope)
    highest = max((order.index(scope) for scope in scopes), default=-1)
    return frozenset(order[: highest + 1])


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the name of the key it carried, and what that key may do."""

    name: str
    scopes: frozenset[Scope]


class StoredKey(BaseModel):
    """One key as the file keeps it: its digest, never the key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=KEY_NAME_PATTERN)]
    scopes: Annotated[tuple[Scope, ...], Field(min_length=1)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    created: AwareDatetime


def key_digest(key: bytes) -> bytes:
    """The digest a key is stored and compared as.

    A key is 32 random bytes, so plain SHA-256 is enough: nobody can guess
    a key from its digest, and no salt or slow hash helps against a search
    over 2**256 keys. Slow password hashes exist for guessable secrets and
    would cost every request milliseconds. (API_KEY, chosen by a person, is
    never written anywhere; it is hashed only to be compared the same way.)
    """
    return hashlib.sha256(key).digest()


def new_key() -> str:
    """A fresh key: a prefix that secret scanners can spot, then 32 random bytes."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def read_key_file(path: Path) -> list[StoredKey]:
    """Every key in the file, checked.

    Raises:
        KeyFileError: the file is missing, unreadable or malformed.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise KeyFileError(
            path, "there is no such file (interview-system keys add creates it)"
        ) from None
    except UnicodeDecodeError:
        raise KeyFileError(path, "it is not UTF-8 text") from None
    except OSError as exc:
        raise KeyFileError(path, exc.strerror or str(exc)) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KeyFileError(path, f"it is not valid TOML: {exc}") from None
    return _checked_keys(path, document)


def _checked_keys(path: Path, document: dict[str, Any]) -> list[StoredKey]:
    unknown = sorted(set(document) - {"key"})
    if unknown:
        raise KeyFileError(
            path, f"unknown entry {unknown[0]!r}: the file holds only [[key]] tables"
        )
    entries = document.get("key", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise KeyFileError(path, "'key' must be [[key]] tables")
    keys: list[StoredKey] = []
    for number, entry in enumerate(entries, start=1):
        try:
            keys.append(StoredKey.model_validate(entry))
        except ValidationError as exc:
            label = f"key {number}" + (f" ({entry['name']!r})" if "name" in entry else "")
            raise KeyFileError(path, f"{label}: {_first_problem(exc)}") from None
    _refuse_clashes(path, keys)
    return keys


def _first_problem(exc: ValidationError) -> str:
    # Only the field and pydantic's reason: never the value, which might be a
    # key pasted into the wrong place.
    error = exc.errors(include_input=False)[0]
    field = ".".join(str(part) for part in error["loc"]) or "entry"
    return f"{field}: {error['msg']}"


def _refuse_clashes(path: Path, keys: Sequence[StoredKey]) -> None:
    names: set[str] = set()
    digests: set[str] = set()
    for key in keys:
        if key.name == API_KEY_NAME:
            raise KeyFileError(path, f"the name {API_KEY_NAME!r} is kept for the key in API_KEY")
        if key.name in names:
            raise KeyFileError(path, f"the name {key.name!r} is used twice")
        if key.sha256 in digests:
            raise KeyFileError(path, f"the key named {key.name!r} is the same as another one")
        names.add(key.name)
        digests.add(key.sha256)


def add_key(path: Path, name: str, scopes: Iterable[Scope], *, now: datetime | None = None) -> str:
    """Add a key named `name` to the file (created if missing) and return the key.

    Raises:
        KeyNameError: the name is taken or is no key name.
        KeyFileError: the file cannot be used.
    """
    if not re.fullmatch(KEY_NAME_PATTERN, name):
        raise KeyNameError(
            f"{name!r} is not a key name: 1 to 64 letters, digits and _ . @ -, "
            "starting with a letter or digit"
        )
    if name == API_KEY_NAME:
        raise KeyNameError(f"the name {API_KEY_NAME!r} is kept for the key in API_KEY")
    key = new_key()
    stored = StoredKey(
        name=name,
        scopes=tuple(sorted(with_implied(scopes), key=list(Scope).index)),
        sha256=key_digest(key.encode()).hex(),
        created=(now or datetime.now(UTC)).replace(microsecond=0),
    )
    with _locked(path):
        keys = read_key_file(path) if path.exists() else []
        if any(existing.name == name for existing in keys):
            raise KeyNameError(f"there is already a key named {name!r} in {path}")
        _refuse_clashes(path, [*keys, stored])
        _write_key_file(path, [*keys, stored])
    return key


def remove_key(path: Path, name: str) -> None:
    """Remove the key named `name` from the file.

    Raises:
        KeyNameError: no key has that name.
        KeyFileError: the file cannot be used.
    """
    with _locked(path):
        keys = read_key_file(path)
        kept = [key for key in keys if key.name != name]
        if len(kept) == len(keys):
            raise KeyNameError(f"there is no key named {name!r} in {path}")
        _write_key_file(path, kept)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the key file's folder, so that two commands changing the file take turns.

    The folder is locked, not the file, because each write replaces the file.
    """
    blocking = next((above for above in path.parents if above.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise KeyFileError(path, f"{blocking} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise KeyFileError(path, exc.strerror or str(exc)) from None
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)


def _write_key_file(path: Path, keys: Sequence[StoredKey]) -> None:
    """Replace the file in one rename, so that a reader sees the old file or the new one."""
    text = _render(keys)
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as exc:
        raise KeyFileError(path, exc.strerror or str(exc)) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:  # mkstemp makes it 0600
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)  # the rename itself survives a crash
        finally:
            os.close(folder)
    except OSError as exc:
        with suppress(OSError):
            os.unlink(temporary)
        raise KeyFileError(path, exc.strerror or str(exc)) from None


_HEADER = """\
# API keys of the interview session store (the file API_KEYS names).
# Keys are kept as SHA-256 digests, never as keys. Change this file with
# `interview-system keys add|list|remove`; a running server reads it again
# when it changes. Scopes: read, write (implies read), admin (implies both).
"""


def _render(keys: Sequence[StoredKey]) -> str:
    # Names match KEY_NAME_PATTERN and scopes and digests are plain ASCII, so
    # every string is written as it is, between quotes.
    tables = []
    for key in keys:
        scopes = ", ".join(f'"{scope}"' for scope in key.scopes)
        created = key.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        tables.append(
            f'\n[[key]]\nname = "{key.name}"\nscopes = [{scopes}]\n'
            f'sha256 = "{key.sha256}"\ncreated = {created}\n'
        )
    return _HEADER + "".join(tables)


@dataclass(frozen=True)
class _FileState:
    """What a stat says of the key file: if none of it changed, neither did the file."""

    identity: tuple[int, ...]
    changed_ns: int

    @classmethod
    def of(cls, path: Path) -> _FileState | None:
        try:
            status = path.stat()
        except OSError:
            return None
        changed = max(status.st_mtime_ns, status.st_ctime_ns)
        return cls((status.st_dev, status.st_ino, status.st_size, changed), changed)

    def is_recent(self) -> bool:
        # A file system with coarse timestamps can give two different files,
        # written within one tick, the same stat: such a file is read again
        # until it is old enough to trust (git's "racily clean" problem).
        return time.time_ns() - self.changed_ns < _TRUST_STAT_AFTER_NS


_TRUST_STAT_AFTER_NS = 2_000_000_000


class KeyRing:
    """The keys a server accepts: API_KEY's (named `api_key`, every scope) and the file's.

    The file is read again when it changes, so keys added or removed take
    effect without a restart. A stat on each lookup is how a change is seen:
    it costs a microsecond, and a key works the moment `keys add` returns.
    A file that turns bad while the server runs is reported in the log and
    the keys read last stay in force, as at start the server would refuse it.
    """

    def __init__(self, api_key: str | None, key_file: Path | None) -> None:
        self._fixed: list[tuple[bytes, Caller]] = []
        if api_key is not None:
            self._fixed.append(
                (key_digest(api_key.encode()), Caller(API_KEY_NAME, frozenset(Scope)))
            )
        self._key_file = key_file
        self._from_file: list[tuple[bytes, Caller]] = []
        self._seen: _FileState | None = None
        self._problem: str | None = None

    def load(self) -> None:
        """Read the key file now.

        Raises:
            KeyFileError: the file is missing, unreadable or malformed.
        """
        if self._key_file is not None:
            self._seen = _FileState.of(self._key_file)
            self._from_file = self._read(self._key_file)

    def caller(self, key: bytes) -> Caller | None:
        """Whose key this is, or None for a key this server does not know."""
        self._reload_if_changed()
        digest = key_digest(key)
        found: Caller | None = None
        # Every stored digest is compared, each in constant time, so the time
        # taken tells nothing about which key matched or how closely.
        for stored, caller in [*self._fixed, *self._from_file]:
            if hmac.compare_digest(stored, digest) and found is None:
                found = caller
        return found

    @staticmethod
    def _read(path: Path) -> list[tuple[bytes, Caller]]:
        return [
            (bytes.fromhex(key.sha256), Caller(key.name, with_implied(key.scopes)))
            for key in read_key_file(path)
        ]

    def _reload_if_changed(self) -> None:
        if self._key_file is None:
            return
        seen = _FileState.of(self._key_file)
        if seen == self._seen and (seen is None or not seen.is_recent()):
            return
        self._seen = seen
        try:
            keys = self._read(self._key_file)
        except KeyFileError as exc:
            if str(exc) != self._problem:  # once per problem, not on every request
                self._problem = str(exc)
                _log.error(
                    "api_keys_not_reloaded",
                    problem=self._problem,
                    advice="the keys read last stay in force",
                )
            return
        self._problem = None
        if keys != self._from_file:
            self._from_file = keys
            _log.info("api_keys_reloaded", path=str(self._key_file), keys=len(keys))
