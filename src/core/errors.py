"""Errors raised by the session store.

Every error derives from ``SessionError``; none of them knows about HTTP
(``src.api.errors`` maps them to responses)::

    SessionError
    ├── SessionNotFoundError
    ├── SessionExistsError
    ├── StaleSessionError
    ├── SessionMismatchError
    ├── InvalidTransitionError
    ├── SessionEndedError
    ├── UtteranceExistsError
    ├── TurnRecordExistsError
    ├── TurnNotRecordedError
    ├── InvalidStateError
    ├── StudyNotFoundError
    ├── ParticipantNotFoundError
    ├── VersionNotFoundError
    ├── InvalidGraphError           (also a ValueError)
    ├── GraphTurnPassedError
    ├── NodeNotFoundError
    ├── NodeWithoutEmbeddingError   (also a ValueError)
    ├── InvalidCursorError          (also a ValueError)
    ├── InvalidSearchQueryError     (also a ValueError)
    ├── InvalidEventIdError         (also a ValueError)
    ├── EventsTrimmedError
    ├── PseudonymKeyMissingError
    └── StorageError
        ├── StorageUnavailableError
        │   └── StorageFullError
        ├── StorageDamagedError
        ├── RepositoryClosedError
        ├── SchemaVersionError
        ├── DatabaseFileError
        └── DatabaseInUseError
    KeyFileError                    (the API_KEYS file; not a SessionError)
    KeyNameError                    (a ValueError)
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "DatabaseFileError",
    "DatabaseInUseError",
    "EventsTrimmedError",
    "GraphTurnPassedError",
    "InvalidCursorError",
    "InvalidEventIdError",
    "InvalidGraphError",
    "InvalidSearchQueryError",
    "InvalidStateError",
    "InvalidTransitionError",
    "KeyFileError",
    "KeyNameError",
    "NodeNotFoundError",
    "NodeWithoutEmbeddingError",
    "ParticipantNotFoundError",
    "PseudonymKeyMissingError",
    "RepositoryClosedError",
    "SchemaVersionError",
    "SessionEndedError",
    "SessionError",
    "SessionExistsError",
    "SessionMismatchError",
    "SessionNotFoundError",
    "StaleSessionError",
    "StorageDamagedError",
    "StorageError",
    "StorageFullError",
    "StorageUnavailableError",
    "StudyNotFoundError",
    "TurnNotRecordedError",
    "TurnRecordExistsError",
    "UtteranceExistsError",
    "VersionNotFoundError",
]


class SessionError(Exception):
    """Base class of every error the session store raises."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SessionNotFoundError(SessionError):
    """No session has the given id."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session {session_id!r} does not exist.")
        self.session_id = session_id


class SessionExistsError(SessionError):
    """A session with the given id already exists; nothing was overwritten."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session {session_id!r} already exists.")
        self.session_id = session_id


class StaleSessionError(SessionError):
    """The session changed since the version the caller expected."""

    def __init__(self, session_id: str, expected_version: int, actual_version: int) -> None:
        super().__init__(
            f"Session {session_id!r} is at version {actual_version}, "
            f"not the expected version {expected_version}."
        )
        self.session_id = session_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class SessionMismatchError(SessionError):
    """A state names another methodology or concept than its session."""

    def __init__(self, session_id: str, field: str, expected: str, actual: str) -> None:
        super().__init__(
            f"Session {session_id!r} has {field} {expected!r}; the state names {actual!r}."
        )
        self.session_id = session_id
        self.field = field
        self.expected = expected
        self.actual = actual


class InvalidTransitionError(SessionError):
    """The lifecycle does not allow moving the session to the requested status."""

    def __init__(self, session_id: str, from_status: str, to_status: str) -> None:
        super().__init__(f"Session {session_id!r} cannot go from {from_status!r} to {to_status!r}.")
        self.session_id = session_id
        self.from_status = from_status
        self.to_status = to_status


