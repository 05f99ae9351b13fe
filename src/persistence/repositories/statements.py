"""Every statement the repository runs, written once with named parameters.

A `Query` holds the SQLite text (`:name` parameters, bound from a mapping)
and the PostgreSQL text (`$n` parameters, bound by position), made from the
same text at import time. Where the dialects differ only in a timestamp,
`:now` stands for the time of the write: SQLite binds fixed-width UTC text
from Python's clock, PostgreSQL reads its own clock (`now()`, the
transaction's time), so several API processes on one database share it.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple, TypeVar

from src.domain.search import MARK_END, MARK_START
from src.persistence.repositories.audit import AUDIT_COLUMNS
from src.persistence.repositories.common import (
    INTERVIEW_COLUMNS,
    SESSION_COLUMNS,
    UTTERANCE_COLUMNS,
    Row,
)

__all__ = [
    "APPEND_UTTERANCE",
    "AUDIT_APPEND",
    "CURSOR_KEY",
    "DELETE",
    "INSERT",
    "LAST_UTTERANCES",
    "LIST_IDLE",
    "LIST_UTTERANCES",
    "MOVE_IDLE",
    "PING",
    "SELECT_BY_ID",
    "SESSION_EXISTS",
    "TRANSITION",
    "UPDATE_STATE",
    "Query",
    "Statement",
    "Unit",
    "audit_list_query",
    "id_list_query",
    "list_events_query",
    "list_query",
    "query",
    "search_query",
]

T = TypeVar("T")

# A named parameter: a colon not part of a `::` cast, then a name.
_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_TIMESTAMP = "timestamptz"

# state.data read back as one JSON object, its members' stored text joined
# as it is (no JSON function reparses a value), so a read returns exactly
# what was written; NULL when the session has no data. The only place the
# dialects differ in a read, so a query names it with this token.
_DATA = "{state_data}"
_DATA_SQLITE = (
    "(SELECT '{' || group_concat(json_quote(key) || ':' || value, ',') || '}'"
    " FROM state_data WHERE state_data.session_id = sessions.id)"
)
_DATA_POSTGRES = (
    "(SELECT '{' || string_agg(to_json(key)::text || ':' || value, ',') || '}'"
    " FROM state_data WHERE state_data.session_id = sessions.id)"
)


@dataclass(frozen=True, slots=True)
class Query:
    """One statement in both dialects."""

    sqlite: str
    postgres: str
    names: tuple[str, ...]
    """The parameters in the order PostgreSQL binds them ($1, $2, ...)."""
    timestamps: tuple[str, ...]
    """The parameters SQLite binds as fixed-width UTC text rather than as a datetime."""


def query(
    text: str, *, types: Mapping[str, str] | None = None, postgres: str | None = None
) -> Query:
    """A Query from `text`; `types` casts parameters PostgreSQL cannot infer.

    `postgres` replaces the text on PostgreSQL where the dialects differ in
    more than parameters; it uses the same `:name` parameters.
    """
    types = types or {}
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "now":
            return "now()"
        if name not in names:
            names.append(name)
        cast = f"::{types[name]}" if name in types else ""
        return f"${names.index(name) + 1}{cast}"

    postgres_text = (text if postgres is None else postgres).replace(_DATA, _DATA_POSTGRES)
    converted = _PARAMETER.sub(number, postgres_text)
    timestamps = tuple(name for name, kind in types.items() if kind == _TIMESTAMP)
    return Query(text.replace(_DATA, _DATA_SQLITE), converted, tuple(names), timestamps)


class Statement(NamedTuple):
    """A query and the values of its parameters, by name."""

    query: Query
    parameters: Mapping[str, Any]


Unit = Generator[Statement, Sequence[Row], T]
"""A unit of work: it yields statements, receives each one's rows, and returns
its result or raises a domain error to refuse (which undoes the unit)."""

_SESSION = ", ".join(SESSION_COLUMNS + INTERVIEW_COLUMNS)
"""A session's columns, without state.data: what a write that knows the data returns."""
_READ = f"{_SESSION}, {_DATA}"
"""A session's columns and its state.data: what a read returns."""

