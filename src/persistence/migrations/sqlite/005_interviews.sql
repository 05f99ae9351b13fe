-- The whole interview: study, participant, labels, config, usage totals,
-- where a fork came from; the engine's open state (a row per top-level key
-- of state.data, so that a patch rewrites only the keys it changes); turn
-- records; and the history of every version. Existing sessions get the
-- defaults, and a first history entry at the version they are at.
ALTER TABLE sessions ADD COLUMN study_id TEXT CHECK (length(study_id) BETWEEN 1 AND 128);
ALTER TABLE sessions ADD COLUMN participant_id TEXT
    CHECK (length(participant_id) BETWEEN 1 AND 128);
ALTER TABLE sessions ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
ALTER TABLE sessions ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
ALTER TABLE sessions ADD COLUMN usage_turns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN usage_input_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN usage_output_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN usage_cost_usd REAL NOT NULL DEFAULT 0.0;
ALTER TABLE sessions ADD COLUMN usage_latency_ms REAL NOT NULL DEFAULT 0.0;
ALTER TABLE sessions ADD COLUMN forked_from_id TEXT;
ALTER TABLE sessions ADD COLUMN forked_from_turn INTEGER;

CREATE INDEX sessions_by_study_created ON sessions (study_id, created_at, id);
CREATE INDEX sessions_by_participant_created ON sessions (participant_id, created_at, id);

-- state.data, one row per top-level key; value is the member's compact JSON.
CREATE TABLE state_data (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (session_id, key)
) STRICT;

-- At most one record per turn; usage columns are what the record said.
CREATE TABLE turn_records (
    session_id    TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    turn_number   INTEGER NOT NULL CHECK (turn_number >= 0),
    strategy      TEXT    CHECK (length(strategy) <= 64),
    scores        TEXT    NOT NULL,
    signals       TEXT    NOT NULL,
    model         TEXT,
    input_tokens  INTEGER NOT NULL CHECK (input_tokens >= 0),
    output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
    cost_usd      REAL    NOT NULL CHECK (cost_usd >= 0),
    latency_ms    REAL    NOT NULL CHECK (latency_ms >= 0),
    created_at    TEXT    NOT NULL,
    PRIMARY KEY (session_id, turn_number)
) STRICT, WITHOUT ROWID;

-- Records and history rows are clustered by their key (WITHOUT ROWID): one
-- b-tree to write per row, the second INSERT of a write kept cheap.
-- The session after every write. state.data is not copied: data_set holds the
-- top-level keys this write set (a JSON object) and data_unset the ones it
-- removed (a JSON array), NULL when it changed neither; replaying them in
-- version order gives the data at any version.
CREATE TABLE session_versions (
    session_id          TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    version             INTEGER NOT NULL CHECK (version >= 1),
    change              TEXT    NOT NULL
                        CHECK (change IN ('created', 'state', 'turn', 'transition', 'labels', 'graph')),
    turn_number         INTEGER,
    status              TEXT    NOT NULL,
    turn_count          INTEGER NOT NULL,
    coverage_score      REAL    NOT NULL,
    last_strategy       TEXT,
    labels              TEXT    NOT NULL,
    participant_id      TEXT,
    usage_turns         INTEGER NOT NULL,
    usage_input_tokens  INTEGER NOT NULL,
    usage_output_tokens INTEGER NOT NULL,
    usage_cost_usd      REAL    NOT NULL,
    usage_latency_ms    REAL    NOT NULL,
    updated_at          TEXT    NOT NULL,
    ended_at            TEXT,
    data_set            TEXT,
    data_unset          TEXT,
    PRIMARY KEY (session_id, version)
) STRICT, WITHOUT ROWID;

INSERT INTO session_versions
SELECT id, version, CASE WHEN version = 1 THEN 'created' ELSE 'state' END, NULL, status,
       turn_count, coverage_score, last_strategy, labels, participant_id, usage_turns,
       usage_input_tokens, usage_output_tokens, usage_cost_usd, usage_latency_ms, updated_at,
       ended_at, NULL, NULL
FROM sessions;