class SessionEndedError(SessionError):
    """The session is completed or abandoned, so nothing more can be recorded in it."""

    def __init__(self, session_id: str, session_status: str) -> None:
        super().__init__(
            f"Session {session_id!r} is {session_status}; nothing more can be recorded."
        )
        self.session_id = session_id
        self.session_status = session_status


class UtteranceExistsError(SessionError):
    """The session already has an utterance by this speaker in this turn; it was kept."""

    def __init__(self, session_id: str, turn_number: int, speaker: str) -> None:
        super().__init__(
            f"Session {session_id!r} already has a {speaker} utterance in turn {turn_number}."
        )
        self.session_id = session_id
        self.turn_number = turn_number
        self.speaker = speaker


class TurnRecordExistsError(SessionError):
    """The session already has a record for this turn; it was kept and nothing was stored."""

    def __init__(self, session_id: str, turn_number: int) -> None:
        super().__init__(f"Session {session_id!r} already has a record for turn {turn_number}.")
        self.session_id = session_id
        self.turn_number = turn_number


class TurnNotRecordedError(SessionError):
    """The session has no such turn yet (a fork past its last turn, say)."""

    def __init__(self, session_id: str, turn_number: int, last_turn: int) -> None:
        super().__init__(
            f"Session {session_id!r} has no turn {turn_number}; its last turn is {last_turn}."
        )
        self.session_id = session_id
        self.turn_number = turn_number
        self.last_turn = last_turn


class InvalidStateError(SessionError, ValueError):
    """A merge patch would leave the session's state invalid; nothing was stored.

    `errors` holds one `{field, reason}` per problem, the field a dotted path in the state.
    """

    def __init__(self, session_id: str, errors: list[dict[str, str]]) -> None:
        summary = "; ".join(f"{error['field']}: {error['reason']}" for error in errors)
        super().__init__(f"The patched state of session {session_id!r} is not valid: {summary}")
        self.session_id = session_id
        self.errors = errors


class StudyNotFoundError(SessionError):
    """No session belongs to the given study."""

    def __init__(self, study_id: str) -> None:
        super().__init__(f"No session belongs to study {study_id!r}.")
        self.study_id = study_id


class ParticipantNotFoundError(SessionError):
    """No session names the given participant (nothing to erase)."""

    def __init__(self) -> None:
        # The id is personal data: it stays out of the message, and so out of every log.
        super().__init__("No session names this participant.")


class VersionNotFoundError(SessionError):
    """The session has no such version in its history."""

    def __init__(self, session_id: str, version: int) -> None:
        super().__init__(f"Session {session_id!r} has no version {version} in its history.")
        self.session_id = session_id
        self.version = version


class InvalidGraphError(SessionError, ValueError):
    """A graph change does not fit the session's graph or transcript; nothing was stored.

    `errors` holds one `{field, reason}` per problem, the field a dotted path in the change.
    """

    def __init__(self, session_id: str, errors: list[dict[str, str]]) -> None:
        summary = "; ".join(f"{error['field']}: {error['reason']}" for error in errors)
        super().__init__(f"The graph change to session {session_id!r} is refused: {summary}")
        self.session_id = session_id
        self.errors = errors


class GraphTurnPassedError(SessionError):
    """A graph change names a turn before one the graph has already changed in."""

    def __init__(self, session_id: str, turn_number: int, last_turn: int) -> None:
        super().__init__(
            f"The graph of session {session_id!r} last changed in turn {last_turn}; "
            f"a change cannot belong to the earlier turn {turn_number}."
        )
        self.session_id = session_id
        self.turn_number = turn_number
        self.last_turn = last_turn


class NodeNotFoundError(SessionError):
    """The session's graph has no such node."""

    def __init__(self, session_id: str, node_id: str) -> None:
        super().__init__(f"The graph of session {session_id!r} has no node {node_id!r}.")
        self.session_id = session_id
        self.node_id = node_id