INSERT = query(
    f"""
INSERT INTO sessions ({_SESSION}) VALUES (
    :id, :methodology, :concept_id, :concept_name, :status, :turn_count, :coverage_score,
    :last_strategy, 1, :now, :now,
    CASE WHEN :ended_at IS NULL AND :final THEN :now ELSE :ended_at END,
    :study_id, :participant_id, :labels, :config, :usage_turns, :usage_input_tokens,
    :usage_output_tokens, :usage_cost_usd, :usage_latency_ms, :forked_from_id, :forked_from_turn
)
ON CONFLICT (id) DO NOTHING
RETURNING {_SESSION}
""",  # noqa: S608
    types={
        "ended_at": _TIMESTAMP,
        "usage_cost_usd": "double precision",
        "usage_latency_ms": "double precision",
        "forked_from_turn": "integer",
    },
)

SELECT_BY_ID = query(f"SELECT {_READ} FROM sessions WHERE id = :id")  # noqa: S608

# A write that changes a session's state first takes its row (FOR UPDATE on
# PostgreSQL; SQLite's writer holds the database from BEGIN IMMEDIATE), reads
# it, works out the new state and why it may refuse, then writes. It reads
# state.data in a statement of its own, after the row is taken: a PostgreSQL
# statement that waited for the row's lock reads the row as the write it waited
# for left it, but every other table as it was when the statement began.
SELECT_FOR_WRITE = query(
    f"SELECT {_SESSION} FROM sessions WHERE id = :id",  # noqa: S608
    postgres=f"SELECT {_SESSION} FROM sessions WHERE id = :id FOR UPDATE",  # noqa: S608
)
DATA_FOR_WRITE = query(f"SELECT {_DATA} FROM sessions WHERE id = :id")  # noqa: S608

# The version it read is checked again, so a write never lands on a row it did not read.
_USAGE = {
    "usage_cost_usd": "double precision",
    "usage_latency_ms": "double precision",
}
UPDATE_STATE = query(
    f"""
UPDATE sessions
SET turn_count = :turn_count, coverage_score = :coverage_score, last_strategy = :last_strategy,
    version = version + 1, updated_at = :now,
    usage_turns = usage_turns + :usage_turns,
    usage_input_tokens = usage_input_tokens + :usage_input_tokens,
    usage_output_tokens = usage_output_tokens + :usage_output_tokens,
    usage_cost_usd = usage_cost_usd + :usage_cost_usd,
    usage_latency_ms = usage_latency_ms + :usage_latency_ms
WHERE id = :id AND version = :version
RETURNING {_SESSION}
""",  # noqa: S608
    types={**_USAGE, "version": "integer"},
)

UPDATE_LABELS = query(
    f"""
UPDATE sessions
SET labels = :labels, participant_id = :participant_id, version = version + 1, updated_at = :now
WHERE id = :id AND version = :version
RETURNING {_READ}
""",  # noqa: S608
    types={"version": "integer"},
)


def _clock_after_lock(update: str, locked_ids: str) -> str:
    """PostgreSQL text of an UPDATE of sessions that locks its rows before it reads the clock.

    An append holds its session's row (FOR SHARE) until it commits; a plain
    UPDATE would wait for it with a time read before the wait, and could end
    the session before the utterance it waited for was made. Locking in a
    CTE first and reading clock_timestamp() once, after, keeps every
    utterance's created_at at or before its session's ended_at.
    """
    return (
        f"WITH locked AS ({locked_ids} FOR NO KEY UPDATE),"  # noqa: S608
        " clock AS (SELECT clock_timestamp() AS moment)"
        + update.replace(":now", "(SELECT moment FROM clock)").replace(
            "\nWHERE ", "\nFROM locked\nWHERE sessions.id = locked.locked_id AND ", 1
        )
    )


_TRANSITION = f"""
UPDATE sessions
SET status = :to_status, version = version + 1, updated_at = :now,
    ended_at = CASE WHEN :ends THEN :now ELSE ended_at END
WHERE id = :id
  AND status IN (:from_status_1, :from_status_2)
  AND (:expected_version IS NULL OR version = :expected_version)
RETURNING {_READ}
"""  # noqa: S608
TRANSITION = query(
    _TRANSITION,
    types={"expected_version": "integer"},
    postgres=_clock_after_lock(_TRANSITION, "SELECT id AS locked_id FROM sessions WHERE id = :id"),
)

