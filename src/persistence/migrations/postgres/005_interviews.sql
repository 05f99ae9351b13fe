-- The same tables and rules as the SQLite schema 004 (see there for why).
ALTER TABLE sessions ADD COLUMN study_id text CHECK (char_length(study_id) BETWEEN 1 AND 128);
ALTER TABLE sessions ADD COLUMN participant_id text
    CHECK (char_length(participant_id) BETWEEN 1 AND 128);
ALTER TABLE sessions ADD COLUMN labels text NOT NULL DEFAULT '{}';
ALTER TABLE sessions ADD COLUMN config text NOT NULL DEFAULT '{}';
ALTER TABLE sessions ADD COLUMN usage_turns bigint NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN usage_input_tokens bigint NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN usage_output_tokens bigint NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN usage_cost_usd double precision NOT NULL DEFAULT 0.0;
ALTER TABLE sessions ADD COLUMN usage_latency_ms double precision NOT NULL DEFAULT 0.0;
ALTER TABLE sessions ADD COLUMN forked_from_id text;
ALTER TABLE sessions ADD COLUMN forked_from_turn integer;

CREATE INDEX sessions_by_study_created ON sessions (study_id, created_at, id);
CREATE INDEX sessions_by_participant_created ON sessions (participant_id, created_at, id);

-- state.data, one row per top-level key; value is the member's compact JSON.
CREATE TABLE state_data (
    session_id text COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    key        text COLLATE "C" NOT NULL,
    value      text NOT NULL,
    PRIMARY KEY (session_id, key)
);

-- At most one record per turn; usage columns are what the record said.
CREATE TABLE turn_records (
    session_id    text COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    turn_number   integer NOT NULL CHECK (turn_number >= 0),
    strategy      text    CHECK (char_length(strategy) <= 64),
    scores        text    NOT NULL,
    signals       text    NOT NULL,
    model         text,
    input_tokens  integer NOT NULL CHECK (input_tokens >= 0),
    output_tokens integer NOT NULL CHECK (output_tokens >= 0),
    cost_usd      double precision    NOT NULL CHECK (cost_usd >= 0),
    latency_ms    double precision    NOT NULL CHECK (latency_ms >= 0),
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (session_id, turn_number)
);

-- The session after every write. state.data is not copied: data_set holds the
-- top-level keys this write set (a JSON object) and data_unset the ones it
-- removed (a JSON array), NULL when it changed neither; replaying them in
-- version order gives the data at any version.
CREATE TABLE session_versions (
    session_id          text COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    version             integer NOT NULL CHECK (version >= 1),
    change              text    NOT NULL
                        CHECK (change IN ('created', 'state', 'turn', 'transition', 'labels', 'graph')),
    turn_number         integer,
    status              text    NOT NULL,
    turn_count          integer NOT NULL,
    coverage_score      double precision    NOT NULL,
    last_strategy       text,
    labels              text    NOT NULL,
    participant_id      text,
    usage_turns         bigint NOT NULL,
    usage_input_tokens  bigint NOT NULL,
    usage_output_tokens bigint NOT NULL,
    usage_cost_usd      double precision    NOT NULL,
    usage_latency_ms    double precision    NOT NULL,
    updated_at          timestamptz NOT NULL,
    ended_at            timestamptz,
    data_set            text,
    data_unset          text,
    PRIMARY KEY (session_id, version)
);

INSERT INTO session_versions
SELECT id, version, CASE WHEN version = 1 THEN 'created' ELSE 'state' END, NULL, status,
       turn_count, coverage_score, last_strategy, labels, participant_id, usage_turns,
       usage_input_tokens, usage_output_tokens, usage_cost_usd, usage_latency_ms, updated_at,
       ended_at, NULL, NULL
FROM sessions;