class NodeWithoutEmbeddingError(SessionError, ValueError):
    """The node has no embedding to compare others with."""

    def __init__(self, session_id: str, node_id: str) -> None:
        super().__init__(f"Node {node_id!r} of session {session_id!r} has no embedding.")
        self.session_id = session_id
        self.node_id = node_id


class InvalidCursorError(SessionError, ValueError):
    """A pagination cursor was not one this store handed out."""

    def __init__(self) -> None:
        super().__init__("The cursor is not valid; use a next_cursor returned by a listing.")


class InvalidSearchQueryError(SessionError, ValueError):
    """A search query that cannot be searched for: blank, too long, or without a word."""


class InvalidEventIdError(SessionError, ValueError):
    """An event id to resume after that is not a whole number of 0 or more."""

    def __init__(self) -> None:
        super().__init__("The event id to resume after must be a whole number of 0 or more.")


class EventsTrimmedError(SessionError):
    """The events after the asked-for id are no longer all kept (EVENT_RETENTION), or the
    id is past the newest (the log was put back to an older copy since it was read)."""

    def __init__(self, after: int, trimmed_through: int, newest: int | None = None) -> None:
        if newest is not None and after > newest:
            detail = (
                f"No event with id {after} is in the log, whose newest id is {newest}: it was"
                " put back to an older copy since. Reload what you show, then listen without"
                " an id."
            )
        else:
            detail = (
                f"Events after id {after} are no longer kept: the log starts after id"
                f" {trimmed_through}. Reload what you show, then listen without an id."
            )
        super().__init__(detail)
        self.trimmed_through = trimmed_through


class PseudonymKeyMissingError(SessionError):
    """A pseudonymised export was asked for, and no PSEUDONYM_KEY is set to make pseudonyms."""

    def __init__(self) -> None:
        super().__init__(
            "Pseudonymised exports need the setting PSEUDONYM_KEY (a secret of at least 16 "
            "characters, kept for as long as pseudonyms must stay the same); it is not set."
        )


class StorageError(SessionError):
    """The database could not carry out an operation."""


class StorageUnavailableError(StorageError):
    """The database is locked, full or unreadable; the operation may succeed later."""


class StorageFullError(StorageUnavailableError):
    """The disk holding the database is full; writes may succeed once space is freed."""

    def __init__(self) -> None:
        super().__init__("The disk holding the database is full; no change was stored.")


class StorageDamagedError(StorageError):
    """A stored session (or one of its utterances) cannot be read back as this program knows it.

    The row was written by hand or by another version of this program; the
    rest of the store is readable.
    """

    def __init__(self, session_id: str, part: str = "session") -> None:
        super().__init__(
            f"The stored {part} of session {session_id!r} is in a form this program cannot "
            "show; the stored row needs repair."
        )
        self.session_id = session_id


class RepositoryClosedError(StorageError):
    """The repository was used after it was closed."""

    def __init__(self) -> None:
        super().__init__("The session repository is closed.")


class SchemaVersionError(StorageError):
    """The database was written by a newer version of this program."""

    def __init__(self, database: str, found: int, known: int) -> None:
        super().__init__(
            f"Database {database} has schema version {found}, newer than the {known} "
            "this program knows; upgrade the program instead of opening it."
        )
        self.database = database
        self.found = found
        self.known = known


class DatabaseFileError(StorageError):
    """The database file cannot be used: its folder or the file itself is read-only, say."""

    def __init__(self, database: str, cause: str) -> None:
        super().__init__(f"Cannot use the database {database}: {cause}.")
        self.database = database
        self.cause = cause


class DatabaseInUseError(StorageError):
    """Another process has the database open, so it cannot be replaced now."""

    def __init__(self, database: str) -> None:
        super().__init__(
            f"The database {database} is in use by another process; stop it and try again."
        )
        self.database = database


class KeyFileError(Exception):
    """The key file cannot be read, written or understood; the message is one line."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot use the key file {path} (API_KEYS): {reason}")
        self.path = path
        self.reason = reason


class KeyNameError(ValueError):
    """A name that cannot be added or removed: not a key name, taken, or unknown."""
