-- Interview sessions. A session's state (turn_count, coverage_score,
-- last_strategy) lives in its row: methodology and concept are stored once.
-- Timestamps are UTC text of fixed width (2026-01-31T09:15:00.000000Z), so
-- that text order is time order.
CREATE TABLE sessions (
    id             TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    methodology    TEXT    NOT NULL CHECK (length(methodology) BETWEEN 1 AND 64),
    concept_id     TEXT    NOT NULL CHECK (length(concept_id) BETWEEN 1 AND 128),
    concept_name   TEXT    NOT NULL CHECK (length(concept_name) BETWEEN 1 AND 200),
    status         TEXT    NOT NULL
                   CHECK (status IN ('active', 'paused', 'completed', 'abandoned')),
    turn_count     INTEGER NOT NULL DEFAULT 0 CHECK (turn_count >= 0),
    coverage_score REAL    NOT NULL DEFAULT 0.0 CHECK (coverage_score BETWEEN 0.0 AND 1.0),
    last_strategy  TEXT    CHECK (length(last_strategy) <= 64),
    version        INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    ended_at       TEXT
) STRICT, WITHOUT ROWID;

-- Newest first, optionally by status: the listing walks these backwards
-- from a (created_at, id) key, so no page ever needs a sort or an offset.
CREATE INDEX sessions_by_status_created ON sessions (status, created_at, id);
CREATE INDEX sessions_by_created ON sessions (created_at, id);