DELETE = query("DELETE FROM sessions WHERE id = :id RETURNING id, study_id, version")

PING = query("SELECT 1 FROM sessions LIMIT 1")

SESSION_EXISTS = query("SELECT 1 FROM sessions WHERE id = :id")

# The session must exist and be open: the SELECT yields no row otherwise, so
# nothing is inserted and RETURNING says so.
_APPEND_UTTERANCE = f"""
INSERT INTO utterances ({UTTERANCE_COLUMNS})
SELECT id, :turn_number, :speaker, :text, :metadata, :now
FROM sessions
WHERE id = :session_id AND status IN ('active', 'paused')
ON CONFLICT DO NOTHING
RETURNING {UTTERANCE_COLUMNS}
"""  # noqa: S608
# On PostgreSQL the append holds its session's row (FOR SHARE) until it
# commits: a delete or an end of the session waits for it (and reads its
# clock after, so ended_at is never before the utterance), and one already
# under way makes it find no open session (a refusal, not a broken foreign key).
APPEND_UTTERANCE = query(
    _APPEND_UTTERANCE,
    postgres=_APPEND_UTTERANCE.replace("ON CONFLICT", "FOR SHARE\nON CONFLICT"),
)

LIST_UTTERANCES = query(
    f"""
SELECT {UTTERANCE_COLUMNS}
FROM utterances
WHERE session_id = :session_id AND (turn_number, speaker) > (:after_turn, :after_speaker)
ORDER BY turn_number, speaker
LIMIT :limit
"""  # noqa: S608
)

LAST_UTTERANCES = query(
    f"""
SELECT {UTTERANCE_COLUMNS}
FROM utterances
WHERE session_id = :session_id
ORDER BY turn_number DESC, speaker DESC
LIMIT :count
"""  # noqa: S608
)

# Idle: no write to the session row and no utterance since the cut-off.
_IDLE = """status = :status AND updated_at < :idle_since
  AND NOT EXISTS (
      SELECT 1 FROM utterances
      WHERE utterances.session_id = sessions.id AND utterances.created_at >= :idle_since
  )"""
_OLDEST_IDLE = f"SELECT {_READ} FROM sessions WHERE {_IDLE} ORDER BY updated_at, id LIMIT :limit"  # noqa: S608
LIST_IDLE = query(_OLDEST_IDLE, types={"idle_since": _TIMESTAMP})
# The move checks idleness again on the row it changes (PostgreSQL rechecks the
# outer WHERE on a row written meanwhile), so a session written since stays.
_MOVE_IDLE = f"""
UPDATE sessions
SET status = :to_status, version = version + 1, updated_at = :now,
    ended_at = CASE WHEN :ends THEN :now ELSE ended_at END
WHERE id IN (SELECT id FROM ({_OLDEST_IDLE}) AS oldest) AND {_IDLE}
RETURNING {_READ}
"""  # noqa: S608
MOVE_IDLE = query(
    _MOVE_IDLE,
    types={"idle_since": _TIMESTAMP},
    postgres=_clock_after_lock(
        _MOVE_IDLE.replace(f"id IN (SELECT id FROM ({_OLDEST_IDLE}) AS oldest) AND ", ""),  # noqa: S608
        _OLDEST_IDLE.replace(f"SELECT {_READ}", "SELECT id AS locked_id"),
    ),
)

CURSOR_KEY = query("SELECT value FROM store_secrets WHERE name = 'cursor_key'")


_RANGE = {
    "created_after": "created_at > :created_after",
    "created_before": "created_at < :created_before",
}


def _where(
    filtered: tuple[str, ...], labels: int, dialect: str
) -> tuple[list[str], dict[str, str]]:
    # Only column names from list_filters() are ever joined in; values are bound.
    conditions = [_RANGE.get(column, f"{column} = :{column}") for column in filtered]
    types = {column: _TIMESTAMP for column in filtered if column in _RANGE}
    for number in range(labels):
        key, value = f":label_key_{number}", f":label_value_{number}"
        if dialect == "sqlite":
            conditions.append(f"json_extract(labels, '$.' || json_quote({key})) = {value}")
        else:
            conditions.append(f"(labels::json ->> {key}) = {value}")
        types[f"label_key_{number}"] = types[f"label_value_{number}"] = "text"
    return conditions, types


