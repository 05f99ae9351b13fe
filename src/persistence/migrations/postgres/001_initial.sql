-- Interview sessions; the same columns and rules as the SQLite schema.
-- Ids compare byte by byte (COLLATE "C"), as in SQLite, so that listings
-- order ties the same way on both engines.
CREATE TABLE sessions (
    id             text COLLATE "C" PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 128),
    methodology    text NOT NULL CHECK (char_length(methodology) BETWEEN 1 AND 64),
    concept_id     text NOT NULL CHECK (char_length(concept_id) BETWEEN 1 AND 128),
    concept_name   text NOT NULL CHECK (char_length(concept_name) BETWEEN 1 AND 200),
    status         text NOT NULL
                   CHECK (status IN ('active', 'paused', 'completed', 'abandoned')),
    turn_count     integer NOT NULL DEFAULT 0 CHECK (turn_count >= 0),
    coverage_score double precision NOT NULL DEFAULT 0.0
                   CHECK (coverage_score BETWEEN 0.0 AND 1.0),
    last_strategy  text CHECK (char_length(last_strategy) <= 64),
    version        integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    ended_at       timestamptz
);

-- Newest first, optionally by status, walked backwards from a (created_at, id) key.
CREATE INDEX sessions_by_status_created ON sessions (status, created_at, id);
CREATE INDEX sessions_by_created ON sessions (created_at, id);
