-- The event log (an outbox): one row per acknowledged write, inserted in the
-- write's own transaction. Ids come from a sequence; a write takes them
-- under a lock held to its commit (see statements.INSERT_EVENT), so readers
-- see them in increasing order. session_id and study_id are columns, so that
-- an erasure can find a participant's events.
CREATE TABLE events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type       TEXT        NOT NULL,
    session_id TEXT,
    study_id   TEXT,
    version    INTEGER,
    at         TIMESTAMPTZ NOT NULL,
    data       TEXT        NOT NULL
);

CREATE INDEX events_by_session ON events (session_id);
CREATE INDEX events_by_time ON events (at);

-- The newest id retention has trimmed: a reader asking to resume before it
-- has missed events the log no longer keeps.
CREATE TABLE event_log (
    only_row        INTEGER PRIMARY KEY CHECK (only_row = 1),
    trimmed_through BIGINT NOT NULL
);
INSERT INTO event_log (only_row, trimmed_through) VALUES (1, 0);