def _filtered_query(
    select: str,
    tail: str,
    filtered: tuple[str, ...],
    labels: int,
    after_key: bool = False,
) -> Query:
    texts = {}
    types: dict[str, str] = {}
    for dialect in ("sqlite", "postgres"):
        conditions, types = _where(filtered, labels, dialect)
        if after_key:
            conditions.append("(created_at, id) < (:after_created_at, :after_id)")
            types |= {"after_created_at": _TIMESTAMP, "after_id": "text"}
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        texts[dialect] = f"{select} FROM sessions {where} {tail}".strip()
    return query(texts["sqlite"], postgres=texts["postgres"], types=types)


@cache
def list_query(filtered: tuple[str, ...], after_key: bool, labels: int = 0) -> Query:
    """The listing for these filters and `labels` label filters, after a (created_at, id)
    key if asked."""
    return _filtered_query(
        f"SELECT {_READ}",
        "ORDER BY created_at DESC, id DESC LIMIT :limit",
        filtered,
        labels,
        after_key,
    )


# The columns a search may filter on: the utterance's own (`u`), or its session's (`s`),
# which filter through the ids of the sessions that match, so that a search joins a hit
# to its session only for the page it returns.
SEARCH_FILTER_COLUMNS = {
    "study_id": "s.study_id",
    "participant_id": "s.participant_id",
    "speaker": "u.speaker",
    "methodology": "s.methodology",
}
_SEARCH_ORDER = "rank DESC, session_id, turn_number, speaker"
_PAGE_ORDER = "page.rank DESC, page.session_id, page.turn_number, page.speaker"
_AFTER_HIT = """WHERE rank < :after_rank OR (
    rank = :after_rank AND (session_id, turn_number, speaker)
        > (:after_session_id, :after_turn_number, :after_speaker)
)"""

# A hit's rank depends on its own text alone (how many places match, for its
# length), never on the rest of the store (as BM25's word weights do), so a
# cursor's rank still sorts where it did while utterances are added between pages.
# The snippet is made for the page only: the index is matched again, walked through
# (its rowids alone: a few ms for 10,000 hits; a lookup by rowid would expand a prefix
# anew for each row) and joined to the page.
_SQLITE_SEARCH = f"""
WITH hits AS (
    SELECT u.row_id, u.session_id, u.turn_number, u.speaker,
        (length(highlight(utterance_search, 0, char(1), '')) - length(utterance_search.text))
            * 100.0 / (length(utterance_search.text) + 100) AS rank
    FROM utterance_search
    JOIN utterance_search_rows AS u ON u.row_id = utterance_search.rowid
    WHERE utterance_search MATCH :match {{filters}}
), page AS (
    SELECT * FROM hits {{after}} ORDER BY {_SEARCH_ORDER} LIMIT :limit
)
SELECT page.session_id, s.study_id, s.participant_id, page.turn_number, page.speaker,
    snippet(utterance_search, 0, '{MARK_START}', '{MARK_END}', '…', 32) AS snippet, page.rank
FROM utterance_search
CROSS JOIN page ON page.row_id = +utterance_search.rowid
JOIN sessions AS s ON s.id = page.session_id
WHERE utterance_search MATCH :match
ORDER BY {_PAGE_ORDER}
"""  # noqa: S608

# Each term becomes a tsquery of its own: a phrase through PostgreSQL's own
# parser (the one that split the utterance), a prefix from words alone; all_of
# ANDs them. The snippet is made for the page only, after the limit.
_POSTGRES_SEARCH = f"""
WITH query AS (
    SELECT all_of(term) AS terms FROM (
        SELECT phraseto_tsquery('utterance_search', phrase) AS term
        FROM unnest(:phrases::text[]) AS phrase
        UNION ALL
        SELECT to_tsquery('utterance_search', prefix) FROM unnest(:prefixes::text[]) AS prefix
    ) AS parts
), hits AS (
    SELECT u.session_id, u.turn_number, u.speaker, u.text,
        ts_rank(u.search_vector, query.terms)::float8 AS rank
    FROM query, utterances AS u
    WHERE u.search_vector @@ query.terms {{filters}}
), page AS (
    SELECT * FROM hits {{after}} ORDER BY {_SEARCH_ORDER} LIMIT :limit
)
SELECT page.session_id, s.study_id, s.participant_id, page.turn_number, page.speaker,
    ts_headline('utterance_search', page.text, query.terms,
        'StartSel={MARK_START}, StopSel={MARK_END}, MinWords=12, MaxWords=32') AS snippet,
    page.rank
FROM page JOIN sessions AS s ON s.id = page.session_id, query
ORDER BY {_PAGE_ORDER}
"""  # noqa: S608


def _search_filters(filtered: tuple[str, ...]) -> str:
    own = [name for name in filtered if SEARCH_FILTER_COLUMNS[name].startswith("u.")]
    of_session = [name for name in filtered if SEARCH_FILTER_COLUMNS[name].startswith("s.")]
    filters = "".join(f" AND {SEARCH_FILTER_COLUMNS[name]} = :{name}" for name in own)
    if of_session:
        matching = " AND ".join(f"{SEARCH_FILTER_COLUMNS[name]} = :{name}" for name in of_session)
        filters += f" AND u.session_id IN (SELECT s.id FROM sessions AS s WHERE {matching})"  # noqa: S608
    return filters


@cache
def search_query(filtered: tuple[str, ...], after_key: bool) -> Query:
    """The search for these filters (names in SEARCH_FILTER_COLUMNS), after a hit's key if asked."""
    # Only column names from SEARCH_FILTER_COLUMNS are joined in; values are bound.
    filters = _search_filters(filtered)
    after = _AFTER_HIT if after_key else ""
    return query(
        _SQLITE_SEARCH.format(filters=filters, after=after),
        postgres=_POSTGRES_SEARCH.format(filters=filters, after=after),
        types={
            "after_rank": "float8",
            "after_session_id": "text",
            "after_turn_number": "integer",
            "after_speaker": "text",
        },
    )


@cache
def count_query(filtered: tuple[str, ...], labels: int = 0) -> Query:
    """How many sessions the listing with these filters holds over all its pages."""
    return _filtered_query("SELECT count(*)", "", filtered, labels)


# state.data, a row per top-level key: a write touches only the keys it changes.
UPSERT_DATA = query(
    """
INSERT INTO state_data (session_id, key, value) VALUES (:session_id, :key, :value)
ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value
"""
)
DELETE_DATA = query("DELETE FROM state_data WHERE session_id = :session_id AND key = :key")

# The history: the session's row as this write left it, with the data keys it
# set and removed; one INSERT per write.
_VERSION_COLUMNS = (
    "version, change, turn_number, status, turn_count, coverage_score, last_strategy, labels,"
    " participant_id, usage_turns, usage_input_tokens, usage_output_tokens, usage_cost_usd,"
    " usage_latency_ms, updated_at, ended_at"
)
INSERT_VERSION = query(
    f"""
INSERT INTO session_versions (session_id, {_VERSION_COLUMNS}, data_set, data_unset)
SELECT id, version, :change, :turn_number, status, turn_count, coverage_score, last_strategy,
       labels, participant_id, usage_turns, usage_input_tokens, usage_output_tokens,
       usage_cost_usd, usage_latency_ms, updated_at, ended_at, :data_set, :data_unset
FROM sessions
WHERE id = :id
""",  # noqa: S608
    types={"change": "text", "turn_number": "integer", "data_set": "text", "data_unset": "text"},
)

LIST_VERSIONS = query(
    f"""
SELECT {_VERSION_COLUMNS}
FROM session_versions
WHERE session_id = :session_id AND version > :after
ORDER BY version
LIMIT :limit
"""  # noqa: S608
)

# The session as of a version: what never changes from its row, the rest from the history.
_AT_VERSION = ", ".join(
    f"v.{column}"
    if column
    in {
        "status",
        "turn_count",
        "coverage_score",
        "last_strategy",
        "version",
        "updated_at",
        "ended_at",
        "participant_id",
        "labels",
    }
    or column.startswith("usage_")
    else f"s.{column}"
    for column in SESSION_COLUMNS + INTERVIEW_COLUMNS
)
SESSION_AT_VERSION = query(
    f"""
SELECT {_AT_VERSION}
FROM session_versions AS v JOIN sessions AS s ON s.id = v.session_id
WHERE v.session_id = :session_id AND v.version = :version
"""  # noqa: S608
)

DATA_CHANGES = query(
    """
SELECT version, data_set, data_unset
FROM session_versions
WHERE session_id = :session_id AND version <= :version
  AND (data_set IS NOT NULL OR data_unset IS NOT NULL)
ORDER BY version
"""
)

# Turn records: at most one per turn; a second finds the key taken and returns nothing.
_RECORD_COLUMNS = (
    "turn_number, strategy, scores, signals, model, input_tokens, output_tokens, cost_usd,"
    " latency_ms"
)
INSERT_RECORD = query(
    f"""
INSERT INTO turn_records (session_id, {_RECORD_COLUMNS}, created_at)
VALUES (:session_id, :turn_number, :strategy, :scores, :signals, :model, :input_tokens,
        :output_tokens, :cost_usd, :latency_ms, :now)
ON CONFLICT DO NOTHING
RETURNING turn_number
""",  # noqa: S608
    types={"cost_usd": "double precision", "latency_ms": "double precision"},
)

LIST_RECORDS = query(
    f"""
SELECT {_RECORD_COLUMNS}
FROM turn_records
WHERE session_id = :session_id AND turn_number BETWEEN :first AND :last
ORDER BY turn_number
"""  # noqa: S608
)

# A page of turns: the turn numbers that have utterances, then what belongs to them.
TURN_NUMBERS = query(
    """
SELECT turn_number, min(created_at), max(created_at)
FROM utterances
WHERE session_id = :session_id AND turn_number > :after_turn
GROUP BY turn_number
ORDER BY turn_number
LIMIT :limit
"""
)

UTTERANCES_IN_TURNS = query(
    f"""
SELECT {UTTERANCE_COLUMNS}
FROM utterances
WHERE session_id = :session_id AND turn_number BETWEEN :first AND :last
ORDER BY turn_number, speaker
"""  # noqa: S608
)

TURN_VERSIONS = query(
    """
SELECT turn_number, max(version)
FROM session_versions
WHERE session_id = :session_id AND change = 'turn' AND turn_number BETWEEN :first AND :last
GROUP BY turn_number
"""
)

# For a turn no turn write made (its utterances appended one by one): the
# version the session was at when its last utterance came, else its first.
VERSION_AT = query(
    """
SELECT coalesce(
    (SELECT max(version) FROM session_versions
     WHERE session_id = :session_id AND updated_at <= :at),
    (SELECT min(version) FROM session_versions WHERE session_id = :session_id)
)
""",
    types={"at": _TIMESTAMP},
)

FIRST_VERSION = query("SELECT min(version) FROM session_versions WHERE session_id = :session_id")

LAST_TURN = query(
    """
SELECT max(turn_number), max(created_at)
FROM utterances
WHERE session_id = :session_id AND turn_number <= :turn_number
"""
)

LAST_TURN_VERSION = query(
    """
SELECT max(version)
FROM session_versions
WHERE session_id = :session_id AND change = 'turn' AND turn_number = :turn_number
"""
)

USAGE_UP_TO = query(
    """
SELECT count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
       coalesce(sum(cost_usd), 0.0), coalesce(sum(latency_ms), 0.0)
FROM turn_records
WHERE session_id = :session_id AND turn_number <= :turn_number
"""
)

COPY_UTTERANCES = query(
    """
INSERT INTO utterances (session_id, turn_number, speaker, text, metadata, created_at)
SELECT :new_id, turn_number, speaker, text, metadata, created_at
FROM utterances
WHERE session_id = :session_id AND turn_number <= :turn_number
""",
    types={"new_id": "text"},
)

COPY_RECORDS = query(
    f"""
INSERT INTO turn_records (session_id, {_RECORD_COLUMNS}, created_at)
SELECT :new_id, {_RECORD_COLUMNS}, created_at
FROM turn_records
WHERE session_id = :session_id AND turn_number <= :turn_number
""",  # noqa: S608
    types={"new_id": "text"},
)

_STUDY_TOTALS = """status, count(*), sum(usage_turns), sum(usage_input_tokens),
       sum(usage_output_tokens), sum(usage_cost_usd), sum(usage_latency_ms), min(created_at),
       max(updated_at)"""

STUDY_SUMMARY = query(
    f"""
SELECT {_STUDY_TOTALS}
FROM sessions
WHERE study_id = :study_id
GROUP BY status
ORDER BY status
"""  # noqa: S608
)

LIST_STUDIES = query(
    f"""
SELECT study_id, {_STUDY_TOTALS}
FROM sessions
WHERE study_id IN (
    SELECT study_id FROM sessions WHERE study_id IS NOT NULL
    GROUP BY study_id ORDER BY max(updated_at) DESC, study_id LIMIT :limit
)
GROUP BY study_id, status
"""  # noqa: S608
)
"""The `limit` studies written to most recently, each counted by status as STUDY_SUMMARY does."""


# Audit entries arrive as one JSON array (see audit.entries_json): a batch is
# one statement on either engine, inserted in the array's order.
_AUDIT_FIELDS = "at, key_name, action, method, path, session_id, counts"
AUDIT_APPEND = query(
    f"""
INSERT INTO audit_log ({_AUDIT_FIELDS})
SELECT value ->> 'at', value ->> 'key_name', value ->> 'action', value ->> 'method',
    value ->> 'path', value ->> 'session_id', json_extract(value, '$.counts')
FROM json_each(:entries)
ORDER BY key
""",  # noqa: S608
    types={"entries": "jsonb"},
    postgres=f"""
INSERT INTO audit_log ({_AUDIT_FIELDS})
SELECT (value ->> 'at')::timestamptz, value ->> 'key_name', value ->> 'action',
    value ->> 'method', value ->> 'path', value ->> 'session_id',
    nullif(value -> 'counts', 'null'::jsonb)
FROM jsonb_array_elements(:entries) WITH ORDINALITY AS entries (value, position)
ORDER BY position
""",  # noqa: S608
)


@cache
def audit_list_query(filtered: tuple[str, ...], after_key: bool) -> Query:
    """The audit listing for these filter columns, newest first, older than an id if asked."""
    # Only column names from audit.audit_filters() are joined in; values are bound.
    conditions = [f"{column} = :{column}" for column in filtered]
    if after_key:
        conditions.append("id < :after_id")
    where = "WHERE " + " AND ".join(conditions) if conditions else ""
    return query(
        f"SELECT {AUDIT_COLUMNS} FROM audit_log {where} ORDER BY id DESC LIMIT :limit",  # noqa: S608
        types={"after_id": "bigint"} if after_key else None,
    )


SESSIONS_BY_STATUS = query("SELECT status, count(*) FROM sessions GROUP BY status")


# The event log. An event row takes the session's study and version as the
# write left them. On PostgreSQL a sequence hands out ids in the order
# transactions ask, not the order they commit, so a reader could pass an id
# that a slower transaction commits later: each write takes its id under one
# lock per schema (an advisory lock, held to commit), so ids become visible
# in increasing order. It then notifies the servers' listeners; NOTIFY is
# delivered on commit, and never for a write that rolled back.
EVENT_CHANNEL = "session_events"
_EVENT_LOCK = "hashtext('interview-system-events:' || current_schema())"
_EVENT_COLUMNS = "type, session_id, study_id, version, at, data"
_EVENT_TYPES = {
    "type": "text",
    "data": "text",
    "session_id": "text",
    "study_id": "text",
    "version": "integer",
}


def _event_insert(source: str) -> Query:
    """The INSERT of events from `source` (a SELECT of _EVENT_COLUMNS) in both dialects."""
    text = f"INSERT INTO events ({_EVENT_COLUMNS})\n{source}"
    postgres = (
        f"WITH serial AS (SELECT pg_advisory_xact_lock({_EVENT_LOCK})),"  # noqa: S608
        f" written AS ({text.replace(' FROM ', ' FROM serial, ', 1)} RETURNING id)"
        f" SELECT pg_notify('{EVENT_CHANNEL}', id::text) FROM written"
    )
    return query(text, types=_EVENT_TYPES, postgres=postgres)


# A unit inserts its event last, once it holds every row it writes: the
# event lock is then always taken after row locks, never before, so two
# writes cannot each hold what the other waits for.
INSERT_EVENT = _event_insert(
    "SELECT :type, id, study_id, version, :now, :data FROM sessions WHERE id = :session_id"
)
"""One event of a session's write, its study and version read from the row it left."""

INSERT_EVENT_VALUES = _event_insert(
    "SELECT :type, :session_id, :study_id, :version, :now, :data FROM event_log"
)
"""An event whose session row is gone (a delete) or that names none (an erasure)."""

_EVENT_READ = f"SELECT id, {_EVENT_COLUMNS} FROM events"  # noqa: S608


@cache
def list_events_query(session: bool, study: bool) -> Query:
    """Events after an id, of one session and one study only if asked: a filter is in
    the statement only when set, so that the session's index serves a session's stream."""
    filters = (" AND session_id = :session_id" if session else "") + (
        " AND study_id = :study_id" if study else ""
    )
    return query(
        f"{_EVENT_READ} WHERE id > :after{filters} ORDER BY id LIMIT :limit",
        types={"after": "bigint"},
    )


EVENT_BOUNDS = query(
    "SELECT trimmed_through, (SELECT max(id) FROM events) FROM event_log",
)
"""The newest id trimmed, and the newest id kept (NULL for an empty log)."""

OLD_EVENTS_END = query(
    """
SELECT max(id) FROM (
    SELECT id FROM events WHERE at < :before ORDER BY at LIMIT :limit
) AS old
""",
    types={"before": _TIMESTAMP},
)
"""The newest id among the oldest `limit` events written before `before`."""

MARK_TRIMMED = query(
    "UPDATE event_log SET trimmed_through = :through WHERE trimmed_through < :through",
    types={"through": "bigint"},
)
TRIM_EVENTS = query("DELETE FROM events WHERE id <= :through", types={"through": "bigint"})


# Erasure. The sessions a participant's erasure takes: every session that
# names them, and every fork made from one of those, however deep (a fork
# holds copies of the transcript it was made from, whoever it names now).
# On PostgreSQL they are locked first: a turn, an utterance or a fork on one
# of them waits, so the counts are exactly what the deletes take.
_ERASED_SESSIONS = """
WITH RECURSIVE erased (id) AS (
    SELECT id FROM sessions WHERE participant_id = :participant_id
    UNION
    SELECT sessions.id FROM sessions JOIN erased ON sessions.forked_from_id = erased.id
)
SELECT sessions.id FROM sessions JOIN erased ON sessions.id = erased.id ORDER BY sessions.id
"""
ERASURE_SESSIONS = query(
    _ERASED_SESSIONS,
    postgres=_ERASED_SESSIONS + "FOR UPDATE OF sessions",
    types={"participant_id": "text"},
)


def id_list_query(text: str, placeholder: str, parameter: str) -> Query:
    """`text` with `{placeholder}` standing for the ids in `:parameter`, a JSON array of
    text, as a subquery in each dialect."""
    sqlite = f"(SELECT value FROM json_each(:{parameter}))"  # noqa: S608
    postgres = f"(SELECT jsonb_array_elements_text(:{parameter}))"
    return query(
        text.format(**{placeholder: sqlite}),
        postgres=text.format(**{placeholder: postgres}),
        types={parameter: "jsonb"},
    )


def _erasure_query(text: str) -> Query:
    """`text` with `{erased}` standing for the sessions in `:session_ids` (a JSON array)."""
    return id_list_query(text, "erased", "session_ids")


ERASURE_UTTERANCE_COUNT = _erasure_query(
    "SELECT count(*) FROM utterances WHERE session_id IN {erased}"
)
# Utterances (and with them the search index's entries, by the index's
# triggers on SQLite, in the same row on PostgreSQL), turn records, history
# and state data go by ON DELETE CASCADE, in the same statement.
ERASURE_DELETE_EVENTS = _erasure_query(
    "DELETE FROM events WHERE session_id IN {erased} RETURNING 1"
)
ERASURE_DELETE_SESSIONS = _erasure_query("DELETE FROM sessions WHERE id IN {erased}")
